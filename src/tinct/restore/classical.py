"""Classical restoration steps (OpenCV, scikit-image) on the luminance: each a plain function on arrays.

All take and return ``L`` ``(H, W)`` float32 in [0, 100]; masks are ``(H, W)`` bool.
They are measured against the network in ``bench/restore.py``; ``restore.run`` uses the ones that win.
"""
from __future__ import annotations

import cv2
import numpy as np


def levels(L: np.ndarray, low: float = 0.5, high: float = 99.5, black: float = 2.0, white: float = 98.0) -> np.ndarray:
    """Auto levels: the ``low``/``high`` percentiles go to ``black``/``white`` (a faded print's lost range back).

    Never lowers the contrast (a photo already spanning the range is left as it is).
    """
    lo, hi = np.percentile(L, [low, high])
    if hi - lo < 1.0 or hi - lo >= white - black:
        return L.astype(np.float32)
    return np.clip(black + (L - lo) * (white - black) / (hi - lo), 0, 100).astype(np.float32)


def clahe(L: np.ndarray, clip: float = 1.5, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (OpenCV, 16-bit so no banding): uneven exposure."""
    u16 = np.clip(L * 655.35 + 0.5, 0, 65535).astype(np.uint16)
    out = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(u16)
    return (out.astype(np.float32) / 655.35).astype(np.float32)


def noise_sigma(L: np.ndarray) -> float:
    """Estimated Gaussian noise level of ``L`` in L units (Immerkaer 1996: the Laplacian-difference filter
    cancels smooth image content; the mean absolute response measures the noise)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    resp = cv2.filter2D(np.ascontiguousarray(L, np.float32), -1, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(resp).mean() / 6) if resp.size else 0.0


# h per estimated sigma. The estimate also counts fine texture as noise, so a larger factor smooths undamaged
# detail: after the network and inpainting, 20 val photos per kind at 128 px, factor 1.2 -> 0.9 took an undamaged
# photo 34.42 -> 36.63 dB, dust 33.19 -> 34.67, scratches 29.05 -> 29.62, grain 28.08 -> 28.66, fading 26.11 ->
# 26.47, and the realistic mix over val500 20.18 -> 20.17 (session 11).
NLM_PER_SIGMA = 0.9


def denoise(L: np.ndarray, strength: float | None = None) -> np.ndarray:
    """Non-local means (OpenCV): ``strength`` is the filter's h in L units (None: ``NLM_PER_SIGMA`` x the estimated
    noise)."""
    h = NLM_PER_SIGMA * noise_sigma(L) if strength is None else float(strength)
    if h <= 0.05:
        return L.astype(np.float32)
    u8 = np.clip(L * 2.55 + 0.5, 0, 255).astype(np.uint8)
    out = cv2.fastNlMeansDenoising(u8, None, h=h * 2.55, templateWindowSize=7, searchWindowSize=21)
    # NLM works in 8 bits: keep the input's fine tones, take only the change it made
    return np.clip(L + (out.astype(np.float32) - u8.astype(np.float32)) / 2.55, 0, 100).astype(np.float32)


def inpaint(L: np.ndarray, mask: np.ndarray, method: str = "telea", radius: float = 3.0, grow: int = 1) -> np.ndarray:
    """Fill ``mask`` (grown by ``grow`` px: a scratch's soft edge) from its surroundings: Telea or Navier-Stokes."""
    if not mask.any():
        return L.astype(np.float32)
    m = mask.astype(np.uint8)
    if grow:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    return cv2.inpaint(np.ascontiguousarray(L, np.float32), m, radius, flag).astype(np.float32)


def detect_damage(L: np.ndarray, size: int = 5, threshold: float = 25.0) -> np.ndarray:
    """A classical damage mask: thin bright and dark structures (white/black top-hat) stronger than ``threshold``
    (size 5, threshold between the 20 and 30 L units of a sweep on 10 damaged val photos: at 12 the mask's
    precision was 0.22, at 20 its F1 0.45, at 30 its recall 0.19).

    The baseline the network's mask is measured against: it also fires on thin real detail (twigs, hair, text).
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    Lf = np.ascontiguousarray(L, np.float32)
    white = cv2.morphologyEx(Lf, cv2.MORPH_TOPHAT, kernel)
    black = cv2.morphologyEx(Lf, cv2.MORPH_BLACKHAT, kernel)
    return (white > threshold) | (black > threshold)
