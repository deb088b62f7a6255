"""Colorization using optimization (Levin, Lischinski & Weiss, SIGGRAPH 2004).

Neighbouring pixels with similar luminance should get similar chroma: every
unhinted pixel's a (and b) is the weighted mean of its 3x3 neighbours',
``a_r = sum_s w_rs a_s`` with ``w_rs ~ exp(-(Y_r - Y_s)^2 / sigma_r^2)``
normalised to sum 1 over the window, ``sigma_r^2`` from the luminance variance
of the window around r (as in the authors' code: 0.6 x the variance, floored
so the closest neighbour keeps weight >= 0.01, and at 2e-6). Hinted pixels
keep their color. That is one sparse linear system ``(I - W) x = b`` (hinted
pixels get identity rows), the same matrix for a and b.

Solver (measured on val500 photos resized to 512 px, 12 strokes, on 2 busy CPUs):
the system is not symmetric (sigma depends on the row); pyamg's AMG hierarchies
(Ruge-Stuben, smoothed aggregation) preconditioning GMRES needed ~90
iterations, 15 s at 0.26 MP; SuperLU (``scipy.sparse.linalg.spsolve``) took
3.5 s at 0.26 MP and grows faster than the pixel count. So small photos
(<= ``direct_pixels``) are solved exactly with SuperLU, and larger ones by a
cascade (coarse to fine): exactly at the largest halving of the photo within
``direct_pixels``, then at each finer level the upsampled solution starts
``sweeps`` symmetric Gauss-Seidel sweeps (pyamg's C++ smoother) on that
level's own system. Smoothing repairs what upsampling blurs (chroma edges on
luminance edges); the result was 1.0-1.8 ab units from the exact solution on
average and within 0.2 points of its AuC; a 4 MP photo takes ~5 s of CPU
(bench/guided.py --levin-4mp). Hinted pixels are exact either way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import torch.nn.functional as F
from scipy.ndimage import uniform_filter

from ..errors import TinctError
from ..hints import Hints, cell_average

# (dy, dx) of the 8 neighbours in a 3x3 window
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


@dataclass
class LevinOptions:
    direct_pixels: int = 70_000      # solved exactly (SuperLU) up to this size; larger: cascade
    sweeps: int = 10                 # symmetric Gauss-Seidel sweeps per cascade level
    max_pixels: int = 8_000_000      # larger photos are solved at this size and the chroma upsampled


def affinity_matrix(Y: np.ndarray, mask: np.ndarray) -> sp.csr_matrix:
    """The system matrix ``I - W`` ``(N, N)`` for luminance ``Y`` ``(H, W)`` in [0, 1], N = H*W (row-major).

    ``W`` is row-stochastic over each pixel's in-image 3x3 neighbours; rows where
    ``mask`` ``(H, W)`` is True are identity rows (the hint is kept). Every row
    stores 9 entries; those of out-of-image neighbours are explicit zeros.
    """
    H, W = Y.shape
    N = H * W
    Y64 = Y.astype(np.float64)
    # window statistics over the in-image pixels of each 3x3 window, centre included
    count = uniform_filter(np.ones((H, W)), 3, mode="constant")
    mean = uniform_filter(Y64, 3, mode="constant") / count
    var = np.maximum(uniform_filter(Y64 * Y64, 3, mode="constant") / count - mean * mean, 0).astype(np.float32)
    del mean, count, Y64
    Y = Y.astype(np.float32)
    # out-of-image neighbours read a far-off value: their weight underflows to exactly 0
    pad = np.pad(Y, 1, mode="constant", constant_values=1e6)
    d2 = np.empty((8, H, W), np.float32)
    for k, (dy, dx) in enumerate(_OFFSETS):
        np.subtract(pad[1 + dy:1 + dy + H, 1 + dx:1 + dx + W], Y, out=d2[k])
    np.square(d2, out=d2)
    sigma2 = np.maximum(np.maximum(0.6 * var, d2.min(0) / -math.log(0.01)), 2e-6)
    d2 /= sigma2
    np.negative(d2, out=d2)
    w = np.exp(d2, out=d2)
    w[:, mask] = 0.0
    vals = np.empty((N, 9), np.float64)
    vals[:, 0] = 1.0
    vals[:, 1:] = w.reshape(8, N).T
    del w, d2
    # normalise in float64: rows of I - W must sum to 0 to ~1e-16, or the ill-conditioned system turns
    # float32 rounding (1e-8) into visible drift far from the hints
    total = vals[:, 1:].sum(1, keepdims=True)
    np.divide(vals[:, 1:], -np.where(total > 0, total, 1.0), out=vals[:, 1:])
    # out-of-image neighbours wrap around to some column; their entry is 0
    idx = np.int32 if N * 9 < 2 ** 31 else np.int64
    r = np.arange(N, dtype=idx)
    cols = np.empty((N, 9), idx)
    cols[:, 0] = r
    np.add(r[:, None], np.array([dy * W + dx for dy, dx in _OFFSETS], idx), out=cols[:, 1:])
    cols[:, 1:] %= N
    return sp.csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, 9 * N + 1, 9, dtype=idx)), shape=(N, N))


def solve_levin(L: np.ndarray, hints: Hints, options: LevinOptions | None = None) -> np.ndarray:
    """Chroma from luminance and scribbles: ``L`` ``(H, W)`` in [0, 100] -> ab ``(H, W, 2)`` float32.

    Hinted pixels keep their hint exactly (unless the photo exceeds ``max_pixels``).
    At least one hint is required.
    """
    options = options or LevinOptions()
    H, W = L.shape
    if hints.shape != (H, W):
        raise TinctError(f"hints are {hints.shape[1]}x{hints.shape[0]} but the photo is {W}x{H}")
    if hints.count == 0:
        raise TinctError("levin needs at least one hint color (--hints FILE)")
    if H * W > options.max_pixels:
        scale = math.sqrt(options.max_pixels / (H * W))
        h, w = max(1, int(H * scale)), max(1, int(W * scale))
        ab_s, mask_s = cell_average(hints, h, w)
        ab = _cascade(_resize(L, h, w), Hints(ab_s, mask_s), options)
        return _resize(ab, H, W)
    return _cascade(L, hints, options)


def _resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of ``(H, W)`` or ``(H, W, C)`` float32."""
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    shrink = h < x.shape[0] or w < x.shape[1]
    out = F.interpolate(t, size=(h, w), mode="bilinear", antialias=shrink, align_corners=False)[0]
    return out[0].numpy() if x.ndim == 2 else out.permute(1, 2, 0).numpy().copy()


def _cascade(L: np.ndarray, hints: Hints, options: LevinOptions) -> np.ndarray:
    H, W = L.shape
    sizes = [(H, W)]
    while sizes[-1][0] * sizes[-1][1] > options.direct_pixels and min(sizes[-1]) >= 4:
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    x, prev = None, sizes[-1]
    for h, w in reversed(sizes):
        if (h, w) == (H, W):
            Ls, ab, mask = L, hints.ab, hints.mask
        else:
            ab, mask = cell_average(hints, h, w)
            Ls = _resize(L, h, w)
        A = affinity_matrix(Ls / 100.0, mask)
        b = np.where(mask[..., None], ab, 0.0).reshape(-1, 2).astype(np.float64)
        if x is None:
            A.eliminate_zeros()  # explicit zeros would join far rows in SuperLU's ordering
            x = spla.spsolve(A.tocsc(), b).reshape(-1, 2)
        else:
            x = _smooth(A, _resize(x.reshape(*prev, 2), h, w).reshape(-1, 2).astype(np.float64), b, options.sweeps)
        prev = (h, w)
    x[hints.mask.ravel()] = hints.ab[hints.mask]  # exact at hints whatever the solver
    return x.reshape(H, W, 2).astype(np.float32)


def _smooth(A: sp.csr_matrix, x: np.ndarray, b: np.ndarray, sweeps: int) -> np.ndarray:
    from pyamg.relaxation.relaxation import gauss_seidel
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        xc = np.ascontiguousarray(x[:, c])
        gauss_seidel(A, xc, np.ascontiguousarray(b[:, c]), iterations=sweeps, sweep="symmetric")
        out[:, c] = xc
    return out


# ---------------------------------------------------------------- the deep model's points ---

SPREAD_DECAY = 1e-4      # how fast a point's correction fades: about 1/sqrt(decay) = 100 working-size px in a flat area
SPREAD_PIXELS = 70_000   # solved at most at this size (exactly); the correction is smooth, so it is upsampled


def spread_point_corrections(L: np.ndarray, ab: np.ndarray, hint_ab: np.ndarray, mask: np.ndarray,
                             decay: float = SPREAD_DECAY) -> np.ndarray:
    """Make a network's colorization take the user's points: ``ab`` + the difference (point color - ``ab``) at
    each point, spread by Levin et al.'s affinities (along similar luminance, stopped by edges) and fading with
    distance (``decay`` pulls the correction toward 0 at every other pixel; without it one point would tint
    the whole photo).

    ``L`` ``(h, w)`` in [0, 100]; ``ab``, ``hint_ab`` ``(h, w, 2)`` Lab units; ``mask`` ``(h, w)`` bool, the
    points. Returns ab ``(h, w, 2)`` float32, equal to ``hint_ab`` at the points (at sizes up to
    ``SPREAD_PIXELS``; above, the correction is solved on a smaller grid and upsampled).
    """
    h, w = L.shape
    if not mask.any():
        return ab.astype(np.float32)
    correction = np.where(mask[..., None], hint_ab - ab, 0.0).astype(np.float32)
    if h * w > SPREAD_PIXELS:
        scale = math.sqrt(SPREAD_PIXELS / (h * w))
        hs, ws = max(1, int(h * scale)), max(1, int(w * scale))
        c_small, m_small = cell_average(Hints(correction, mask), hs, ws)
        spread = _resize(_solve_spread(_resize(L, hs, ws), c_small, m_small, decay), h, w)
        spread[mask] = correction[mask]
    else:
        spread = _solve_spread(L, correction, mask, decay)
    return (ab + spread).astype(np.float32)


def _solve_spread(L: np.ndarray, correction: np.ndarray, mask: np.ndarray, decay: float) -> np.ndarray:
    """``(I - W + decay * I_free) x = correction at the points`` (identity rows there), for a and b."""
    A = affinity_matrix(L / 100.0, mask)
    A = (A + sp.diags(np.where(mask.ravel(), 0.0, decay))).tocsc()
    A.eliminate_zeros()
    b = np.where(mask[..., None], correction, 0.0).reshape(-1, 2).astype(np.float64)
    return spla.spsolve(A, b).reshape(*L.shape, 2).astype(np.float32)
