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
  to uint8 through a lookup table, on a thread pool. Bands (256 K pixels) bound the
  temporaries; the only full-size arrays are the input L and the output.

The results equal ``color.clamp_ab_to_gamut`` + ``color.lab_to_rgb_t`` (within one
uint8 level, except the rare pixel where float rounding flips a bisection step at
the gamut boundary) and
``color.gray_to_luminance`` / ``color.rgb_to_luminance`` (to 1e-3 in L).
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from .color import (RGB_TO_XYZ, WHITE_D65, XYZ_TO_RGB, _EPS, _KAPPA, _f_inv, _linear_to_srgb, _srgb_to_linear,
                    gray_to_luminance)

# pixels per band: each NumPy call on a band is long enough that the threads rarely wait for each other's GIL
# (12 MP on 2 cores, measured: 0.45-0.50 s at 256 K pixels, 0.84-0.89 s at 64 K); a band's temporaries are ~10 MB
BAND_PIXELS = 1 << 18
GAMUT_ITERATIONS = 8   # bisection steps on the chroma scale: 1/256 of the chroma, below one uint8 level
# linear light -> 8-bit sRGB by table: steps of 2^-18 move the darkest levels (the steepest part of the
# curve, 12.92 x 255 levels per unit) by 0.013 of a level, so a pixel is off by one only that close to a
# rounding boundary; a gather from a 256 KB table costs a fraction of the power function per pixel
SRGB_TABLE_STEPS = 1 << 18

# companded sRGB in [-1e-3, 1 + 1e-3] (color.clamp_ab_to_gamut's tolerance) expressed on linear RGB
_LIN_LO = -1e-3 / 12.92
_LIN_HI = ((1 + 1e-3 + 0.055) / 1.055) ** 2.4


# ------------------------------------------------------------- loading ---
@lru_cache(maxsize=None)
def _gray_table(levels: int) -> np.ndarray:
    """CIE L of each gray level 0..levels-1 (float64 math, float32 result)."""
    return gray_to_luminance(np.arange(levels, dtype=np.float64) / (levels - 1))


@lru_cache(maxsize=None)
def _srgb8_table() -> np.ndarray:
    """8-bit sRGB of linear light ``i / SRGB_TABLE_STEPS`` for i = 0 .. SRGB_TABLE_STEPS (each step's centre)."""
    centres = (np.arange(SRGB_TABLE_STEPS + 1, dtype=np.float64) + 0.5) / SRGB_TABLE_STEPS
    return np.clip(_linear_to_srgb(centres) * 255 + 0.5, 0, 255).astype(np.uint8)


def default_workers() -> int:
    """Threads for the full-resolution work: torch's count when torch is loaded (``--threads``, the tests'
    one thread), else the cores this process may use."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
    fy = (L + 16.0) * np.float32(1 / 116)
    x, y, z = _f_inv(fy + a * np.float32(1 / 500)), _f_inv(fy), _f_inv(fy - b * np.float32(1 / 200))
    # three explicit rows written in place, not a matmul: BLAS would start its own threads for a 3x3 product
    lin = np.empty((3, len(L)), np.float32)
    for row, m in zip(lin, _M):
        np.multiply(x, m[0], out=row)
        row += m[1] * y
        row += m[2] * z
    return lin


def _in_gamut(lin: np.ndarray) -> np.ndarray:
    return (lin.min(axis=0) >= _LIN_LO) & (lin.max(axis=0) <= _LIN_HI)


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
    lin *= np.float32(SRGB_TABLE_STEPS)
    np.clip(lin, 0, SRGB_TABLE_STEPS, out=lin)
    return _srgb8_table()[lin.astype(np.int32).T]


def recombine(L: np.ndarray, ab_small, band_pixels: int = BAND_PIXELS, workers: int | None = None) -> np.ndarray:
    """Full-resolution ``L`` ``(H, W)`` float32 + ``ab_small`` ``(1, 2, h, w)`` -> sRGB ``(H, W, 3)`` uint8.

    ``ab_small`` is a tensor or an array; it is upsampled bilinearly (as
    ``F.interpolate(..., (H, W), mode="bilinear")``). Memory beyond ``L`` and the
    output: ``2 x h x W`` floats plus one band per worker. Bands run on ``workers``
    threads (default: ``default_workers()``). NumPy, not torch: NumPy releases the
    GIL and starts no threads of its own, so the pool is the only parallelism
    (torch's OpenMP threads per op cost 10-20x the CPU time on 64 K-pixel bands
    when another process holds a core, measured).
    """
    H, W = L.shape
    if hasattr(ab_small, "detach"):  # a torch tensor (not an isinstance test: that would import torch)
        ab_small = ab_small.detach().cpu().numpy()
    ab_small = np.asarray(ab_small, dtype=np.float32)[0]
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

    workers = workers or default_workers()
    tops = range(0, H, rows)
    if workers <= 1 or len(tops) < 2:
        for top in tops:
            band(top)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(band, tops))
    return out
