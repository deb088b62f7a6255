"""U-Net (Ronneberger et al. 2015) for colorization, with a global-context branch.

Encoder halves the size ``depth`` times; the decoder doubles it back and
concatenates the encoder features of the same size (skip connections keep
edges sharp). The bottleneck adds a pooled global feature vector to every
position (as Iizuka et al. 2016 fuse global features), so scene-level cues
(indoor, beach, forest) steer the colors everywhere. Stride: 2**depth.

``semantic`` (e.g. ``"efficientnet-lite0"``) adds what a network trained on 10,000 photos cannot learn, what
things are: a frozen ImageNet classifier's encoder reads the gray photo (its RGB stem folded onto L), and its
stride-16 map and pooled 1280-d feature (with ``semantic_deep_map``, its stride-32 1280-d map too) join the
bottleneck through zero-initialised layers (Deep Koalarization,
Baldassarre et al. 2017, fuse an Inception-ResNet's feature the same way). Zero-initialised: added to a trained
U-Net (``tinct train --init FILE --option semantic=efficientnet-lite0 --backbone-weights imagenet``) it changes
nothing until it trains. The encoder's weights are part of the model file. By default it never trains; the
option ``semantic_frozen`` (levels frozen from the bottom, of 5) lets its upper levels adapt to colorization at
``semantic_lr_scale`` x the learning rate, the second stage of the usual transfer recipe. Its batch-norm statistics
stay the pretrained ones either way: a batch of 16 crops would estimate them worse than ImageNet did.

``semantic_skips`` also adds the encoder's stride-2, -4 and -8 maps (edges, textures, parts: what ImageNet
taught it below the level of objects) to the U-Net's skip connections at those strides, each through a
zero-initialised 1x1 conv, so the decoder reads pretrained features at every stride, as DDColor's and
DeOldify's decoders do. Zero-initialised too: it can be grown onto a trained file.

``self_attention`` puts SAGAN self-attention (Zhang et al. 2019; DeOldify's generator has it) after the
bottleneck's fusion, at stride 16, where it is cheap: every position can take its color cue from every other
(a wall's far side, a uniform's other sleeve), which the convolutions' receptive field reaches only weakly.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import TinctError
from .backbones import BACKBONES, LITE_VARIANTS, load_backbone_file
from .base import BaseConfig, ColorModel, conv_bn_relu
from .layers import SelfAttention, resized
from .registry import register
from .widen import unet_decoder_parts


@dataclasses.dataclass
class UNetConfig(BaseConfig):
    base_channels: int = 32        # width after the first halving; doubles per level up to 8x
    depth: int = 4                 # halvings of the size (stride 2**depth)
    global_context: bool = True    # add a pooled whole-photo feature at the bottleneck (scene cues)
    semantic: str = ""             # "" or an EfficientNet-Lite variant: frozen ImageNet features at the bottleneck
    semantic_frozen: int = 5       # training only: the semantic encoder's lower levels (of 5) that stay frozen
    semantic_lr_scale: float = 0.1  # training only: the learning rate of its unfrozen levels, x the schedule's
    semantic_deep_map: bool = False  # also its stride-32 1280-d map, not only that map's mean: where things are
    semantic_skips: bool = False   # also its stride-2/4/8 maps, added to the decoder's skips at those strides
    self_attention: bool = False   # SAGAN self-attention after the bottleneck's fusion: far parts of a photo agree


def level_widths(config: UNetConfig) -> list[int]:
    """Channels at each level, full resolution first: 16, 32, 64, 128, 256 for 32 base channels and depth 4.
    The full-resolution level is half as wide: it only carries edges, and it is the costliest."""
    c = config.base_channels
    return [c // 2] + [c * 2 ** min(i, 3) for i in range(config.depth)]


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout, dilation=1):
        super().__init__(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout, dilation=dilation))


@register("unet")
class UNet(ColorModel):
    Config = UNetConfig

    def __init__(self, config: UNetConfig):
        widths = level_widths(config)
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
        self.semantic = self.semantic_skip = None
        for option in ("semantic_deep_map", "semantic_skips"):
            if getattr(config, option) and not config.semantic:
                raise TinctError(f"{option} adds the semantic encoder's maps: set semantic too")
        if config.semantic:
            if config.semantic not in LITE_VARIANTS:
                raise TinctError(f"semantic must be one of {', '.join(LITE_VARIANTS)}, not {config.semantic!r}")
            if config.depth != 4:
                raise TinctError("semantic features join the stride-16 bottleneck: depth must be 4")
            self.semantic = BACKBONES[config.semantic](1, 1.0)
            if not 0 <= config.semantic_frozen <= 5:
                raise TinctError("semantic_frozen counts the semantic encoder's 5 levels: 0 to 5")
            self.semantic.requires_grad_(False)
            for level in self.semantic.levels()[config.semantic_frozen:]:
                for m in level:
                    m.requires_grad_(True)
            sem = self.semantic.channels
            self.semantic_map = nn.Conv2d(sem[3], widths[-1], 1)
            self.semantic_global = nn.Linear(sem[4], widths[-1])
            self.semantic_deep = nn.Conv2d(sem[4], widths[-1], 1) if config.semantic_deep_map else None
            # the semantic map at stride 2**(i + 1) joins the U-Net's skip at that stride, enc level i + 1
            self.semantic_skip = nn.ModuleList(
                nn.Conv2d(sem[i], widths[i + 1], 1) for i in range(3)) if config.semantic_skips else None
            for layer in (self.semantic_map, self.semantic_global, self.semantic_deep,
                          *(self.semantic_skip or ())):
                if layer is not None:
                    nn.init.zeros_(layer.weight)
                    nn.init.zeros_(layer.bias)
        # starts as the identity (gamma 0), so it can be grown onto a trained network (--init FILE --option ...)
        self.attention = SelfAttention(widths[-1]) if config.self_attention else None
        self.dec = nn.ModuleList()
        stop = 1 if head_scale == 2 else 0
        for i in range(config.depth - 1, stop - 1, -1):
            self.dec.append(DoubleConv(widths[i + 1] + widths[i], widths[i]))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        semantic = self.semantic(x[:, :1]) if self.semantic is not None else None  # normalised L only
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
        if semantic is not None:
            maps = [self.semantic_map(semantic[3])]
            if self.semantic_deep is not None:
                maps.append(self.semantic_deep(semantic[4]))
            for m in maps:
                x = x + resized(m, x.shape[-2:])
            x = x + self.semantic_global(semantic[4].mean(dim=(2, 3)))[:, :, None, None]
        if self.attention is not None:
            x = self.attention(x)
        for j, block in enumerate(self.dec):
            level = len(skips) - 2 - j
            skip = skips[level]
            if self.semantic_skip is not None and 1 <= level <= 3:
                skip = skip + resized(self.semantic_skip[level - 1](semantic[level - 1]), skip.shape[-2:])
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return x

    # models.widen: a new query dimension would change every attention logit, so it starts at zero
    WIDEN_ZERO_OUTPUTS = ("attention.query.",)

    def widen_input_parts(self, name: str) -> list[int] | None:
        """A decoder block reads the upsampled map and the skip."""
        return unet_decoder_parts(name, level_widths(self.config), self.config.depth)

    def frozen_modules(self) -> list[nn.Module]:
        # all of it: its trainable levels too keep their pretrained batch-norm statistics (eval mode)
        return [] if self.semantic is None else [self.semantic]

    def parameter_groups(self) -> list[dict]:
        """The semantic encoder's unfrozen levels at ``semantic_lr_scale`` x the learning rate, the rest at 1x."""
        encoder = [] if self.semantic is None else list(self.semantic.parameters())
        return self.scaled_groups([(encoder, self.config.semantic_lr_scale)])

    def load_backbone(self, path) -> tuple[int, int]:
        """Pretrained weights for the ``semantic`` encoder (``backbones.load_backbone_file``)."""
        if self.semantic is None:
            raise TinctError("--backbone-weights: this unet has no pretrained encoder "
                             "(--option semantic=efficientnet-lite0)")
        return load_backbone_file(self.semantic, self.config.semantic, path)

