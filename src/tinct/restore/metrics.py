"""Scores of a restoration against the clean truth: PSNR/SSIM of the luminance, precision/recall/F1 of a mask."""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def psnr_l(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of luminance ``pred`` against ``truth``, both ``(H, W)`` in [0, 100] (peak 100)."""
    mse = float(np.mean((np.asarray(pred, np.float64) - np.asarray(truth, np.float64)) ** 2))
    return 10 * np.log10(100.0 ** 2 / max(mse, 1e-10))


def ssim_l(pred: np.ndarray, truth: np.ndarray) -> float:
    """SSIM of luminance ``pred`` against ``truth``, ``(H, W)`` in [0, 100] (scikit-image, Gaussian window)."""
    return float(structural_similarity(np.asarray(pred, np.float64), np.asarray(truth, np.float64),
                                       data_range=100.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def mask_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Pixel precision, recall and F1 of bool mask ``pred`` against ``truth`` (any equal shapes), pooled.

    With no true and no predicted damage all three are 1 (nothing to find, nothing wrongly found).
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = float(np.sum(pred & truth))
    fp = float(np.sum(pred & ~truth))
    fn = float(np.sum(~pred & truth))
    precision = tp / (tp + fp) if tp + fp else 1.0 if not fn else 0.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
