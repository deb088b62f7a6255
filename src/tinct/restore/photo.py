"""One rule for a photo about to be colorized, shared by ``tinct colorize``, ``tinct.colorize()`` and the HTTP API.

A photo that already has color (a faded color print, an autochrome; ``color.is_color_photo``) gets its own colors
restored instead of being grayed and recolored, unless ``recolor`` asks for new colors; with ``restore`` its damage
is repaired first. Every other photo (gray, or a one-tint sepia print) is colorized from its luminance, restored
first with ``restore``. The caller colorizes when ``Prepared.rgb`` is None and says so when it is not
(``KEPT_COLORS``): a photo's colors are never replaced without a word.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .color import is_color_photo, restore_colors
from .run import RestoreOptions, restore_image

KEPT_COLORS = "already in color: restored its own colors instead of recoloring it"


@dataclass
class Prepared:
    """``L``: ``(H, W)`` float32 in [0, 100], the luminance to colorize (restored with ``restore``);
    ``rgb``: ``(H, W, 3)`` uint8, the photo's own colors restored (the final result), or None: colorize ``L``;
    ``mask``: ``(H, W)`` bool, the damage found (None without ``restore``)."""
    L: np.ndarray
    rgb: np.ndarray | None = None
    mask: np.ndarray | None = None


def keeps_own_colors(rgb: np.ndarray | None, recolor: bool) -> bool:
    """Whether a photo (``rgb`` ``(H, W, 3)`` uint8, None for a gray file) keeps its own colors."""
    return rgb is not None and not recolor and is_color_photo(rgb)


def prepare(rgb: np.ndarray | None, L: np.ndarray, restore: bool, options: RestoreOptions | None = None) -> Prepared:
    """A loaded photo (``rgb`` or None, its luminance ``L`` ``(H, W)``) -> what to colorize or keep.

    ``options.recolor``: gray and recolor a color photo anyway; the rest of ``options`` applies with ``restore``
    (and ``contrast`` to a color photo's own colors).
    """
    options = options or RestoreOptions()
    color = keeps_own_colors(rgb, options.recolor)
    if restore:
        r = restore_image(rgb, L, options, keep_color=not options.recolor)
        return Prepared(L=r.L, rgb=r.rgb if color else None, mask=r.mask)
    if color:
        fixed = restore_colors(rgb.astype(np.float32) / 255.0, contrast=options.contrast)
        return Prepared(L=L, rgb=np.clip(fixed * 255 + 0.5, 0, 255).astype(np.uint8))
    return Prepared(L=np.asarray(L, np.float32))
