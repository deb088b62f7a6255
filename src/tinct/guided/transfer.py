"""Example-based colorization: take the colors of a reference photo.

- ``reinhard_transfer``: Reinhard, Ashikhmin, Gooch & Shirley 2001, "Color
  transfer between images": per-channel mean and standard deviation matched in
  a decorrelated color space. We use CIE Lab (decorrelated enough, and it keeps
  the photo's L untouched, which l-alpha-beta would not). A gray photo has no
  chroma to rescale, so its chroma is first predicted from the reference's
  luminance-conditioned mean chroma (after luminance remapping, below); the
  Reinhard step then gives that chroma the reference's a, b mean and std.
- ``welsh_transfer``: Welsh, Ashikhmin & Mueller 2002, "Transferring color to
  greyscale images": about 200 jittered samples of the reference; each pixel
  of the photo takes the a, b of the sample whose luminance and neighbourhood
  standard deviation (5x5) match best, weighted 50/50 (L1), after the
  reference's luminance is remapped to the photo's mean and std (Hertzmann
  et al. 2001).

Both return ab ``(H, W, 2)`` float32 in Lab units for ``L`` ``(H, W)`` in [0, 100].
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy.ndimage import gaussian_filter1d, uniform_filter
from scipy.spatial import cKDTree

from ..color import rgb_to_lab
from ..errors import TinctError
from ..io import upright

REFERENCE_PIXELS = 1_000_000  # statistics need no more: larger references are shrunk first
MIN_REFERENCE_CHROMA = 1.0    # ab std below this: the reference is gray


@dataclass
class TransferOptions:
    luminance_bins: int = 64       # transfer: bins of the luminance -> mean chroma lookup
    samples: int = 200             # welsh: jittered samples of the reference (the paper's count)
    window: int = 5                # welsh: neighbourhood for the standard deviation
    seed: int = 0


def load_reference(path: str | os.PathLike, max_pixels: int = REFERENCE_PIXELS) -> np.ndarray:
    """A color reference photo -> Lab ``(h, w, 3)`` float32, shrunk to at most ``max_pixels``."""
    path = Path(path)
    if not path.is_file():
        raise TinctError(f"{path}: no such reference photo")
    try:
        with Image.open(path) as im:
            im.draft("RGB", (2048, 2048))  # JPEG: decode at reduced size when huge
            im = upright(im, str(path)).convert("RGB")
            if im.width * im.height > max_pixels:
                s = math.sqrt(max_pixels / (im.width * im.height))
                im = im.resize((max(1, int(im.width * s)), max(1, int(im.height * s))), Image.Resampling.BOX)
            rgb = np.asarray(im, dtype=np.float64) / 255.0
    except UnidentifiedImageError:
        raise TinctError(f"{path}: reference is not an image tinct can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise TinctError(f"{path}: cannot decode reference ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    lab = rgb_to_lab(rgb)
    if lab[..., 1:].reshape(-1, 2).std(0).max() < MIN_REFERENCE_CHROMA:
        raise TinctError(f"{path}: the reference photo has no color (it is gray); pick a color photo")
    return lab


def match_statistics(x: np.ndarray, ref_mean, ref_std) -> np.ndarray:
    """Reinhard's step per channel (last axis): ``(x - mean_x) / std_x * ref_std + ref_mean``.

    A channel with no spread in ``x`` is only shifted to ``ref_mean``.
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1])
    mean, std = flat.mean(0), flat.std(0)
    scale = np.where(std > 1e-6, np.asarray(ref_std) / np.maximum(std, 1e-6), 0.0)
    return ((x - mean) * scale + np.asarray(ref_mean)).astype(np.float32)


def remap_luminance(ref_L: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Shift and scale the reference's L to the photo's mean and std (so the two are comparable)."""
    s = ref_L.std()
    scale = L.std() / s if s > 1e-6 else 1.0
    return ((ref_L - ref_L.mean()) * scale + L.mean()).astype(np.float32)


def reinhard_transfer(L: np.ndarray, ref_lab: np.ndarray, options: TransferOptions | None = None) -> np.ndarray:
    """Chroma for ``L`` whose a, b mean and std per channel are the reference's."""
    options = options or TransferOptions()
    ref_L = remap_luminance(ref_lab[..., 0], L).ravel()
    ref_ab = ref_lab[..., 1:].reshape(-1, 2).astype(np.float64)
    lo, hi = float(min(L.min(), ref_L.min())), float(max(L.max(), ref_L.max())) + 1e-3
    n = options.luminance_bins
    idx = np.clip(((ref_L - lo) / (hi - lo) * n).astype(np.int64), 0, n - 1)
    count = np.bincount(idx, minlength=n).astype(np.float64)
    centers = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    table = np.empty((n, 2))
    # smoothed over neighbouring bins so a few pixels do not decide a bin; empty bins interpolate
    smooth_n = gaussian_filter1d(count, 1.0, mode="nearest")
    for c in range(2):
        sums = gaussian_filter1d(np.bincount(idx, weights=ref_ab[:, c], minlength=n), 1.0, mode="nearest")
        has = smooth_n > 1e-3 * max(smooth_n.max(), 1e-12)
        table[:, c] = np.interp(centers, centers[has], sums[has] / smooth_n[has])
    ab0 = np.stack([np.interp(L, centers, table[:, c]) for c in range(2)], -1)
    return match_statistics(ab0, ref_ab.mean(0), ref_ab.std(0))


def local_std(L: np.ndarray, window: int) -> np.ndarray:
    """Standard deviation of ``L`` over a ``window`` x ``window`` neighbourhood ``(H, W)`` float32."""
    L = L.astype(np.float64)
    m = uniform_filter(L, window, mode="reflect")
    return np.sqrt(np.maximum(uniform_filter(L * L, window, mode="reflect") - m * m, 0)).astype(np.float32)


def jittered_samples(h: int, w: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """About ``n`` (y, x) positions: one uniformly random point in each cell of a grid over the image."""
    gy = max(1, int(round(math.sqrt(n * h / w))))
    gx = max(1, int(round(n / gy)))
    ys = (np.arange(gy)[:, None] + rng.random((gy, gx))) * h / gy
    xs = (np.arange(gx)[None, :] + rng.random((gy, gx))) * w / gx
    return np.minimum(ys.astype(np.int64).ravel(), h - 1), np.minimum(xs.astype(np.int64).ravel(), w - 1)


def welsh_transfer(L: np.ndarray, ref_lab: np.ndarray, options: TransferOptions | None = None) -> np.ndarray:
    """Each pixel takes the a, b of the best-matching jittered reference sample (luminance + local std)."""
    options = options or TransferOptions()
    rng = np.random.default_rng(options.seed)
    ref_L = remap_luminance(ref_lab[..., 0], L)
    ys, xs = jittered_samples(*ref_L.shape, options.samples, rng)
    ref_feat = np.stack([ref_L[ys, xs], local_std(ref_L, options.window)[ys, xs]], -1)
    feat = np.stack([L.astype(np.float32), local_std(L, options.window)], -1).reshape(-1, 2)
    # equal weights on both differences, summed (L1): the paper's "weighted average, 50/50"
    _, best = cKDTree(ref_feat).query(feat, k=1, p=1)
    return ref_lab[ys, xs, 1:][best].reshape(*L.shape, 2).astype(np.float32)
