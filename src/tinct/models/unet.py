"""U-Net (Ronneberger et al. 2015) for colorization, with a global-context branch.

Encoder halves the size ``depth`` times; the decoder doubles it back and
concatenates the encoder features of the same size (skip connections keep
edges sharp). The bottleneck adds a pooled global feature vector to every
position (as Iizuka et al. 2016 fuse global features), so scene-level cues
(indoor, beach, forest) steer the colors everywhere. Stride: 2**depth.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import BaseConfig, ColorModel, conv_bn_relu
from .registry import register


@dataclasses.dataclass
class UNetConfig(BaseConfig):
    base_channels: int = 32        # width after the first halving; doubles per level up to 8x
    depth: int = 4                 # halvings of the size (stride 2**depth)
    global_context: bool = True    # add a pooled whole-photo feature at the bottleneck (scene cues)


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout, dilation=1):
        super().__init__(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout, dilation=dilation))


@register("unet")
class UNet(ColorModel):
    Config = UNetConfig

    def __init__(self, config: UNetConfig):
        c = config.base_channels
        # the full-resolution level is half as wide: it only carries edges, and it is the costliest
        widths = [c // 2] + [c * 2 ** min(i, 3) for i in range(config.depth)]
        # classification logits at half resolution: 4x fewer softmax cells, ab is smooth anyway
        head_scale = 2 if config.head == "classification" else 1
        super().__init__(config, widths[0] if head_scale == 1 else widths[1], head_scale)
        self.stride = 2 ** config.depth
        self.enc = nn.ModuleList()
        cin = self.in_channels
        for w in widths:
            self.enc.append(DoubleConv(cin, w))
            cin = w
        self.bottleneck = DoubleConv(widths[-1], widths[-1], dilation=2)
        self.global_mlp = nn.Sequential(nn.Linear(widths[-1], widths[-1]), nn.ReLU(inplace=True),
                                        nn.Linear(widths[-1], widths[-1])) if config.global_context else None
        self.dec = nn.ModuleList()
        stop = 1 if head_scale == 2 else 0
        for i in range(config.depth - 1, stop - 1, -1):
            self.dec.append(DoubleConv(widths[i + 1] + widths[i], widths[i]))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.enc):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        x = self.bottleneck(x)
        if self.global_mlp is not None:
            g = self.global_mlp(x.mean(dim=(2, 3)))
            x = x + g[:, :, None, None]
        for j, block in enumerate(self.dec):
            skip = skips[len(skips) - 2 - j]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return x
