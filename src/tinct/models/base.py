"""What every colorization network shares: the forward contract, the heads, the losses.

Contract: ``forward(L, hints=None) -> {"ab": (B, 2, H, W) in Lab units, ...}``
with ``L`` ``(B, 1, H, W)`` in [0, 100] and H, W multiples of ``model.stride``.
A classification head adds ``"logits"`` ``(B, Q, h, w)``.

A family only builds a trunk that maps normalised L to features; the head
(regression or classification over quantized ab) and the losses live here, so
every family can be trained either way by the same loop.

Training protocol: a plain model names its losses in ``compute_losses`` and the
trainer minimises ``"loss"`` with one Adam. A model that needs several
optimizers (the GANs, ``adversarial.py``) instead defines
``optimizers(cfg, total_steps) -> {name: Optimizer}`` and
``train_step((L, ab, hints), step, optimizers) -> {"loss": ..., other named losses}``
and does its own updates; the trainer still sets learning rates, checkpoints
every optimizer's state and logs the names listed in ``loss_names``. Models
with noise inputs set ``stochastic = True`` and draw it from ``sample_seed``.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import bins
from ..color import AB_SCALE


@dataclasses.dataclass
class BaseConfig:
    head: str = "regression"     # "regression" (ab directly) or "classification" (Zhang et al.)
    loss: str = "l1"             # regression loss: "l1", "l2" or "huber"
    num_bins: int = 0            # classification: number of in-gamut ab cells (set from the data)
    temperature: float = bins.TEMPERATURE  # classification decoding: annealed mean, 1 = the mean, toward 0 = the mode
    # classification decoding: 0 keeps the rebalanced distribution (vivid); 1 divides the rebalancing
    # weights back out (the unbiased posterior: closer colors, less vivid). Tuned on validation data.
    prior_correction: float = 0.0
    hint_channels: int = 0       # 0, or 3 for user color points (ab + mask)


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How a classification head's bins become ab for one call; None keeps the model's own setting.

    ``temperature``: annealed mean, 1 = the mean, toward 0 = the mode. ``prior_correction`` in [0, 1]:
    divides the bin probabilities by the training rebalancing weights to this power (0 = vivid as
    trained, 1 = calibrated and grayer).
    """
    temperature: float | None = None
    prior_correction: float | None = None


class ColorModel(nn.Module):
    name = "base"
    stride = 1
    Config = BaseConfig
    stochastic = False  # True: forward draws noise from ``self.sample_seed`` (``tinct colorize --samples``)

    def __init__(self, config: BaseConfig, trunk_channels: int, head_scale: int = 1):
        super().__init__()
        self.config = config
        if config.head == "classification":
            if config.num_bins <= 0:
                raise ValueError("a classification head needs num_bins > 0")
            self.head = nn.Conv2d(trunk_channels, config.num_bins, 1)
            self.register_buffer("bin_centers", torch.zeros(config.num_bins, 2))
            self.register_buffer("bin_weights", torch.ones(config.num_bins))
        elif config.head == "regression":
            self.head = nn.Conv2d(trunk_channels, 2, 1)
        else:
            raise ValueError(f"unknown head {config.head!r}")
        self.head_scale = head_scale  # trunk features are at 1/head_scale of the input size

    @property
    def in_channels(self) -> int:
        return 1 + self.config.hint_channels

    def set_bins(self, centers, weights) -> None:
        self.bin_centers.copy_(torch.as_tensor(centers))
        self.bin_weights.copy_(torch.as_tensor(weights))

    def decode_logits(self, logits: torch.Tensor, decoding: Decoding | None = None) -> torch.Tensor:
        """Classification logits ``(B, Q, h, w)`` -> ab ``(B, 2, h, w)``: prior correction, then annealed mean.

        ``decoding`` overrides the config's temperature and prior correction for this call only (a model
        shared by server threads is never mutated).
        """
        decoding = decoding or Decoding()
        correction = self.config.prior_correction if decoding.prior_correction is None else decoding.prior_correction
        temperature = self.config.temperature if decoding.temperature is None else decoding.temperature
        if correction:
            logits = logits - correction * torch.log(self.bin_weights)[None, :, None, None]
        return bins.annealed_mean(logits, self.bin_centers, temperature)

    def decode(self, logits: torch.Tensor, size, decoding: Decoding | None = None) -> torch.Tensor:
        """Logits ``(B, Q, h, w)`` -> ab ``(B, 2, *size)``: ``decode_logits``, then bilinear up to the input size."""
        ab = self.decode_logits(logits, decoding)
        if ab.shape[-2:] != tuple(size):
            ab = F.interpolate(ab, size=tuple(size), mode="bilinear", align_corners=False)
        return ab

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def parameter_groups(self) -> list[dict]:
        """The optimizer's parameter groups; each ``lr_scale`` multiplies the scheduled learning rate."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr_scale": 1.0}]

    def forward(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> dict:
        x = L / 50.0 - 1.0
        if self.config.hint_channels:
            if hints is None:
                hints = torch.zeros(L.shape[0], self.config.hint_channels, *L.shape[-2:], dtype=L.dtype, device=L.device)
            x = torch.cat([x, hints[:, :2] / AB_SCALE, hints[:, 2:]], dim=1)
        feats = self.trunk(x)
        out = {}
        if self.config.head == "classification":
            logits = self.head(feats)
            out["logits"] = logits
            out["ab"] = self.decode(logits, L.shape[-2:])
        else:
            ab = torch.tanh(self.head(feats)) * AB_SCALE
            if ab.shape[-2:] != L.shape[-2:]:
                ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
            out["ab"] = ab
        return out

    def compute_losses(self, L: torch.Tensor, ab_true: torch.Tensor, hints: torch.Tensor | None = None) -> dict:
        """Named losses for one batch; ``"loss"`` is the one to minimise."""
        return self.losses(self(L, hints), ab_true)

    def losses(self, out: dict, ab_true: torch.Tensor) -> dict:
        """Named losses of a forward's output ``out`` against the true ab ``(B, 2, H, W)``."""
        if self.config.head == "classification":
            ce = bins.rebalanced_cross_entropy(out["logits"], ab_true, self.bin_centers, self.bin_weights)
            return {"loss": ce, "ce": ce.detach()}
        return {"loss": regression_loss(out["ab"], ab_true, self.config.loss)}


def regression_loss(ab_pred: torch.Tensor, ab_true: torch.Tensor, kind: str) -> torch.Tensor:
    """Pixel loss on ab normalised to about [-1, 1]."""
    p, t = ab_pred / AB_SCALE, ab_true / AB_SCALE
    if kind == "l1":
        return F.l1_loss(p, t)
    if kind == "l2":
        return F.mse_loss(p, t)
    if kind == "huber":
        return F.smooth_l1_loss(p, t, beta=0.1)
    raise ValueError(f"unknown loss {kind!r}")


def conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )
