"""The training checkpoint: weights, every optimizer's Adam moments and the step, in one safetensors file.

Tensors: ``model.{name}`` (the model's state dict), then per optimizer and per parameter ``i`` (counted
over its parameter groups in order) ``{prefix}{i}.exp_avg``, ``.exp_avg_sq`` and ``.step``, where the
prefix is ``optim.`` for a model's one optimizer (named ``""``) and ``optim.{name}.`` for named ones
(the GANs' ``generator`` and ``critic``); with ``--ema``, ``ema.{name}``: the weights' moving average
(``ema.py``). Metadata (strings): ``tinct_format``, ``model`` (family), ``config`` (JSON), ``step`` and
``train_config`` (JSON of the run's ``TrainConfig``).

Nothing is pickled, so a checkpoint is as safe to open as a model file; ``--resume`` reads it back and
continues with the same weights, moments, average and step, which makes a resumed run equal an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .io import atomic_path
from .models import create_model
from .models.base import ColorModel

FORMAT_VERSION = "1"


def _prefix(name: str) -> str:
    return f"optim.{name}." if name else "optim."


def _params(optim: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for g in optim.param_groups for p in g["params"]]


def save_checkpoint(path: str | os.PathLike, model: ColorModel, optimizers: dict[str, torch.optim.Optimizer],
                    step: int, train_config: dict, average: dict[str, torch.Tensor] | None = None) -> None:
    """Write the checkpoint at ``path`` atomically (a kill leaves the previous one whole); ``average``: the
    state dict of the weights' moving average, if the run keeps one."""
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().contiguous().cpu() for k, v in (average or {}).items()})
    for name, optim in optimizers.items():
        prefix = _prefix(name)
        for i, p in enumerate(_params(optim)):
            st = optim.state.get(p)
            if st:
                tensors[f"{prefix}{i}.exp_avg"] = st["exp_avg"].contiguous().cpu()
                tensors[f"{prefix}{i}.exp_avg_sq"] = st["exp_avg_sq"].contiguous().cpu()
                tensors[f"{prefix}{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1).cpu()
    meta = {"tinct_format": FORMAT_VERSION, "model": model.name, "config": json.dumps(dataclasses.asdict(model.config)),
            "step": str(step), "train_config": json.dumps(train_config)}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def read_checkpoint(path: str | os.PathLike) -> tuple[ColorModel, int, dict[str, torch.Tensor]]:
    """(the model with its weights, the step, the rest: optimizer tensors for ``restore_optimizers``, and the
    average's ``ema.*`` if the run keeps one)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model = create_model(meta["model"], **json.loads(meta["config"]))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    return model, int(meta["step"]), {k: v for k, v in tensors.items() if not k.startswith("model.")}


def restore_average(average: torch.nn.Module, flat: dict[str, torch.Tensor]) -> None:
    """Put the ``ema.*`` tensors ``read_checkpoint`` returned into ``average`` (the moving average's module);
    ``average`` is left unchanged when the checkpoint has none (its run was started without ``--ema``)."""
    state = {k[len("ema."):]: v for k, v in flat.items() if k.startswith("ema.")}
    if state:
        average.load_state_dict(state)


def restore_optimizers(optimizers: dict[str, torch.optim.Optimizer], flat: dict[str, torch.Tensor]) -> None:
    """Put the moments ``read_checkpoint`` returned back into freshly built ``optimizers`` (same names, same order)."""
    for name, optim in optimizers.items():
        prefix = _prefix(name)
        for i, p in enumerate(_params(optim)):
            if f"{prefix}{i}.exp_avg" in flat:
                optim.state[p] = {"step": flat[f"{prefix}{i}.step"][0].clone(),
                                  "exp_avg": flat[f"{prefix}{i}.exp_avg"].clone().to(p.device),
                                  "exp_avg_sq": flat[f"{prefix}{i}.exp_avg_sq"].clone().to(p.device)}
