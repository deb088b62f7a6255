"""The full-resolution half of colorizing, fast and in bounded memory.

Everything here touches every pixel of the photo, so it decides the time and
the peak memory of a 24-megapixel scan (the network only sees the working size):

- ``luminance_of``: an 8-bit or 16-bit gray (or 8-bit RGB) array -> CIE L
  ``(H, W)`` float32, through lookup tables: gray has 256 (or 65536) possible
  values, so L is computed once per value in float64 and gathered, and RGB is
  linearised per channel by table and finished in float32 bands.
- ``recombine``: full-resolution L + working-size ab -> sRGB ``(H, W, 3)``
  uint8. ab is upsampled horizontally once at working height, then each band
  of rows is interpolated vertically, converted Lab -> linear RGB, its
  out-of-gamut pixels (only those) shrunk toward gray by bisection, companded
  and written as uint8, on a thread pool. Bands are small (64 K pixels) so their
  temporaries stay in cache; the only full-size arrays are the input L and the output.

The results equal ``color.clamp_ab_to_gamut`` + ``color.lab_to_rgb_t`` (within one
uint8 level, except the rare pixel where float rounding flips a bisection step at
the gamut boundary) and
``color.gray_to_luminance`` / ``color.rgb_to_luminance`` (to 1e-3 in L).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch

from .color import (RGB_TO_XYZ, WHITE_D65, XYZ_TO_RGB, _EPS, _KAPPA, _f_inv, _linear_to_srgb, _srgb_to_linear,
                    gray_to_luminance)

BAND_PIXELS = 1 << 16  # pixels per band: temporaries of a band fit in L2 cache, and allocations get reused
GAMUT_ITERATIONS = 8   # bisection steps on the chroma scale: 1/256 of the chroma, below one uint8 level

# companded sRGB in [-1e-3, 1 + 1e-3] (color.clamp_ab_to_gamut's tolerance) expressed on linear RGB
_LIN_LO = -1e-3 / 12.92
_LIN_HI = ((1 + 1e-3 + 0.055) / 1.055) ** 2.4


# ------------------------------------------------------------- loading ---
@lru_cache(maxsize=None)
def _gray_table(levels: int) -> np.ndarray:
    """CIE L of each gray level 0..levels-1 (float64 math, float32 result)."""
    return gray_to_luminance(np.arange(levels, dtype=np.float64) / (levels - 1))


@lru_cache(maxsize=None)
def _linear_table() -> np.ndarray:
    """Linear-light value of each 8-bit sRGB level, float32 ``(256,)``."""
    return _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def luminance_of(pixels: np.ndarray) -> np.ndarray:
    """CIE L ``(H, W)`` float32 in [0, 100] of ``pixels``: ``(H, W)`` uint8/uint16 gray or ``(H, W, 3)`` uint8 sRGB."""
    if pixels.ndim == 2 and pixels.dtype == np.uint8:
        return _gray_table(256)[pixels]
    if pixels.ndim == 2 and pixels.dtype.kind == "u" and pixels.dtype.itemsize == 2:
        return _gray_table(65536)[pixels]
    if pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8:
        return _rgb8_luminance(pixels)
    raise ValueError(f"luminance_of takes uint8/uint16 gray or uint8 RGB, not {pixels.dtype} {pixels.shape}")


def _rgb8_luminance(rgb: np.ndarray) -> np.ndarray:
    H, W, _ = rgb.shape
    lin = _linear_table()
    wr, wg, wb = (np.float32(c) for c in RGB_TO_XYZ[1])
    out = np.empty((H, W), dtype=np.float32)
    rows = max(1, BAND_PIXELS // W)
    for top in range(0, H, rows):
        band = rgb[top:top + rows]
        y = lin[band[..., 0]] * wr
        y += lin[band[..., 1]] * wg
        y += lin[band[..., 2]] * wb
        # CIE f(Y) in float32: cbrt is exact to ~1e-7 relative, L to ~1e-5
        f = np.where(y > _EPS, np.cbrt(y), (np.float32(_KAPPA) * y + 16) / 116)
        out[top:top + rows] = 116 * f - 16
    return out


# ----------------------------------------------------------- recombine ---
def _taps(n_out: int, n_in: int, start: int, stop: int):
    """Bilinear source indices and weights (half-pixel centres, as ``F.interpolate(align_corners=False)``)."""
    x = np.clip((np.arange(start, stop, dtype=np.float32) + 0.5) * np.float32(n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = x.astype(np.int64)  # x >= 0: truncation is floor
    return i0, np.minimum(i0 + 1, n_in - 1), (x - i0).astype(np.float32)


_M = (XYZ_TO_RGB * np.array(WHITE_D65)[None, :]).astype(np.float32)  # white folded into the matrix


def _linear_rgb(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lab (three ``(n,)`` float32 arrays) -> linear sRGB ``(3, n)`` float32, unclipped."""
    fy = (L + 16.0) / 116.0
    x, y, z = _f_inv(fy + a / 500.0), _f_inv(fy), _f_inv(fy - b / 200.0)
    # three explicit rows, not a matmul: BLAS would start its own threads for a 3x3 product
    return np.stack([m[0] * x + m[1] * y + m[2] * z for m in _M])


def _in_gamut(lin: np.ndarray) -> np.ndarray:
    return ((lin >= _LIN_LO) & (lin <= _LIN_HI)).all(axis=0)


def lab_band_to_srgb8(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One band: Lab ``(n,)`` x3 float32 -> sRGB ``(n, 3)`` uint8, chroma shrunk into the gamut (L and hue kept)."""
    lin = _linear_rgb(L, a, b)
    bad = np.flatnonzero(~_in_gamut(lin))
    if len(bad):
        Ls, as_, bs = L[bad], a[bad], b[bad]
        lo = np.zeros(len(bad), np.float32)
        hi = np.ones(len(bad), np.float32)
        for _ in range(GAMUT_ITERATIONS):
            mid = (lo + hi) * np.float32(0.5)
            good = _in_gamut(_linear_rgb(Ls, as_ * mid, bs * mid))
            lo = np.where(good, mid, lo)
            hi = np.where(good, hi, mid)
        lin[:, bad] = _linear_rgb(Ls, as_ * lo, bs * lo)
    srgb = _linear_to_srgb(lin)
    srgb *= 255.0
    srgb += 0.5
    return np.clip(srgb, 0, 255, out=srgb).astype(np.uint8).T


def recombine(L: np.ndarray, ab_small, band_pixels: int = BAND_PIXELS, workers: int | None = None) -> np.ndarray:
    """Full-resolution ``L`` ``(H, W)`` float32 + ``ab_small`` ``(1, 2, h, w)`` -> sRGB ``(H, W, 3)`` uint8.

    ``ab_small`` is a tensor or an array; it is upsampled bilinearly (as
    ``F.interpolate(..., (H, W), mode="bilinear")``). Memory beyond ``L`` and the
    output: ``2 x h x W`` floats plus one band per worker. Bands run on ``workers``
    threads (default: torch's thread count). NumPy, not torch: NumPy releases the
    GIL and starts no threads of its own, so the pool is the only parallelism
    (torch's OpenMP threads per op cost 10-20x the CPU time on 64 K-pixel bands
    when another process holds a core, measured).
    """
    H, W = L.shape
    ab_small = np.asarray(ab_small.detach().cpu() if isinstance(ab_small, torch.Tensor) else ab_small,
                          dtype=np.float32)[0]
    h, w = ab_small.shape[-2:]
    x0, x1, wx = _taps(W, w, 0, W)
    abx = ab_small[:, :, x0] * (1 - wx) + ab_small[:, :, x1] * wx  # (2, h, W): the rows are done per band
    L = np.ascontiguousarray(L, dtype=np.float32)
    out = np.empty((H, W, 3), dtype=np.uint8)
    rows = max(1, band_pixels // W)

    def band(top: int) -> None:
        bottom = min(H, top + rows)
        y0, y1, wy = _taps(H, h, top, bottom)
        ab = abx[:, y0] * (1 - wy)[:, None] + abx[:, y1] * wy[:, None]  # (2, r, W)
        rgb = lab_band_to_srgb8(L[top:bottom].reshape(-1), ab[0].reshape(-1), ab[1].reshape(-1))
        out[top:bottom] = rgb.reshape(bottom - top, W, 3)

    workers = workers or torch.get_num_threads()
    tops = range(0, H, rows)
    if workers <= 1 or len(tops) < 2:
        for top in tops:
            band(top)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(band, tops))
    return out
