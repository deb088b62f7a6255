"""Encoder-decoder with a classification backbone as encoder (transfer learning) and skip connections.

Encoder: ``ResNetBackbone`` (resnet18 at the defaults) or ``XceptionBackbone``
(depthwise-separable), from ``backbones.py``; its maps at strides 2..32 feed a
conv decoder that upsamples x2 four times, each time concatenating the
encoder map of that size (U-Net style). ``fusion`` adds the global feature of
"Deep Koalarization" (Baldassarre et al. 2017): the backbone's pooled
classification feature, through a dense layer, is copied to every position of
the deepest map and merged with it by a 1x1 conv, so what the photo *is*
(scene, object class) informs every pixel's color.

``load_backbone(path)`` puts pretrained weights (a safetensors state dict,
torchvision/timm names accepted where they match) into the encoder before
training; ``tinct train --backbone-weights FILE`` calls it. Output at stride 2,
upsampled bilinearly to full size (chroma is smooth). Stride: 32.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import TinctError
from .backbones import BACKBONES, load_backbone_state
from .base import BaseConfig, ColorModel, conv_bn_relu
from .registry import register


@dataclasses.dataclass
class EncoderDecoderConfig(BaseConfig):
    backbone: str = "resnet"        # "resnet" or "xception"
    backbone_width: float = 1.0     # 1.0: resnet18 exactly (so torchvision/timm weights fit)
    decoder_channels: int = 32      # width at stride 2; doubles at each coarser level
    fusion: bool = True             # Deep Koalarization global feature


@register("encoder-decoder")
class EncoderDecoder(ColorModel):
    Config = EncoderDecoderConfig
    stride = 32

    def __init__(self, config: EncoderDecoderConfig):
        if config.backbone not in BACKBONES:
            raise TinctError(f"unknown backbone {config.backbone!r}; known: {', '.join(BACKBONES)}")
        d = config.decoder_channels
        super().__init__(config, d, head_scale=2)
        self.backbone = BACKBONES[config.backbone](self.in_channels, config.backbone_width)
        ch = self.backbone.channels  # strides 2, 4, 8, 16, 32
        deep = ch[4]
        self.fusion = None
        if config.fusion:
            self.global_fc = nn.Sequential(nn.Linear(deep, 256), nn.ReLU(inplace=True))
            self.fusion = nn.Sequential(nn.Conv2d(deep + 256, deep, 1, bias=False), nn.BatchNorm2d(deep),
                                        nn.ReLU(inplace=True))
        widths = [d * 2 ** i for i in range(4)]  # decoder widths at strides 2, 4, 8, 16
        self.decoder = nn.ModuleList()
        cin = deep
        for level in range(3, -1, -1):
            self.decoder.append(nn.Sequential(conv_bn_relu(cin + ch[level], widths[level]),
                                              conv_bn_relu(widths[level], widths[level])))
            cin = widths[level]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        y = feats[4]
        if self.fusion is not None:
            g = self.global_fc(y.mean(dim=(2, 3)))
            y = self.fusion(torch.cat([y, g[:, :, None, None].expand(-1, -1, *y.shape[-2:])], 1))
        for block, skip in zip(self.decoder, reversed(feats[:4])):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], 1))
        return y

    def load_backbone(self, path: str | Path) -> tuple[int, int]:
        """Load pretrained encoder weights from a safetensors state dict; returns (loaded, skipped) counts.

        Refuses (TinctError) a file that is not safetensors or shares no tensor with the backbone.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        path = Path(path)
        if not path.is_file():
            raise TinctError(f"{path}: no such backbone weights file")
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise TinctError(f"{path}: not a safetensors state dict ({str(e).splitlines()[0]})") from None
        loaded, skipped = load_backbone_state(self.backbone, state)
        if not loaded:
            raise TinctError(f"{path}: no tensor matches the {self.config.backbone} backbone "
                             f"(names and shapes; {len(skipped)} skipped)")
        return len(loaded), len(skipped)
