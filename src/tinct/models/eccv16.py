"""Zhang, Isola & Efros, ECCV 2016, "Colorful Image Colorization": the network of the paper's layer table.

Built as published (the deploy prototxt and its PyTorch port): eight blocks of
3x3 convolutions with biases and ReLU, one batch norm at the end of blocks 1-7;
channels 64, 128, 256, 512, 512, 512, 512, 256; the last conv of blocks 1-3 has
stride 2 (down to 1/8); blocks 5 and 6 are dilated by 2; block 8 is a 4x4
transposed conv back to 1/4 and two convs, without batch norm; then a 1x1 conv
to 313 logits, decoded by the annealed mean (T = 0.38) and upsampled
bilinearly to the input size. Stride: 8. About 32 M parameters.

It is the reference for speed (``bench/speed.py``): the ``classifier`` family is
the same idea on the ``cnn`` trunk (batch norm after every conv, data-derived
bins); this one keeps the paper's layers and its fixed 313-class output.

The 313 classes: the paper keeps the cells of the 10-unit ab grid that ImageNet
photos occupy, a file we do not have. We fix them from color science instead:
the grid cells nearest the ab footprint of the whole sRGB gamut (all cells the
gamut occupies, then the nearest empty ones up to ``num_bins``), same grid and
same count. Training (``tinct train --model eccv16``) keeps these cells and
takes each cell's rebalancing weight from the training photos' prior.
Input normalisation is the shared one (L/50 - 1) rather than the paper's (L-50)/100.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn

from .. import bins
from .base import BaseConfig, ColorModel
from .registry import register

ECCV16_BINS = 313


@dataclasses.dataclass
class ECCV16Config(BaseConfig):
    head: str = "classification"
    num_bins: int = ECCV16_BINS


@lru_cache(maxsize=None)
def gamut_bins(count: int = ECCV16_BINS, samples: int = 48) -> np.ndarray:
    """``count`` cell centres ``(count, 2)`` float32 of the ab grid (``bins.GRID``), nearest the sRGB gamut first.

    The gamut's ab footprint is taken from ``samples``^3 evenly spaced sRGB colors;
    cells are ranked by the distance from their centre to the nearest footprint
    point (0 for the cells the gamut occupies), ties by position: a fixed set.
    """
    from ..color import rgb_to_lab
    v = np.linspace(0.0, 1.0, samples)
    rgb = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 3)
    ab = np.unique(np.round(rgb_to_lab(rgb)[:, 1:]).astype(np.float32), axis=0)  # 1-unit footprint: ~40 K points
    n = int(2 * bins.EDGE / bins.GRID) + 1
    axis = np.arange(n, dtype=np.float32) * bins.GRID - bins.EDGE
    centers = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    if not 1 <= count <= len(centers):
        raise ValueError(f"num_bins must be in 1..{len(centers)}, got {count}")
    idx = np.clip(np.round((ab + bins.EDGE) / bins.GRID), 0, n - 1).astype(np.int64)
    dist = torch.cdist(torch.from_numpy(centers), torch.from_numpy(ab)).min(dim=1).values.numpy()
    dist[idx[:, 0] * n + idx[:, 1]] = 0.0  # occupied: some gamut color rounds to this cell (as bins.ab_histogram)
    order = np.lexsort((np.arange(len(centers)), dist))
    return np.ascontiguousarray(centers[np.sort(order[:count])])


def _conv_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=True),
            nn.ReLU(inplace=True)]


@register("eccv16")
class ECCV16(ColorModel):
    Config = ECCV16Config
    stride = 8

    # (output channels, number of convs, stride of the last conv, dilation) of blocks 1-7
    TABLE = ((64, 2, 2, 1), (128, 2, 2, 1), (256, 3, 2, 1), (512, 3, 1, 1), (512, 3, 1, 2), (512, 3, 1, 2),
             (512, 3, 1, 1))

    def __init__(self, config: ECCV16Config):
        super().__init__(config, 256, head_scale=4)
        blocks, cin = [], self.in_channels
        for cout, n, last_stride, dil in self.TABLE:
            layers = []
            for j in range(n):
                layers += _conv_relu(cin, cout, stride=last_stride if j == n - 1 else 1, dilation=dil)
                cin = cout
            blocks.append(nn.Sequential(*layers, nn.BatchNorm2d(cout)))
        blocks.append(nn.Sequential(
            nn.ConvTranspose2d(cin, 256, 4, stride=2, padding=1, bias=True), nn.ReLU(inplace=True),
            *_conv_relu(256, 256), *_conv_relu(256, 256)))
        self.blocks = nn.Sequential(*blocks)
        if config.head == "classification" and self.bin_centers.device.type != "meta":
            self.bin_centers.copy_(torch.from_numpy(gamut_bins(config.num_bins)))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)

    @classmethod
    def data_options(cls, options: dict, ab_hist) -> dict:
        """The 313 classes are fixed (``gamut_bins``): the training photos do not choose them."""
        return options

    def set_bins(self, centers, weights) -> None:
        """Keep the fixed cells; take each one's weight from the cell of ``centers`` it equals.

        ``fit_data`` passes the training set's occupied cells and their rebalancing
        weights; a fixed cell the photos never occupy gets the largest weight (it is rarer than any).
        """
        centers = torch.as_tensor(centers, dtype=torch.float32)
        weights = torch.as_tensor(weights, dtype=torch.float32)
        d = torch.cdist(self.bin_centers.float(), centers)
        near, idx = d.min(dim=1)
        self.bin_weights.copy_(torch.where(near < 1e-3, weights[idx], weights.max()))
