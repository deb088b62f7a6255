"""Convolutional autoencoder: conv encoder -> dense bottleneck -> transposed-conv decoder.

The encoder halves the size four times; the bottleneck pools to a fixed 4x4
grid, passes it through a dense layer of ``latent`` units and back, and
stretches it to the encoder's output size, so any working size fits. No skip
connections: everything the decoder knows passes through the bottleneck, which
is why this family is blurrier than the U-Net. Stride: 16.
"""
from __future__ import annotations

import dataclasses

import torch.nn as nn
import torch.nn.functional as F

from .base import BaseConfig, ColorModel, conv_bn_relu
from .registry import register


@dataclasses.dataclass
class AutoencoderConfig(BaseConfig):
    base_channels: int = 32        # encoder width at full size; doubles at each of 4 halvings
    latent: int = 256              # units of the dense bottleneck every color passes through


@register("autoencoder")
class Autoencoder(ColorModel):
    Config = AutoencoderConfig
    stride = 16
    _GRID = 4

    def __init__(self, config: AutoencoderConfig):
        c = config.base_channels
        super().__init__(config, c)
        widths = [c, 2 * c, 4 * c, 8 * c]
        enc, cin = [], self.in_channels
        for w in widths:
            enc += [conv_bn_relu(cin, w), conv_bn_relu(w, w, stride=2)]
            cin = w
        self.encoder = nn.Sequential(*enc)
        flat = widths[-1] * self._GRID ** 2
        self.to_latent = nn.Sequential(nn.Linear(flat, config.latent), nn.ReLU(inplace=True))
        self.from_latent = nn.Sequential(nn.Linear(config.latent, flat), nn.ReLU(inplace=True))
        dec = []
        for w in reversed([c] + widths[:-1]):
            dec += [nn.ConvTranspose2d(cin, w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True), conv_bn_relu(w, w)]
            cin = w
        self.decoder = nn.Sequential(*dec)

    def trunk(self, x):
        feats = self.encoder(x)
        z = self.to_latent(F.adaptive_avg_pool2d(feats, self._GRID).flatten(1))
        grid = self.from_latent(z).view(-1, feats.shape[1], self._GRID, self._GRID)
        # the decoder sees the latent code stretched to the encoder's size, plus the encoder map
        # is NOT passed on: the bottleneck is the only path.
        grid = F.interpolate(grid, size=feats.shape[-2:], mode="bilinear", align_corners=False)
        return self.decoder(grid)
