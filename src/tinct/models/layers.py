"""Layers the families share: self-attention, optional spectral norm, resizing a map to another's size,
receptive-field arithmetic."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def resized(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """``x`` ``(B, C, h, w)`` bilinearly resized to ``size`` (H, W), or ``x`` itself when already that size:
    encoders and decoders round odd sizes differently, so maps of one stride can be a pixel apart."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def maybe_spectral(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap a conv/linear in spectral normalisation (Miyato et al. 2018) when ``enabled``.

    Uses the parametrization API: the state dict holds ``parametrizations.weight.original``
    and the power-iteration vectors ``_u``/``_v`` as plain tensors (safetensors-friendly).
    """
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019), as DeOldify puts it in generator and critic.

    ``(B, C, H, W) -> (B, C, H, W)``. Starts as the identity (``gamma`` = 0), so it can
    be switched on without disturbing a network that trained without it. Costs
    ``(H*W)^2`` memory: place it at a coarse level only.
    """

    def __init__(self, channels: int, spectral: bool = False):
        super().__init__()
        inner = max(1, channels // 8)
        self.query = maybe_spectral(nn.Conv2d(channels, inner, 1, bias=False), spectral)
        self.key = maybe_spectral(nn.Conv2d(channels, inner, 1, bias=False), spectral)
        self.value = maybe_spectral(nn.Conv2d(channels, channels, 1, bias=False), spectral)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)          # B, HW, c
        k = self.key(x).flatten(2)                            # B, c, HW
        attn = F.softmax(torch.bmm(q, k), dim=-1)             # B, HW, HW
        v = self.value(x).flatten(2)                          # B, C, HW
        out = torch.bmm(v, attn.transpose(1, 2)).view(B, C, H, W)
        return x + self.gamma * out


def receptive_field(layers) -> int:
    """Receptive field (pixels, one side) of a chain of modules, from their kernels, strides and dilations.

    Walks ``layers`` (an iterable of modules, nested containers allowed) in order and
    applies ``rf += (k - 1) * d * jump; jump *= s`` for every conv or pooling layer;
    point-wise layers (norms, activations, 1x1 attention) leave it unchanged.
    """
    rf, jump = 1, 1
    for m in _leaves(layers):
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k = _pair(m.kernel_size)[0]
            s = _pair(m.stride)[0]
            d = _pair(getattr(m, "dilation", 1))[0]
            rf += (k - 1) * d * jump
            jump *= s
    return rf


def _leaves(layers):
    for m in layers:
        children = list(m.children())
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) or not children:
            yield m
        else:
            yield from _leaves(children)


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)
