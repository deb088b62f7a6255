"""Reading photos as luminance and writing results atomically.

``load_image`` accepts what scanners and cameras produce: 8/16-bit gray,
RGB (its luminance is used), RGBA (alpha kept aside), palette, CMYK; EXIF
orientation is applied. Anything else is a ``TinctError`` with one line.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .color import gray_to_luminance, rgb_to_luminance
from .errors import TinctError

DEFAULT_MAX_PIXELS = 200_000_000  # 200 MP: larger scans are refused before decoding


@dataclass
class LoadedImage:
    """``L``: ``(H, W)`` float32 in [0, 100]; ``alpha``: ``(H, W)`` uint8 or None."""
    L: np.ndarray
    alpha: np.ndarray | None
    format: str | None


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    path = Path(path)
    if not path.exists():
        raise TinctError(f"{path}: no such file")
    if path.is_dir():
        raise TinctError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise TinctError(f"{path}: empty file")
    try:
        with Image.open(path) as im:
            return image_to_luminance(im, max_pixels=max_pixels, name=str(path))
    except UnidentifiedImageError:
        raise TinctError(f"{path}: not an image, or a format tinct cannot read") from None
    except TinctError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise TinctError(f"{path}: cannot decode image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def image_to_luminance(im: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "image") -> LoadedImage:
    """A PIL image (any mode) -> its CIE L plane and alpha, after EXIF rotation."""
    w, h = im.size
    if w * h > max_pixels:
        raise TinctError(f"{name}: {w}x{h} pixels exceeds the limit of {max_pixels} (--max-pixels)")
    if w == 0 or h == 0:
        raise TinctError(f"{name}: image has no pixels")
    fmt = im.format
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im.load()
        im = ImageOps.exif_transpose(im)
    alpha = None
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        gray = np.asarray(im, dtype=np.float64) / 65535.0
        L = gray_to_luminance(gray)
    elif mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        L = gray_to_luminance(np.clip(arr / top, 0, 1))
    elif mode in ("L", "LA", "1"):
        L = gray_to_luminance(np.asarray(im.convert("L"), dtype=np.float64) / 255.0)
    else:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        L = rgb_to_luminance(rgb)
    return LoadedImage(L=np.ascontiguousarray(L, dtype=np.float32), alpha=alpha, format=fmt)


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path beside ``dest``; on success rename it over ``dest``, else delete it.

    Readers never see a half-written file: the rename is atomic on one filesystem.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part" + dest.suffix, dir=dest.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                ".tiff": "TIFF", ".bmp": "BMP"}


def save_image(rgb: np.ndarray, dest: str | os.PathLike, alpha: np.ndarray | None = None, quality: int = 95) -> None:
    """Write ``rgb`` ``(H, W, 3)`` uint8 (plus optional alpha) atomically; format from the suffix."""
    dest = Path(dest)
    fmt = SAVE_FORMATS.get(dest.suffix.lower())
    if fmt is None:
        raise TinctError(f"{dest}: unsupported output format {dest.suffix!r}; use one of {', '.join(sorted(SAVE_FORMATS))}")
    im = Image.fromarray(rgb, "RGB")
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        im.putalpha(Image.fromarray(alpha, "L"))
    kw = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        with atomic_path(dest) as tmp:
            im.save(tmp, format=fmt, **kw)
    except OSError as e:
        raise TinctError(f"{dest}: cannot write ({e.strerror or e})") from None
