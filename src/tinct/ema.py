"""An exponential moving average of a model's weights (``tinct train --ema DECAY``).

On a small batch the weights wander from step to step, and a checkpoint is one draw from that wander: checkpoints
of the default's training 125 steps apart scored one photo's AuC anywhere from 1 point below gray to 1.5 above.
The average over the last few hundred steps (Polyak averaging; timm's ``ModelEmaV3``) swung half as much there, and
scored as well as the last step's weights on val500 (``bench/results/default_semantic.md``, session 10). The run
still trains the raw weights; the average is what it validates and writes as ``model.safetensors``.
"""
from __future__ import annotations

import copy

import torch


def ema_decay(decay: float, step: int) -> float:
    """The decay at ``step``: ``decay``, but at most ``(1 + step) / (10 + step)``, so early on the average
    follows the weights closely instead of holding on to where they started."""
    return min(decay, (1 + step) / (10 + step))


class WeightAverage:
    """A frozen copy of ``model`` whose floating-point state (parameters and batch-norm statistics) moves toward
    the model's by ``1 - decay`` at each ``update``; integer buffers (batch counts) are copied."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie strictly between 0 and 1, got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def update(self, model: torch.nn.Module, step: int) -> None:
        """Move the average toward ``model``'s weights after step ``step`` (steps counted from 0)."""
        lerp_weights(self.module, model, 1.0 - ema_decay(self.decay, step))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()


@torch.no_grad()
def lerp_weights(target: torch.nn.Module, source: torch.nn.Module, weight: float) -> None:
    """Move ``target``'s floating-point state toward ``source``'s (same architecture) by ``weight`` in [0, 1], in
    place; integer buffers are copied from ``source``. One step of the moving average, and, with a fixed weight,
    the average of two runs from a common ancestor (a "model soup", Wortsman et al. 2022)."""
    for avg, new in zip(target.state_dict().values(), source.state_dict().values()):
        if avg.is_floating_point():
            avg.lerp_(new.to(avg.dtype), weight)
        else:
            avg.copy_(new)
