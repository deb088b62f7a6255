"""User color hints: a hints file -> sparse chroma at full resolution -> the deep model's hint tensor.

Two file formats, both in the photo's pixel coordinates (after EXIF rotation):

- an image with an alpha channel (RGBA PNG) the size of the photo: every opaque
  pixel (alpha > 127, so anti-aliased brush edges count only where mostly
  painted) is a color the user chose; transparent pixels say nothing;
- JSON: ``[{"x": 12, "y": 40, "color": "#c03020"}, ...]`` with integer pixel
  coordinates, ``x`` from the left and ``y`` from the top; an optional
  ``"radius"`` (pixels, default 0) paints a disc instead of one pixel.

Only a hint's chroma (Lab a, b) is kept: the luminance is always the photo's.
Anything malformed is a one-line ``TinctError`` naming the file.

Points are painted by one painter (``paint_points``) for the CLI and the server alike: it visits only
each disc's bounding box, so 100 points on a 12-megapixel photo cost what their pixels cost (testing
every disc against the whole photo took 32 s). The server goes straight from points to the model's
hint tensor (``points_tensor``) without photo-sized arrays.
"""
from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .color import rgb_to_lab
from .errors import TinctError
from .io import atomic_path, upright

ALPHA_THRESHOLD = 127
MAX_RADIUS = 256
HINT_CHANNELS = 3  # what hints_tensor gives a model: a, b (Lab units) and a 0/1 mask
_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")


@dataclass
class Hints:
    """Sparse user colors at the photo's resolution.

    ``ab``: ``(H, W, 2)`` float32 Lab a, b (0 where there is no hint);
    ``mask``: ``(H, W)`` bool, True where the user gave a color.
    """
    ab: np.ndarray
    mask: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape

    @property
    def count(self) -> int:
        """Number of hinted pixels."""
        return int(self.mask.sum())


def parse_color(text) -> tuple[int, int, int]:
    """``"#rrggbb"`` or ``"#rgb"`` -> (r, g, b) in 0..255; anything else raises ``ValueError``."""
    m = _HEX.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"color {text!r} is not '#rrggbb'")
    h = m.group(1)
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def hints_from_rgb(rgb: np.ndarray, mask: np.ndarray) -> Hints:
    """Colors ``(H, W, 3)`` uint8 where ``mask`` ``(H, W)`` is True -> ``Hints``."""
    mask = np.asarray(mask, dtype=bool)
    ab = np.zeros(mask.shape + (2,), np.float32)
    if mask.any():
        ab[mask] = rgb_to_lab(rgb[mask].astype(np.float64) / 255.0)[:, 1:]
    return Hints(ab=ab, mask=mask)


def hints_from_rgba(rgba: np.ndarray) -> Hints:
    """An RGBA array ``(H, W, 4)`` uint8: opaque pixels are hints."""
    return hints_from_rgb(rgba[..., :3], rgba[..., 3] > ALPHA_THRESHOLD)


def paint_points(points, shape: tuple[int, int], name: str = "hints",
                 max_painted: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate the parsed JSON list and paint it on a photo of ``shape`` (H, W).

    Returns the painted pixels as flat indices ``y * W + x`` ``(N,)`` int64 (sorted, each once) and their
    Lab (a, b) ``(N, 2)`` float64. Each point is a disc of ``radius`` (default 0: one pixel); a pixel
    painted twice keeps the later point's color, as a brush would. ``max_painted`` bounds the pixels
    the discs may cover (memory); beyond it, a ``TinctError``.
    """
    H, W = shape
    if not isinstance(points, list):
        raise TinctError(f'{name}: hints JSON must be a list of {{"x": .., "y": .., "color": "#rrggbb"}} objects')
    pixels, owners, colors = [], [], []
    painted = 0
    for i, p in enumerate(points):
        x, y, r, rgb = _check_point(p, f"{name}: point {i + 1}", H, W)
        y0, y1, x0, x1 = max(0, y - r), min(H, y + r + 1), max(0, x - r), min(W, x + r + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        painted += int(inside.sum())
        if max_painted is not None and painted > max_painted:
            raise TinctError(f"{name}: the points cover over {max_painted} pixels; use smaller radii")
        pixels.append(yy[inside].astype(np.int64) * W + xx[inside])
        owners.append(np.full(pixels[-1].size, i, np.int64))
        colors.append(rgb)
    if not pixels:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    flat, who = np.concatenate(pixels), np.concatenate(owners)
    flat_rev = flat[::-1]
    flat, last = np.unique(flat_rev, return_index=True)  # first in reverse = the last point painting the pixel
    who = who[::-1][last]
    return flat, rgb_to_lab(np.asarray(colors, np.float64) / 255.0)[:, 1:][who]


def _check_point(p, where: str, H: int, W: int) -> tuple[int, int, int, tuple[int, int, int]]:
    """One point's (x, y, radius, (r, g, b)), or a one-line ``TinctError`` saying what is wrong with it."""
    if not isinstance(p, dict):
        raise TinctError(f'{where}: expected an object like {{"x": 10, "y": 20, "color": "#ff0000"}}')
    for key in ("x", "y", "color"):
        if key not in p:
            raise TinctError(f"{where}: missing {key!r}")
    unknown = set(p) - {"x", "y", "color", "radius"}
    if unknown:
        raise TinctError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: x, y, color, radius)")
    values = []
    for key in ("x", "y", "radius"):
        v = p.get(key, 0)
        if (isinstance(v, bool) or not isinstance(v, (int, float))
                or (isinstance(v, float) and not math.isfinite(v)) or v != int(v)):  # JSON allows NaN, Infinity
            raise TinctError(f"{where}: {key} must be a whole number of pixels, got {v!r}")
        values.append(int(v))
    x, y, r = values
    if not (0 <= x < W and 0 <= y < H):
        raise TinctError(f"{where}: ({x}, {y}) is outside the photo ({W}x{H}; x counts from the left, y from the top)")
    if not 0 <= r <= MAX_RADIUS:
        raise TinctError(f"{where}: radius must be 0..{MAX_RADIUS}, got {r}")
    try:
        rgb = parse_color(p["color"])
    except ValueError as e:
        raise TinctError(f"{where}: {e}") from None
    return x, y, r, rgb


def hints_from_points(points, shape: tuple[int, int], name: str = "hints") -> Hints:
    """The parsed JSON list -> ``Hints`` for a photo of ``shape`` (H, W). Validates every entry."""
    flat, ab = paint_points(points, shape, name)
    hints = Hints(ab=np.zeros(tuple(shape) + (2,), np.float32), mask=np.zeros(shape, bool))
    hints.ab.reshape(-1, 2)[flat] = ab
    hints.mask.reshape(-1)[flat] = True
    return hints


def points_tensor(points, shape: tuple[int, int], h: int, w: int, name: str = "hints",
                  max_painted: int | None = None) -> torch.Tensor:
    """Points for a photo of ``shape`` (H, W) -> the hint tensor ``(1, 3, h, w)`` at working size (as
    ``hints_tensor(hints_from_points(...))``, without photo-sized arrays)."""
    flat, ab = paint_points(points, shape, name, max_painted)
    W = shape[1]
    return _cells_tensor(*_cell_average(flat // W, flat % W, ab, shape, h, w))


def read_points_json(path: Path):
    """The parsed JSON of a hints file (photo or film points); one-line errors for bad JSON or reads."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise TinctError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except (UnicodeDecodeError, OSError) as e:
        raise TinctError(f"{path}: cannot read hints ({type(e).__name__})") from None


def load_hints(path: str | os.PathLike, shape: tuple[int, int]) -> Hints:
    """Read a hints file (``.json``, or an image with alpha) for a photo of ``shape`` (H, W)."""
    path = Path(path)
    if not path.is_file():
        raise TinctError(f"{path}: no such hints file")
    if path.suffix.lower() == ".json":
        hints = hints_from_points(read_points_json(path), shape, str(path))
    else:
        hints = hints_from_rgba(_read_rgba(path, shape))
    if hints.count == 0:
        raise TinctError(f"{path}: holds no hint colors (no opaque pixel / empty list)")
    return hints


def _read_rgba(path: Path, shape: tuple[int, int]) -> np.ndarray:
    H, W = shape
    try:
        with Image.open(path) as im:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                if im.size[0] * im.size[1] > 4 * H * W + 1024:  # refuse before decoding a huge wrong file
                    raise TinctError(f"{path}: hints image is {im.size[0]}x{im.size[1]} but the photo is {W}x{H}")
                im.load()
                im = upright(im, str(path))
            has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
            if not has_alpha:
                raise TinctError(f"{path}: hints image has no alpha channel; paint colors on a transparent "
                                 "RGBA PNG (transparent = no hint), or use a .json list")
            if im.size != (W, H):
                raise TinctError(f"{path}: hints image is {im.size[0]}x{im.size[1]} but the photo is {W}x{H}; "
                                 "it must be the photo's size")
            return np.asarray(im.convert("RGBA"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise TinctError(f"{path}: not a hints file (use an RGBA PNG or a .json list)") from None
    except TinctError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise TinctError(f"{path}: cannot decode hints image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def save_hints_png(rgb: np.ndarray, mask: np.ndarray, dest: str | os.PathLike) -> None:
    """Write colors ``(H, W, 3)`` uint8 where ``mask`` is True as an RGBA PNG hints file (atomically)."""
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[mask, :3] = rgb[mask]
    rgba[mask, 3] = 255
    with atomic_path(dest) as tmp:
        Image.fromarray(rgba, "RGBA").save(tmp, format="PNG")


def cell_average(hints: Hints, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Average the ab of the hinted pixels falling into each cell of an ``h`` x ``w`` grid.

    Returns ab ``(h, w, 2)`` float32 (0 in empty cells) and mask ``(h, w)`` bool.
    A pixel (y, x) of the ``(H, W)`` photo lies in cell (y*h//H, x*w//W).
    """
    ys, xs = np.nonzero(hints.mask)
    return _cell_average(ys, xs, hints.ab[ys, xs], hints.shape, h, w)


def _cell_average(ys: np.ndarray, xs: np.ndarray, ab: np.ndarray, shape: tuple[int, int], h: int,
                  w: int) -> tuple[np.ndarray, np.ndarray]:
    """``cell_average`` of the hinted pixels (ys, xs) with Lab (a, b) ``ab`` ``(N, 2)``."""
    H, W = shape
    cells = (ys * h // H) * w + xs * w // W
    n = np.bincount(cells, minlength=h * w)
    out = np.zeros((h * w, 2), np.float64)
    for c in range(2):
        out[:, c] = np.bincount(cells, weights=ab[:, c], minlength=h * w)
    has = n > 0
    out[has] /= n[has, None]
    return out.reshape(h, w, 2).astype(np.float32), has.reshape(h, w)


def hints_tensor(hints: Hints, h: int, w: int) -> torch.Tensor:
    """The deep model's hint input at working size: ``(1, 3, h, w)`` float32 = (a, b in Lab units, mask 0/1)."""
    return _cells_tensor(*cell_average(hints, h, w))


def _cells_tensor(ab: np.ndarray, mask: np.ndarray) -> torch.Tensor:
    t = np.concatenate([ab, mask[..., None].astype(np.float32)], -1)
    return torch.from_numpy(np.ascontiguousarray(t.transpose(2, 0, 1)))[None]


def check_takes_hints(model, name: str | None = None) -> None:
    """Refuse (one-line ``TinctError``) color points for a model without hint inputs (torch or ONNX)."""
    if getattr(model, "hint_channels", 0) != HINT_CHANNELS:
        raise TinctError(f"model {name or getattr(model, 'name', '?')!r} does not take color points (it was built "
                         "without hint channels); use one that does, such as the shipped default")
