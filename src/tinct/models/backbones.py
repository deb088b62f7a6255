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

import torch
import torch.nn as nn


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


BACKBONES = {"resnet": ResNetBackbone, "xception": XceptionBackbone}


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
