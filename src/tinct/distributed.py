"""Several processes, one job: torch.distributed under ``torchrun`` (``--distributed``).

``torchrun`` starts the processes and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous variables; ``setup`` joins the process group
(NCCL when CUDA is visible, one GPU per local rank; gloo on CPU). What each
caller does with it:

- training (``train.py``): the model is wrapped in DistributedDataParallel, the
  deterministic batch of each step is cut into one disjoint slice per rank (as
  DistributedSampler would), and only rank 0 validates, logs and checkpoints;
- colorizing a folder (``cli.py``): the sorted job list is dealt round-robin,
  file ``i`` to rank ``i % world``; ranks never talk, and finished outputs are
  skipped, so a killed job resumes with any number of processes.

See docs/distributed.md for multi-node rendezvous flags and a SLURM script.
"""
from __future__ import annotations

import datetime
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn

from .errors import TinctError

T = TypeVar("T")
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass
class Context:
    """Where this process stands: ``rank`` of ``world`` processes, and its device."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    group: bool = False  # whether we joined a process group (and must leave it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env(use_gpu: bool = True) -> Context:
    """Rank, world and device from torchrun's variables, without joining a process group."""
    missing = [v for v in _TORCHRUN_VARS[:3] if v not in os.environ]
    if missing:
        raise TinctError("--distributed runs under torchrun (e.g. `torchrun --nproc_per_node 2 -m tinct ...`); "
                         f"{', '.join(missing)} not set")
    try:
        rank, world, local = (int(os.environ[v]) for v in _TORCHRUN_VARS[:3])
    except ValueError:
        raise TinctError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None
    if not 0 <= rank < world:
        raise TinctError(f"RANK {rank} is not in 0..WORLD_SIZE-1 ({world - 1})")
    device = torch.device("cpu")
    if use_gpu and torch.cuda.is_available():
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return Context(rank=rank, world=world, local_rank=local, device=device)


def setup(distributed: bool, timeout_minutes: float = 30.0) -> Context:
    """A single-process context, or (``distributed``) join torchrun's process group."""
    if not distributed:  # one process: the first visible GPU if there is one, else the CPU
        return Context(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    ctx = from_env()
    if not dist.is_initialized():
        backend = "nccl" if ctx.device.type == "cuda" else "gloo"
        kw = {"device_id": ctx.device} if backend == "nccl" else {}
        dist.init_process_group(backend, rank=ctx.rank, world_size=ctx.world,
                                timeout=datetime.timedelta(minutes=timeout_minutes), **kw)
    ctx.group = True
    return ctx


def cleanup(ctx: Context) -> None:
    if ctx.group and dist.is_initialized():
        dist.destroy_process_group()
        ctx.group = False


def barrier(ctx: Context) -> None:
    if ctx.group:
        if ctx.device.type == "cuda":  # NCCL must know which GPU this rank's barrier runs on
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


@contextmanager
def main_first(ctx: Context):
    """Rank 0 runs the block first (e.g. builds the photo cache), then the others (who find it built)."""
    if not ctx.main:
        barrier(ctx)
    yield
    if ctx.main:
        barrier(ctx)


def shard(items: Sequence[T], ctx: Context) -> list[T]:
    """This rank's share of ``items``: every ``world``-th one from position ``rank`` (disjoint, covering)."""
    return list(items[ctx.rank::ctx.world])


class _Losses(nn.Module):
    """``compute_losses`` as a forward, so that DistributedDataParallel sees (and syncs) the backward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, L, ab, hints=None):
        return self.model.compute_losses(L, ab, hints)


def wrap_losses(model: nn.Module, ctx: Context):
    """``model.compute_losses`` itself, or (in a process group) the same through DDP."""
    if not ctx.group:
        return model.compute_losses
    if not model.data_parallel:
        raise TinctError(f"--distributed trains models with one optimizer; {model.name} (a GAN, own update "
                         "steps) is not supported yet")
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(_Losses(model), device_ids=ids)


def to_device(tensors, device: torch.device):
    """A tuple of tensors (or Nones) moved to ``device``."""
    return tuple(t if t is None else t.to(device, non_blocking=True) for t in tensors)
