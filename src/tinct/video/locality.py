"""Keep a color point's effect on its own region.

The deep model takes a point through its hint channels, but ours spreads one
point's color well beyond its object (a red point on a square also reddens
much of the background). A film's points are meant for one region ("her
dress"), so the model's answer with the points is blended into its answer
without them by a gate that falls off with the *geodesic* distance from the
nearest hinted cell, measured in luminance change along the way (Yatziv &
Sapiro 2006, "Fast image and video colorization using chrominance blending":
color spreads freely within a region and hardly across an edge)::

    d(x)   = min over paths from a hinted cell to x of  sum (|step of L| + eps)   (L units)
    g(x)   = 1 / (1 + (d(x) / reach)^4)
    ab(x)  = ab_without(x) + g(x) * (ab_with(x) - ab_without(x))

``reach`` (L units) is where a point's effect is halved: the default 8 passes
the shading inside an object and stops at an edge of 15-20 L. ``reach = 0``
turns the gate off (the model's own spread).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.graph import MCP_Geometric

EPS = 0.02      # L units per working pixel: far points of a perfectly flat frame still fade a little
SMOOTH = 0.5    # working px: Gaussian on L first (grain and compression noise are no edges)


def geodesic_distance(L: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``L`` ``(h, w)`` float in [0, 100], ``mask`` ``(h, w)`` bool (hinted cells) -> distance ``(h, w)`` float32."""
    Ls = np.pad(gaussian_filter(np.asarray(L, np.float64), SMOOTH), 1, mode="edge")
    c = Ls[1:-1, 1:-1]
    # the largest step to a 4-neighbour: both pixels beside an edge carry its full height, so crossing it
    # costs all of it (a smoothed gradient would spread it over three pixels and let colors leak past)
    step = np.max([np.abs(c - Ls[:-2, 1:-1]), np.abs(c - Ls[2:, 1:-1]),
                   np.abs(c - Ls[1:-1, :-2]), np.abs(c - Ls[1:-1, 2:])], axis=0)
    mcp = MCP_Geometric(step + EPS, fully_connected=True)
    starts = np.argwhere(mask)
    dist, _ = mcp.find_costs([tuple(s) for s in starts])
    return dist.astype(np.float32)


def hint_gate(L: np.ndarray, mask: np.ndarray, reach: float) -> np.ndarray:
    """Weight ``(h, w)`` float32 in [0, 1] of the hinted prediction: 1 on and near the points' regions, 0 far."""
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    d = geodesic_distance(L, mask)
    return (1.0 / (1.0 + (d / reach) ** 4)).astype(np.float32)


def gated_ab(ab_with: np.ndarray, ab_without: np.ndarray, L: np.ndarray, mask: np.ndarray,
             reach: float) -> np.ndarray:
    """Blend ``(2, h, w)`` predictions with and without hints by :func:`hint_gate`; ``reach <= 0``: ``ab_with``."""
    if reach <= 0:
        return ab_with
    g = hint_gate(L, mask, reach)
    return (ab_without + g[None] * (ab_with - ab_without)).astype(np.float32)
