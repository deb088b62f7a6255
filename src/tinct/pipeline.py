"""Colorize: full-resolution L -> working-size L -> model -> ab -> upsample -> recombine.

The network only sees the luminance at a working resolution (``render_factor``
x 16 pixels on the side of a square of the same area, DeOldify's convention);
the predicted chroma is upsampled bilinearly and joined to the untouched
full-resolution L, so every output has exactly the input's size and
luminance, and the cost of the network does not grow with the photo.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .color import clamp_ab_to_gamut, lab_to_rgb_t
from .errors import TinctError
from .io import DEFAULT_MAX_PIXELS, LoadedImage, image_to_luminance, load_image, save_image
from .models.base import ColorModel

DEFAULT_RENDER_FACTOR = 16
_CHUNK_PIXELS = 1 << 20  # recombine a megapixel at a time: bounded memory at any size


@dataclass
class ColorizeOptions:
    render_factor: int = DEFAULT_RENDER_FACTOR
    max_pixels: int = DEFAULT_MAX_PIXELS
    jpeg_quality: int = 95


def working_size(height: int, width: int, render_factor: int, stride: int) -> tuple[int, int]:
    """(h, w) with the aspect of the photo, about (render_factor*16)^2 pixels, multiples of ``stride``.

    Never larger than the photo itself (rounded up to the stride).
    """
    if render_factor < 1:
        raise TinctError(f"render factor must be >= 1, got {render_factor}")
    side = render_factor * 16
    scale = min(1.0, side / math.sqrt(height * width))
    h = max(stride, int(round(height * scale / stride)) * stride)
    w = max(stride, int(round(width * scale / stride)) * stride)
    return h, w


@torch.no_grad()
def predict_ab(model: ColorModel, L: np.ndarray, render_factor: int = DEFAULT_RENDER_FACTOR,
               hints: torch.Tensor | None = None) -> torch.Tensor:
    """Chroma at working size: ``L`` ``(H, W)`` float32 in [0, 100] -> ab ``(1, 2, h, w)``."""
    H, W = L.shape
    h, w = working_size(H, W, render_factor, model.stride)
    L_t = torch.from_numpy(np.ascontiguousarray(L, dtype=np.float32))[None, None]
    L_small = F.interpolate(L_t, size=(h, w), mode="bilinear", antialias=(h < H or w < W), align_corners=False)
    device = next(model.parameters()).device
    return model(L_small.to(device), hints)["ab"].float().cpu()


@torch.no_grad()
def recombine(L: np.ndarray, ab_small: torch.Tensor) -> np.ndarray:
    """Join full-resolution ``L`` ``(H, W)`` with upsampled ``ab_small`` ``(1, 2, h, w)`` -> RGB ``(H, W, 3)`` uint8.

    Works a band of rows at a time; out-of-gamut chroma is shrunk, so L is kept.
    """
    H, W = L.shape
    out = np.empty((H, W, 3), dtype=np.uint8)
    rows = max(1, _CHUNK_PIXELS // W)
    L_t = torch.from_numpy(np.ascontiguousarray(L, dtype=np.float32))
    for top in range(0, H, rows):
        bottom = min(H, top + rows)
        ab = _upsample_rows(ab_small, H, W, top, bottom)
        Lb = L_t[top:bottom][None, None]
        ab = clamp_ab_to_gamut(Lb, ab)
        rgb = lab_to_rgb_t(torch.cat([Lb, ab], 1))[0]
        out[top:bottom] = (rgb * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return out


def _bilinear_taps(n_out: int, n_in: int, start: int, stop: int):
    """Source indices and weights of outputs [start, stop) for bilinear resizing n_in -> n_out (half-pixel centres)."""
    x = ((torch.arange(start, stop, dtype=torch.float32) + 0.5) * (n_in / n_out) - 0.5).clamp(0, n_in - 1)
    i0 = x.floor().long()
    return i0, (i0 + 1).clamp(max=n_in - 1), x - i0


def _upsample_rows(ab_small: torch.Tensor, H: int, W: int, top: int, bottom: int) -> torch.Tensor:
    """Rows [top, bottom) of ``F.interpolate(ab_small, (H, W), mode="bilinear")``, without the rest."""
    h, w = ab_small.shape[-2:]
    y0, y1, wy = _bilinear_taps(H, h, top, bottom)
    band = ab_small[:, :, y0] * (1 - wy)[:, None] + ab_small[:, :, y1] * wy[:, None]
    x0, x1, wx = _bilinear_taps(W, w, 0, W)
    return band[..., x0] * (1 - wx) + band[..., x1] * wx


def colorize_luminance(model: ColorModel, L: np.ndarray, options: ColorizeOptions | None = None,
                       hints: torch.Tensor | None = None) -> np.ndarray:
    """``L`` ``(H, W)`` float32 in [0, 100] -> colorized RGB ``(H, W, 3)`` uint8 with the same L."""
    options = options or ColorizeOptions()
    return recombine(L, predict_ab(model, L, options.render_factor, hints))


def colorize(image, model: ColorModel | str | os.PathLike | None = None, render_factor: int = DEFAULT_RENDER_FACTOR):
    """Colorize a PIL image or a NumPy array; returns a PIL image of the same size.

    Arrays: ``(H, W)`` gray (uint8, uint16 or float in [0, 1]) or ``(H, W, 3|4)``
    RGB(A) uint8. An RGBA input keeps its alpha.
    """
    from .weights import load_model
    if not isinstance(model, ColorModel):
        model = load_model(model)
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if not isinstance(image, Image.Image):
        raise TinctError(f"colorize() takes a PIL image or a NumPy array, not {type(image).__name__}")
    loaded = image_to_luminance(image)
    rgb = colorize_luminance(model, loaded.L, ColorizeOptions(render_factor=render_factor))
    out = Image.fromarray(rgb, "RGB")
    if loaded.alpha is not None:
        out.putalpha(Image.fromarray(loaded.alpha, "L"))
    return out


def _array_to_pil(a: np.ndarray) -> Image.Image:
    if a.ndim == 2:
        if a.dtype == np.uint8:
            return Image.fromarray(a, "L")
        if a.dtype == np.uint16:
            return Image.fromarray(a.astype(np.int32), "I")
        if np.issubdtype(a.dtype, np.floating):
            return Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8), "L")
    if a.ndim == 3 and a.shape[2] in (3, 4) and a.dtype == np.uint8:
        return Image.fromarray(a, "RGB" if a.shape[2] == 3 else "RGBA")
    raise TinctError(f"unsupported array: shape {a.shape}, dtype {a.dtype}")


def colorize_file(model: ColorModel, src: str | os.PathLike, dest: str | os.PathLike,
                  options: ColorizeOptions | None = None) -> None:
    """Read ``src``, colorize, write ``dest`` atomically (never over ``src``)."""
    options = options or ColorizeOptions()
    src, dest = Path(src), Path(dest)
    if dest.exists() and src.resolve() == dest.resolve():
        raise TinctError(f"{dest}: refusing to overwrite the input")
    loaded: LoadedImage = load_image(src, options.max_pixels)
    rgb = colorize_luminance(model, loaded.L, options)
    save_image(rgb, dest, loaded.alpha, quality=options.jpeg_quality)
