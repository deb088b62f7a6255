"""Regression CNN: the trunk of Zhang et al. 2016 (8 conv blocks, batch norm, no pooling).

Blocks 1-3 end with a stride-2 conv (down to 1/8), blocks 5-6 are dilated
(dilation 2) to widen the receptive field without pooling, block 8 upsamples
back to 1/4 with a transposed conv. ``width`` scales the channel counts of the
paper (64, 128, 256, 512, 512, 512, 512, 256); 1.0 is the paper's network.
Stride: 8.
"""
from __future__ import annotations

import dataclasses

import torch.nn as nn

from .base import BaseConfig, ColorModel, conv_bn_relu
from .registry import register


@dataclasses.dataclass
class CNNConfig(BaseConfig):
    width: float = 0.25            # scales the paper's channel counts (64 .. 512); 1.0 = the paper's network


@register("cnn")
class CNN(ColorModel):
    Config = CNNConfig
    stride = 8

    def __init__(self, config: CNNConfig):
        ch = [max(8, int(round(c * config.width))) for c in (64, 128, 256, 512, 512, 512, 512, 256)]
        super().__init__(config, ch[7], head_scale=4)
        convs = (2, 2, 3, 3, 3, 3, 3)
        dil = (1, 1, 1, 1, 2, 2, 1)
        down = (True, True, True, False, False, False, False)
        blocks = []
        cin = self.in_channels
        for i in range(7):
            layers = []
            for j in range(convs[i]):
                last = j == convs[i] - 1
                layers.append(conv_bn_relu(cin, ch[i], stride=2 if (down[i] and last) else 1, dilation=dil[i]))
                cin = ch[i]
            blocks.append(nn.Sequential(*layers))
        blocks.append(nn.Sequential(
            nn.ConvTranspose2d(cin, ch[7], 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ch[7]), nn.ReLU(inplace=True),
            conv_bn_relu(ch[7], ch[7]), conv_bn_relu(ch[7], ch[7])))
        self.blocks = nn.Sequential(*blocks)

    def trunk(self, x):
        return self.blocks(x)
