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
from .backbones import BACKBONES, load_backbone_file
from .base import BaseConfig, ColorModel, conv_bn_relu
from .layers import SelfAttention, resized
from .registry import register


@dataclasses.dataclass
class EncoderDecoderConfig(BaseConfig):
    backbone: str = "resnet"        # "resnet", "xception", "efficientnet-lite0", "-lite1" or "-lite2"
    backbone_width: float = 1.0     # 1.0: resnet18 exactly (so torchvision/timm weights fit)
    decoder_channels: int = 32      # width at stride 2; doubles at each coarser level
    fusion: bool = True             # Deep Koalarization global feature
    bottleneck_channels: int = 0    # >0: the fused deepest map is narrowed to this width first
    upsample: str = "bilinear"      # decoder x2 steps: "bilinear" or "pixelshuffle" (learned sub-pixel conv)
    self_attention: bool = False    # SAGAN attention on the stride-16 decoder map (DeOldify's generator has one)
    hint_decoder: bool = False      # hint channels also enter every decoder level (they reach it at any encoder state)
    # how hints reach the coarser decoder levels: "average" dilutes a point to 1/256 at stride 16;
    # "normalized" gives each coarse cell the mean color of the points inside it, mask 1 (a point keeps its force)
    hint_pool: str = "average"
    # >0: a small conv encoder of this width (at stride 2; doubling per level) reads L and the hints at full
    # resolution, and its maps at strides 2..16 are added to the decoder's through zero-initialised 1x1 convs.
    # Points then reach the decoder with the photo's edges around them, as in Zhang et al. 2017 where they
    # enter at the first layer; the pretrained encoder never sees them. Zero-initialised: adding the branch to
    # a trained model leaves its colorizations unchanged until it trains.
    hint_branch: int = 0
    # training only: the encoder's first N of its 5 levels (stride 2 .. 32) are frozen, batch-norm
    # statistics included; the rest train at encoder_lr_scale x the learning rate
    encoder_frozen: int = 0
    encoder_lr_scale: float = 1.0
    # training only: the hint branch's learning rate is this x the learning rate. Its zero-initialised output
    # convs make it slow to start (no gradient reaches the branch until they move), like ControlNet's
    hint_lr_scale: float = 1.0


@register("encoder-decoder")
class EncoderDecoder(ColorModel):
    Config = EncoderDecoderConfig
    stride = 32

    def __init__(self, config: EncoderDecoderConfig):
        if config.backbone not in BACKBONES:
            raise TinctError(f"unknown backbone {config.backbone!r}; known: {', '.join(BACKBONES)}")
        if config.hint_pool not in ("average", "normalized"):
            raise TinctError(f"hint_pool must be average or normalized, not {config.hint_pool!r}")
        if config.upsample not in ("bilinear", "pixelshuffle"):
            raise TinctError(f"upsample must be bilinear or pixelshuffle, not {config.upsample!r}")
        if not 0 <= config.encoder_frozen <= 5:
            raise TinctError("encoder_frozen counts the encoder's 5 levels: 0 to 5")
        d = config.decoder_channels
        super().__init__(config, d, head_scale=2)
        self.backbone = BACKBONES[config.backbone](self.in_channels, config.backbone_width)
        ch = self.backbone.channels  # strides 2, 4, 8, 16, 32
        deep = ch[4]
        self.fusion = None
        fused = config.bottleneck_channels or deep
        if config.fusion:
            self.global_fc = nn.Sequential(nn.Linear(deep, 256), nn.ReLU(inplace=True))
            self.fusion = nn.Sequential(nn.Conv2d(deep + 256, fused, 1, bias=False), nn.BatchNorm2d(fused),
                                        nn.ReLU(inplace=True))
        elif config.bottleneck_channels:
            self.fusion_narrow = conv_bn_relu(deep, fused)
        hint_ch = config.hint_channels if config.hint_decoder else 0
        widths = [d * 2 ** i for i in range(4)]  # decoder widths at strides 2, 4, 8, 16
        self.decoder = nn.ModuleList()
        self.upsamplers = nn.ModuleList() if config.upsample == "pixelshuffle" else None
        cin = fused
        for level in range(3, -1, -1):
            if self.upsamplers is not None:  # sub-pixel conv: learned x2 upsampling without checkerboards
                self.upsamplers.append(nn.Sequential(nn.Conv2d(cin, 4 * widths[level], 1), nn.PixelShuffle(2)))
                cin = widths[level]
            self.decoder.append(nn.Sequential(conv_bn_relu(cin + ch[level] + hint_ch, widths[level]),
                                              conv_bn_relu(widths[level], widths[level])))
            cin = widths[level]
        self.attention = SelfAttention(widths[3]) if config.self_attention else None
        self.hint_branch = self.hint_proj = None
        if config.hint_branch:
            if not config.hint_channels:
                raise TinctError("hint_branch needs hint_channels=3 (it reads the color points)")
            branch = [config.hint_branch * 2 ** i for i in range(4)]  # strides 2, 4, 8, 16
            self.hint_branch = nn.ModuleList(
                nn.Sequential(conv_bn_relu(cin, cout, stride=2), conv_bn_relu(cout, cout))
                for cin, cout in zip([self.in_channels] + branch[:-1], branch))
            self.hint_proj = nn.ModuleList(nn.Conv2d(b, w, 1) for b, w in zip(branch, widths))
            for proj in self.hint_proj:
                nn.init.zeros_(proj.weight)
                nn.init.zeros_(proj.bias)
        self._freeze_encoder(config.encoder_frozen)

    # ------------------------------------------------------------ staged training ---
    def _encoder_levels(self) -> list[list[nn.Module]]:
        """The encoder's modules by level (strides 2, 4, 8, 16, 32), for freezing from the bottom up."""
        if not hasattr(self.backbone, "levels"):  # resnet / xception: the whole backbone is one level
            return [[self.backbone]] + [[] for _ in range(4)]
        return self.backbone.levels()

    def _freeze_encoder(self, n: int) -> None:
        self._frozen = [m for level in self._encoder_levels()[:n] for m in level]
        for m in self._frozen:
            m.requires_grad_(False)

    def frozen_modules(self) -> list[nn.Module]:
        return self._frozen

    def parameter_groups(self) -> list[dict]:
        """Encoder parameters at ``encoder_lr_scale`` x the learning rate, the hint branch at ``hint_lr_scale`` x,
        the rest at 1x; frozen ones left out."""
        branch = [p for m in (self.hint_branch, self.hint_proj) if m is not None for p in m.parameters()]
        return self.scaled_groups([(list(self.backbone.parameters()), self.config.encoder_lr_scale),
                                   (branch, self.config.hint_lr_scale)])

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        y = feats[4]
        if self.fusion is not None:
            g = self.global_fc(y.mean(dim=(2, 3)))
            y = self.fusion(torch.cat([y, g[:, :, None, None].expand(-1, -1, *y.shape[-2:])], 1))
        elif self.config.bottleneck_channels:
            y = self.fusion_narrow(y)
        hints = x[:, 1:] if self.config.hint_decoder else None
        branch = []
        if self.hint_branch is not None:
            b = x
            for level in self.hint_branch:
                b = level(b)
                branch.append(b)
        for i, (block, skip) in enumerate(zip(self.decoder, reversed(feats[:4]))):
            if self.upsamplers is not None:
                y = self.upsamplers[i](y)
            y = resized(y, skip.shape[-2:])
            parts = [y, skip]
            if hints is not None:  # the input is a multiple of the stride: level i is exactly 2**(4-i) smaller
                parts.append(self._pool_hints(hints, 2 ** (4 - i)))
            y = block(torch.cat(parts, 1))
            if branch:  # decoder level i is at stride 2 ** (4 - i), the branch's level 3 - i
                y = y + self.hint_proj[3 - i](branch[3 - i])
            if i == 0 and self.attention is not None:
                y = self.attention(y)
        return y

    def _pool_hints(self, hints: torch.Tensor, k: int) -> torch.Tensor:
        """Hint planes ``(B, C, H, W)`` (normalised a, b ... and a 0/1 mask last) at 1/``k`` the size."""
        if self.config.hint_pool == "average":
            return F.avg_pool2d(hints, k)
        mask = F.avg_pool2d(hints[:, -1:], k)
        values = F.avg_pool2d(hints[:, :-1] * hints[:, -1:], k) / mask.clamp_min(1e-6)
        return torch.cat([values, (mask > 0).to(hints.dtype)], 1)

    def load_backbone(self, path: str | Path) -> tuple[int, int]:
        """Load pretrained encoder weights (``backbones.load_backbone_file``); returns (loaded, skipped) counts."""
        return load_backbone_file(self.backbone, self.config.backbone, path)
