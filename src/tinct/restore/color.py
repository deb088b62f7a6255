"""Photos that already have color: tell them from gray and toned (sepia) prints, and restore their own colors.

A sepia or selenium-toned print is a monochrome photo in one tint: its chroma lies along one line of
the ab plane. A faded color print (or an autochrome) still has hues in several directions, however
weak. ``color_spread`` measures the chroma across that line; above ``COLOR_SPREAD`` the photo is in
color and ``restore_colors`` gives it back its range, white balance and saturation instead of graying
and recoloring it.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..color import lab_to_rgb, rgb_to_lab

# Lab units of chroma across the main tint axis. Measured on ../shared/data/historical/old-photos: the
# four sepia prints (scratch_*) give 0.4-1.8, the eight faded color prints and autochromes 2.0-5.5.
COLOR_SPREAD = 1.9


def color_spread(rgb: np.ndarray) -> float:
    """Spread (std, Lab units) of the chroma across its main axis; ``rgb`` ``(H, W, 3)`` uint8 or float in [0, 1].

    0 for gray, small for a one-tint (sepia) print, larger for a photo with several hues.
    Computed on a 128 px thumbnail (noise and grain average out, and it is fast on a big scan).
    """
    rgb = np.asarray(rgb)
    u8 = rgb if rgb.dtype == np.uint8 else np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    im = Image.fromarray(np.ascontiguousarray(u8[..., :3]), "RGB")
    im.thumbnail((128, 128), Image.Resampling.BOX)
    ab = rgb_to_lab(np.asarray(im, np.float64) / 255.0).reshape(-1, 3)[:, 1:]
    if len(ab) < 2:
        return 0.0
    return float(np.sqrt(max(np.linalg.eigvalsh(np.cov(ab.T))[0], 0.0)))


def is_color_photo(rgb: np.ndarray) -> bool:
    """Whether ``rgb`` ``(H, W, 3)`` has real colors (not gray, not a one-tint toned print)."""
    return color_spread(rgb) > COLOR_SPREAD


def restore_colors(rgb: np.ndarray, contrast: bool = True, saturation_target: float = 14.0,
                   max_boost: float = 2.0) -> np.ndarray:
    """A faded color print's own colors back: ``rgb`` ``(H, W, 3)`` float in [0, 1] -> the same shape.

    Per-channel levels (each dye's 0.5-99.5 % range stretched: removes the cast of unevenly faded dyes
    and the lifted blacks; only the shared range when ``contrast`` is off), then a saturation boost
    (at most ``max_boost``) toward a median chroma of ``saturation_target`` Lab units, typical of color photos.
    """
    rgb = np.asarray(rgb, np.float32)
    lo = np.percentile(rgb.reshape(-1, 3), 0.5, axis=0)
    hi = np.percentile(rgb.reshape(-1, 3), 99.5, axis=0)
    if not contrast:  # white balance only: scale the channels to a common range, keep the tonal range
        lo = lo - lo.min()
        hi = hi + (hi.max() - hi)
    out = np.clip((rgb - lo) / np.maximum(hi - lo, 1e-3), 0, 1)
    lab = rgb_to_lab(out.astype(np.float64))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    median = float(np.median(chroma))
    boost = float(np.clip(saturation_target / max(median, 1e-3), 1.0, max_boost))
    lab[..., 1:] *= boost
    return np.clip(lab_to_rgb(lab), 0, 1).astype(np.float32)
