"""Critics (discriminators) for the GAN families, conditioned on L: they score (L, ab) pairs.

Input: ``(B, 3, H, W)`` = (L/50 - 1, a/110, b/110), so the critic judges whether
these colors fit this luminance, not whether ab alone looks plausible.

- ``PatchGAN`` (Isola et al. 2017): 4x4 convs, three stride-2 layers then two
  stride-1 layers; each output score sees a 70x70 patch (``receptive_field``
  computes it from the layers). Output ``(B, 1, H/8 - 2, W/8 - 2)``.
- ``GlobalCritic`` (Radford et al. 2016, DCGAN): stride-2 4x4 convs, then one
  score per image ``(B, 1, 1, 1)``.

Norm: instance norm, or none when spectral norm is on (it already bounds the
layers, and batch statistics would leak between real and fake batches).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import SelfAttention, maybe_spectral, receptive_field


def _block(cin: int, cout: int, stride: int, norm: bool, spectral: bool) -> nn.Sequential:
    layers = [maybe_spectral(nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=not norm), spectral)]
    if norm:
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def block_features(critic: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Activations after each of ``critic.blocks``, self-attention (if any) after the second."""
    feats = []
    for i, block in enumerate(critic.blocks):
        x = block(x)
        if i == 1 and critic.attention is not None:
            x = critic.attention(x)
        feats.append(x)
    return feats


class PatchGAN(nn.Module):
    def __init__(self, in_channels: int = 3, channels: int = 64, layers: int = 3, spectral: bool = False,
                 attention: bool = False):
        super().__init__()
        norm = not spectral
        widths = [channels * min(2 ** i, 8) for i in range(layers + 1)]
        blocks = [_block(in_channels, widths[0], 2, False, spectral)]
        for i in range(1, layers):
            blocks.append(_block(widths[i - 1], widths[i], 2, norm, spectral))
        blocks.append(_block(widths[layers - 1], widths[layers], 1, norm, spectral))
        self.blocks = nn.ModuleList(blocks)
        # attention after the second block: coarse enough to afford, early enough to matter
        self.attention = SelfAttention(widths[1], spectral) if attention else None
        self.out = maybe_spectral(nn.Conv2d(widths[layers], 1, 4, stride=1, padding=1), spectral)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations after each block (used by the feature loss), then the score map last."""
        feats = block_features(self, x)
        return feats + [self.out(feats[-1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[-1]

    @property
    def receptive_field(self) -> int:
        return receptive_field([*self.blocks, self.out])


class GlobalCritic(nn.Module):
    _GRID = 4

    def __init__(self, in_channels: int = 3, channels: int = 64, layers: int = 4, spectral: bool = False,
                 attention: bool = False):
        super().__init__()
        norm = not spectral
        widths = [channels * min(2 ** i, 8) for i in range(layers)]
        blocks, cin = [], in_channels
        for i, w in enumerate(widths):
            blocks.append(_block(cin, w, 2, norm and i > 0, spectral))
            cin = w
        self.blocks = nn.ModuleList(blocks)
        self.attention = SelfAttention(widths[1], spectral) if attention else None
        # any input size: pool to 4x4, then the DCGAN's final 4x4 valid conv to one score
        self.out = maybe_spectral(nn.Conv2d(cin, 1, self._GRID), spectral)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = block_features(self, x)
        return feats + [self.out(F.adaptive_avg_pool2d(feats[-1], self._GRID))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[-1]
