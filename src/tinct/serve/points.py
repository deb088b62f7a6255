"""Color points from a request -> the deep model's hint tensor, without full-resolution arrays.

Same JSON and same meaning as a hints file (``tinct.hints``): ``[{"x", "y", "color", "radius"?}]`` in
photo pixels, each a disc whose pixels take the color's Lab (a, b), later points painting over
earlier ones, then averaged into each working-size cell. ``hints.hints_from_points`` tests every
disc against the whole photo (100 points on a 12 MP photo took 32 s here, on a busy machine), which
a server cannot afford per request; this paints only each disc's bounding box, so the cost follows
the hinted pixels and never needs photo-sized arrays.
"""
from __future__ import annotations

import numpy as np
import torch

from ..color import rgb_to_lab
from ..hints import MAX_RADIUS, parse_color
from .errors import RequestError

MAX_HINT_PIXELS = 4_000_000  # painted pixels per request: bounds memory (16 bytes each) whatever the radii


def points_tensor(points: list, shape: tuple[int, int], h: int, w: int) -> torch.Tensor:
    """Validated ``points`` for a photo of ``shape`` (H, W) -> hints ``(1, 3, h, w)`` float32 (a, b, mask)."""
    H, W = shape
    pixels, owners, colors = [], [], []
    painted = 0
    for i, p in enumerate(points):
        x, y, r, rgb = _check(p, f"hints: point {i + 1}", H, W)
        y0, y1, x0, x1 = max(0, y - r), min(H, y + r + 1), max(0, x - r), min(W, x + r + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        painted += int(inside.sum())
        if painted > MAX_HINT_PIXELS:
            raise RequestError(400, f"hints: the points cover over {MAX_HINT_PIXELS} pixels; use smaller radii")
        pixels.append((yy[inside].astype(np.int64) * W + xx[inside]))
        owners.append(np.full(pixels[-1].size, i, np.int64))
        colors.append(rgb)
    hints = torch.zeros(1, 3, h, w)
    if not pixels:
        return hints
    flat, who = np.concatenate(pixels), np.concatenate(owners)
    # a pixel painted twice keeps the later point's color, as a brush (and hints.py) would
    _, last = np.unique(flat[::-1], return_index=True)
    keep = flat.size - 1 - last
    flat, who = flat[keep], who[keep]
    ab = rgb_to_lab(np.asarray(colors, np.float64) / 255.0)[:, 1:][who]
    cells = (flat // W) * h // H * w + (flat % W) * w // W  # the cell of pixel (y, x), as hints.cell_average
    n = np.bincount(cells, minlength=h * w)
    has = n > 0
    for c in range(2):
        s = np.bincount(cells, weights=ab[:, c], minlength=h * w)
        hints[0, c].view(-1)[torch.from_numpy(has)] = torch.from_numpy(s[has] / n[has]).float()
    hints[0, 2].view(-1)[torch.from_numpy(has)] = 1.0
    return hints


def _check(p, where: str, H: int, W: int) -> tuple[int, int, int, tuple[int, int, int]]:
    if not isinstance(p, dict):
        raise RequestError(400, f'{where}: expected an object like {{"x": 10, "y": 20, "color": "#ff0000"}}')
    for key in ("x", "y", "color"):
        if key not in p:
            raise RequestError(400, f"{where}: missing {key!r}")
    unknown = set(p) - {"x", "y", "color", "radius"}
    if unknown:
        raise RequestError(400, f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: x, y, color, radius)")
    values = []
    for key in ("x", "y", "radius"):
        v = p.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")) \
                or v != int(v):
            raise RequestError(400, f"{where}: {key} must be a whole number of pixels, got {v!r}")
        values.append(int(v))
    x, y, r = values
    if not (0 <= x < W and 0 <= y < H):
        raise RequestError(400, f"{where}: ({x}, {y}) is outside the photo ({W}x{H}; x from the left, y from the top)")
    if not 0 <= r <= MAX_RADIUS:
        raise RequestError(400, f"{where}: radius must be 0..{MAX_RADIUS}, got {r}")
    try:
        rgb = parse_color(p["color"])
    except ValueError as e:
        raise RequestError(400, f"{where}: {e}") from None
    return x, y, r, rgb
