"""What one colorize request does, apart from HTTP: upload bytes in, PNG bytes out.

Runs in a worker thread of the pool. Uploads are read from memory only, so no
user string ever becomes a file name. The format is sniffed from the content
(Pillow's magic-number detection) and limited to a few common raster formats:
Pillow also reads formats that shell out to other programs (EPS), and a
server has no reason to accept them.
"""
from __future__ import annotations

import io
import json
import time
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import TinctError
from ..io import image_to_luminance
from ..models.base import ColorModel, Decoding
from ..pipeline import ColorizeOptions, colorize_luminance, working_size
from .errors import RequestError
from .points import points_tensor

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF")
PNG_COMPRESS_LEVEL = 3  # on a 1.2 MP result, Pillow's default (6) took 2.2x as long as 3 for a file no smaller


@dataclass
class Job:
    """One colorization. ``image``: the uploaded bytes; ``points``: parsed hints JSON (a list) or None."""
    image: bytes
    model: ColorModel
    model_name: str
    render_factor: int
    points: list | None
    max_pixels: int
    decoding: Decoding | None = None   # per-request prior correction; the shared model is never mutated
    restore: bool = False              # repair the damage (tinct.restore) before colorizing


@dataclass
class Result:
    png: bytes
    width: int
    height: int
    seconds: float


def open_upload(data: bytes, what: str, max_pixels: int) -> Image.Image:
    """Sniff and open (lazily: the header only) an uploaded image; refuse what is not one or too big."""
    if not data:
        raise RequestError(400, f"{what}: empty upload")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise RequestError(415, f"{what}: not an image in a supported format "
                                f"({', '.join(ACCEPTED_FORMATS)})") from None
    except Image.DecompressionBombError:
        raise RequestError(413, f"{what}: too many pixels (limit {max_pixels})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise RequestError(400, f"{what}: cannot read image header ({_first_line(e)})") from None
    w, h = im.size
    if w * h > max_pixels:
        raise RequestError(413, f"{what}: {w}x{h} is {w * h} pixels, over the limit of {max_pixels}")
    return im


def parse_points(text: str | None, max_points: int) -> list | None:
    """The ``hints`` form field: JSON ``[{"x", "y", "color", "radius"?}, ...]`` -> the list (checked later)."""
    if text is None or not text.strip():
        return None
    try:
        points = json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(400, f"hints: not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise RequestError(400, "hints: JSON nested too deeply") from None
    if not isinstance(points, list):
        raise RequestError(400, 'hints: must be a JSON list of {"x": .., "y": .., "color": "#rrggbb"} objects')
    if len(points) > max_points:
        raise RequestError(400, f"hints: {len(points)} points, over the limit of {max_points}")
    return points or None


def run(job: Job) -> Result:
    """Decode, colorize, encode. Raises ``RequestError`` for anything wrong with the inputs."""
    start = time.perf_counter()
    im = open_upload(job.image, "image", job.max_pixels)
    try:
        loaded = image_to_luminance(im, max_pixels=job.max_pixels, name="image")
    except TinctError as e:
        raise RequestError(400, str(e)) from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data: found only when decoding
        raise RequestError(400, f"image: cannot decode ({_first_line(e)})") from None
    finally:
        im.close()
    if job.restore:
        from ..restore.run import restore_luminance
        loaded.L = restore_luminance(loaded.L)[0]
    H, W = loaded.L.shape
    hints = None
    if job.points:
        if not job.model.config.hint_channels:
            raise RequestError(400, f"model {job.model_name!r} does not take color "
                                    "points; choose a model with hints support (see /api/models)")
        h, w = working_size(H, W, job.render_factor, job.model.stride)
        hints = points_tensor(job.points, (H, W), h, w)
    options = ColorizeOptions(render_factor=job.render_factor, decoding=job.decoding)
    rgb = colorize_luminance(job.model, loaded.L, options, hints)
    return Result(png=encode_png(rgb, loaded.alpha), width=W, height=H, seconds=time.perf_counter() - start)


def encode_png(rgb: np.ndarray, alpha: np.ndarray | None) -> bytes:
    """``rgb`` ``(H, W, 3)`` uint8 (+ alpha ``(H, W)`` uint8, kept when the upload had one) -> PNG bytes."""
    im = Image.fromarray(rgb, "RGB")
    if alpha is not None:
        im.putalpha(Image.fromarray(alpha, "L"))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
