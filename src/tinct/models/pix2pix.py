"""pix2pix (Isola et al. 2017) for colorization: U-Net generator + 70x70 PatchGAN critic on (L, ab).

Generator: ``depth`` stride-2 4x4 convs (LeakyReLU 0.2, batch norm except the
first and the innermost), mirrored by 4x4 transposed convs (ReLU, batch norm)
that concatenate the encoder map of the same size; widths ``base_channels``
x 1, 2, 4, 8, 8, ... The paper's network is ``base_channels=64, depth=8`` at
256 px; the default here is smaller for CPUs. No dropout: its randomness would
break exact resume and the paper found it gives almost no diversity anyway.
Loss: ``adv_weight`` x GAN loss (vanilla, LSGAN, hinge or WGAN-GP) +
``l1_weight`` (100) x L1 on ab/110. Stride: ``2**depth``.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from .adversarial import AdversarialConfig, AdversarialModel
from .layers import SelfAttention
from .registry import register


@dataclasses.dataclass
class Pix2PixConfig(AdversarialConfig):
    base_channels: int = 32        # generator width at its first layer (the paper: 64)
    depth: int = 5                 # stride-2 levels of the generator (the paper: 8 at 256 px)


def down(cin: int, cout: int, first: bool, norm: bool) -> nn.Sequential:
    layers = [] if first else [nn.LeakyReLU(0.2, inplace=False)]
    layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm))
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


def up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False), nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout))


class UNetGenerator(nn.Module):
    """``(B, cin, H, W) -> (B, widths[0], H, W)`` features; ``extra`` channels join every decoder input (noise)."""

    def __init__(self, cin: int, base: int, depth: int, attention: bool = False, extra: int = 0):
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be >= 2")
        self.widths = w = [base * min(2 ** i, 8) for i in range(depth)]
        self.downs = nn.ModuleList(
            [down(cin if i == 0 else w[i - 1], w[i], first=i == 0, norm=0 < i < depth - 1) for i in range(depth)])
        ups = []
        for i in range(depth - 2, -1, -1):
            c = w[depth - 1] if i == depth - 2 else 2 * w[i + 1]
            ups.append(up(c + extra, w[i]))
        self.ups = nn.ModuleList(ups)
        self.final = nn.Sequential(up(2 * w[0] + extra, w[0]), nn.ReLU(inplace=True))
        # attention on the coarsest decoder map: global color consistency at an affordable (H*W)^2
        self.attention = SelfAttention(2 * w[depth - 2]) if attention else None

    def forward(self, x: torch.Tensor, extra=None) -> torch.Tensor:
        """``extra``: None, or a callable ``(h, w) -> (B, extra, h, w)`` tensor for each decoder level."""
        skips = []
        for block in self.downs:
            x = block(x)
            skips.append(x)
        for j, block in enumerate(self.ups):
            if extra is not None:
                x = torch.cat([x, extra(*x.shape[-2:])], 1)
            x = torch.cat([block(x), skips[len(skips) - 2 - j]], 1)
            if j == 0 and self.attention is not None:
                x = self.attention(x)
        if extra is not None:
            x = torch.cat([x, extra(*x.shape[-2:])], 1)
        return self.final(x)


@register("pix2pix")
class Pix2Pix(AdversarialModel):
    Config = Pix2PixConfig

    def __init__(self, config: Pix2PixConfig):
        super().__init__(config, config.base_channels)
        self.stride = 2 ** config.depth
        self.generator = UNetGenerator(self.in_channels, config.base_channels, config.depth, config.self_attention)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x)
