"""Per-image colorization scores. Inputs are NumPy arrays, one image at a time.

``pred`` and ``true`` are Lab ``(H, W, 3)`` float32 unless stated; RGB is
``(H, W, 3)`` uint8. AuC follows Zhang et al. 2016: the fraction of pixels whose
ab error is within a threshold, averaged over thresholds 0..150, in percent;
the rebalanced variant weights each pixel by the inverse training frequency
of its true color, so getting rare (saturated) colors right counts more.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from . import bins
from .color import rgb_to_lab
from .data import colorfulness  # noqa: F401  (re-exported: a metric too)

AUC_THRESHOLDS = np.arange(0, bins.AUC_MAX_ERROR + 1, 1.0)


def ab_error(pred_lab: np.ndarray, true_lab: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean ab error ``(H, W)``."""
    d = pred_lab[..., 1:].astype(np.float64) - true_lab[..., 1:]
    return np.sqrt((d ** 2).sum(-1))


def auc(err: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Area under the cumulative error curve over thresholds 0..150, in percent."""
    e = err.ravel()
    w = np.ones_like(e) if weights is None else weights.ravel()
    order = np.argsort(e)
    cum = np.concatenate([[0.0], np.cumsum(w[order])]) / w.sum()
    within = cum[np.searchsorted(e[order], AUC_THRESHOLDS, side="right")]
    return float(within.mean() * 100)


def rebalance_pixel_weights(true_lab: np.ndarray, prior_hist: np.ndarray) -> np.ndarray:
    """Weight per pixel: 1 / smoothed training prior of its true ab cell ``(H, W)``."""
    p = gaussian_filter(prior_hist / prior_hist.sum(), bins.SIGMA / bins.GRID)
    p = np.maximum(p, p[p > 0].min())
    idx = np.clip(np.round((true_lab[..., 1:] + bins.EDGE) / bins.GRID), 0, p.shape[0] - 1).astype(np.int64)
    return 1.0 / p[idx[..., 0], idx[..., 1]]


def psnr(pred_rgb: np.ndarray, true_rgb: np.ndarray) -> float:
    mse = np.mean((pred_rgb.astype(np.float64) - true_rgb) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def ssim(pred_rgb: np.ndarray, true_rgb: np.ndarray) -> float:
    small = min(pred_rgb.shape[:2])
    win = min(7, small if small % 2 else small - 1)
    if win < 3:
        return float("nan")
    return float(structural_similarity(pred_rgb, true_rgb, channel_axis=-1, data_range=255, win_size=win))


def score_image(pred_lab: np.ndarray, true_lab: np.ndarray, pred_rgb: np.ndarray, true_rgb: np.ndarray,
                input_L: np.ndarray, prior_hist: np.ndarray | None) -> dict:
    """All scores for one photo as a flat dict of floats."""
    err = ab_error(pred_lab, true_lab)
    diff = pred_rgb.astype(np.float64) - true_rgb
    cf_pred, cf_true = colorfulness(pred_rgb), colorfulness(true_rgb)
    out = {
        "mae": float(np.abs(diff).mean()),
        "rmse": float(np.sqrt((diff ** 2).mean())),
        "psnr": psnr(pred_rgb, true_rgb),
        "ssim": ssim(pred_rgb, true_rgb),
        "auc": auc(err),
        "auc_rebal": auc(err, rebalance_pixel_weights(true_lab, prior_hist)) if prior_hist is not None else float("nan"),
        "colorfulness": cf_pred,
        "colorfulness_true": cf_true,
        "luminance_drift": float(np.abs(pred_lab[..., 0] - input_L).mean()),
    }
    return out


def score_rgb(rgb: np.ndarray, true_lab: np.ndarray, true_rgb: np.ndarray, prior_hist: np.ndarray | None) -> dict:
    """``score_image`` of an 8-bit output ``rgb`` ``(H, W, 3)`` colorized from the truth's own L."""
    return score_image(rgb_to_lab(rgb / 255.0), true_lab, rgb, true_rgb, true_lab[..., 0], prior_hist)


def mean_scores(scores: list[dict]) -> dict:
    """Per-key mean of ``score_image`` dicts (NaN entries ignored; NaN where every entry is)."""
    out = {}
    for k in scores[0]:
        v = np.array([s[k] for s in scores], np.float64)
        v = v[~np.isnan(v)]
        out[k] = float(v.mean()) if len(v) else float("nan")
    return out
