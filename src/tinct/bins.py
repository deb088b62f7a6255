"""Quantized ab space for colorization as classification (Zhang et al. 2016).

The ab plane is cut into cells of ``GRID`` units over [-110, 110]; the cells
that real photos use ("in gamut", 313 on ImageNet) are the classes. Training
targets are soft: each pixel's ab is spread over its ``K_NEAREST`` nearest
cell centres with a Gaussian of ``SIGMA``. Rare colors are up-weighted by the
rebalancing weights; predictions are decoded by the annealed mean.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

GRID = 10.0
EDGE = 110.0
K_NEAREST = 5
SIGMA = 5.0
REBALANCE_LAMBDA = 0.5
TEMPERATURE = 0.38
# ab errors above this count as wholly wrong in AuC (Zhang et al.'s thresholds 0..150; metrics.auc)
AUC_MAX_ERROR = 150.0

_N_SIDE = int(2 * EDGE / GRID) + 1  # 23 cells per axis, centres at -110, -100, ..., 110


def ab_histogram(ab: np.ndarray) -> np.ndarray:
    """Counts of ab values on the full 23x23 grid. ``ab``: ``(N, 2)`` Lab units -> ``(23, 23)`` float64."""
    idx = np.clip(np.round((ab + EDGE) / GRID), 0, _N_SIDE - 1).astype(np.int64)
    flat = idx[:, 0] * _N_SIDE + idx[:, 1]
    return np.bincount(flat, minlength=_N_SIDE * _N_SIDE).reshape(_N_SIDE, _N_SIDE).astype(np.float64)


def bins_from_histogram(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-gamut cell centres and their prior from a ``(23, 23)`` histogram.

    Returns ``centers`` ``(Q, 2)`` float32 in Lab units and ``prior`` ``(Q,)``
    float32 summing to 1, with Q the number of occupied cells.
    """
    a, b = np.nonzero(hist > 0)
    centers = np.stack([a, b], 1).astype(np.float32) * GRID - EDGE
    prior = hist[a, b] / hist.sum()
    return centers, prior.astype(np.float32)


def rebalance_weights(hist: np.ndarray, lam: float = REBALANCE_LAMBDA, sigma: float = SIGMA) -> np.ndarray:
    """Per-class weights ``(Q,)``: inverse of the smoothed prior mixed with uniform.

    Normalised so that their expectation under the (smoothed) prior is 1.
    """
    from scipy.ndimage import gaussian_filter  # here, not at the top: scipy.ndimage costs colorize's start-up ~0.3 s

    a, b = np.nonzero(hist > 0)
    smooth = gaussian_filter(hist / hist.sum(), sigma / GRID)[a, b]
    smooth = smooth / smooth.sum()
    w = 1.0 / ((1 - lam) * smooth + lam / len(smooth))
    w = w / (smooth * w).sum()
    return w.astype(np.float32)


def soft_encode(ab: torch.Tensor, centers: torch.Tensor, k: int = K_NEAREST, sigma: float = SIGMA) -> torch.Tensor:
    """Soft class targets. ``ab`` ``(B, 2, H, W)``, ``centers`` ``(Q, 2)`` -> ``(B, Q, H, W)``, summing to 1 over Q."""
    B, _, H, W = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, centers) ** 2
    near_d2, near_idx = d2.topk(k, dim=1, largest=False)
    w = torch.softmax(-near_d2 / (2 * sigma ** 2), dim=1)
    target = torch.zeros(flat.shape[0], centers.shape[0], dtype=ab.dtype, device=ab.device)
    target.scatter_(1, near_idx, w)
    return target.view(B, H, W, -1).permute(0, 3, 1, 2)


def nearest_bin(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Index of the nearest cell for each pixel: ``(B, 2, H, W)`` -> ``(B, H, W)`` int64."""
    B, _, H, W = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    return torch.cdist(flat, centers).argmin(dim=1).view(B, H, W)


def annealed_mean(logits: torch.Tensor, centers: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Decode ``(B, Q, H, W)`` logits to ab ``(B, 2, H, W)``.

    T=1 is the mean of the predicted distribution, T->0 its mode; 0.38 keeps
    the vividness of the mode and the spatial consistency of the mean.
    """
    p = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, centers)


def rebalanced_cross_entropy(logits: torch.Tensor, ab_true: torch.Tensor, centers: torch.Tensor,
                             weights: torch.Tensor) -> torch.Tensor:
    """Multinomial cross-entropy against soft targets, each pixel weighted by its true color's rarity.

    ``logits`` ``(B, Q, h, w)``; ``ab_true`` ``(B, 2, H, W)`` is resized to ``(h, w)``.
    """
    if ab_true.shape[-2:] != logits.shape[-2:]:
        ab_true = F.interpolate(ab_true, size=logits.shape[-2:], mode="area")
    target = soft_encode(ab_true, centers)
    pixel_w = weights[nearest_bin(ab_true, centers)]
    ce = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    return (ce * pixel_w).mean()
