"""Reading photos as luminance and writing results atomically.

``load_image`` accepts what scanners and cameras produce: 8/16-bit gray,
RGB (its luminance is used), RGBA (alpha kept aside), palette, CMYK; EXIF
orientation is applied. Anything else is a ``TinctError`` with one line.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .color import gray_to_luminance
from .errors import TinctError
from .fullres import luminance_of

DEFAULT_MAX_PIXELS = 200_000_000  # 200 MP: larger scans are refused before decoding
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}  # photos a folder run takes


def default_cache_dir() -> Path:
    """Where decoded photo caches, converted weights and ONNX copies go: ``$TINCT_CACHE`` or ``~/.cache/tinct``."""
    return Path(os.environ.get("TINCT_CACHE", Path.home() / ".cache" / "tinct"))

# one-line notes on stderr (the logging module's last-resort handler prints just the message)
_log = logging.getLogger("tinct")


@dataclass
class LoadedImage:
    """``L``: ``(H, W)`` float32 in [0, 100]; ``alpha``: ``(H, W)`` uint8 or None."""
    L: np.ndarray
    alpha: np.ndarray | None
    format: str | None


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, convert=None) -> LoadedImage:
    """Read ``path`` -> ``LoadedImage``; any file that is not a readable photo is a one-line ``TinctError``.

    The size is checked against ``max_pixels`` from the header, before any pixel is decoded.
    ``convert(im, max_pixels=, name=)`` replaces ``image_to_luminance`` (``restore`` keeps the colors too).
    """
    path = Path(path)
    if not path.exists():
        raise TinctError(f"{path}: no such file")
    if path.is_dir():
        raise TinctError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise TinctError(f"{path}: empty file")
    try:
        # Pillow warns (corrupt EXIF, truncated tags) on stderr: a refusal must stay one line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return _open_and_convert(path, max_pixels, convert)
            except Image.DecompressionBombError:
                # Pillow's own limit (2 x Image.MAX_IMAGE_PIXELS, a global) refused the header; ours decides
                with _PIL_LIMIT_LOCK:
                    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                    try:
                        return _open_and_convert(path, max_pixels, convert)
                    finally:
                        Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise TinctError(f"{path}: not an image, or a format tinct cannot read") from None
    except TinctError:
        raise
    except MemoryError:
        raise TinctError(f"{path}: not enough memory to decode this image") from None
    except Exception as e:  # Pillow's decoders raise many types on corrupt data (OSError, SyntaxError, struct.error ...)
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TinctError(f"{path}: cannot decode image ({why})") from None


_PIL_LIMIT_LOCK = threading.Lock()


def _open_and_convert(path: Path, max_pixels: int, convert=None) -> LoadedImage:
    with Image.open(path) as im:
        return (convert or image_to_luminance)(im, max_pixels=max_pixels, name=str(path))


def check_size(im: Image.Image, max_pixels: int, name: str) -> None:
    """Refuse (one line) an image over the pixel limit or without pixels, from its header alone."""
    w, h = im.size
    if w * h > max_pixels:
        raise TinctError(f"{name}: {w}x{h} pixels exceeds the limit of {max_pixels} (--max-pixels)")
    if w == 0 or h == 0:
        raise TinctError(f"{name}: image has no pixels")


def image_to_luminance(im: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "image") -> LoadedImage:
    """A PIL image (any mode) -> its CIE L plane and alpha, after EXIF rotation."""
    check_size(im, max_pixels, name)
    fmt = im.format
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im.load()
        im = upright(im, name)
    alpha = None
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.uint8)
    # 8/16-bit gray and 8-bit RGB go through lookup tables (fullres.luminance_of): float32 L and no
    # float64 copies of the photo, which bounded the peak memory of large scans
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        L = luminance_of(np.asarray(im))
    elif mode in ("I", "F"):
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64))
        # these modes carry no range: float scans are usually 0..1, integer ones 8 or 16 bit
        top = 65535.0 if arr.max() > 255 else 1.0 if mode == "F" and arr.max() <= 1.0 else 255.0
        L = gray_to_luminance(np.clip(arr / top, 0, 1))
    elif mode in ("L", "LA", "1"):
        L = luminance_of(np.asarray(im if mode == "L" else im.convert("L")))
    else:
        L = luminance_of(np.asarray(im if mode == "RGB" else im.convert("RGB")))
    return LoadedImage(L=np.ascontiguousarray(L, dtype=np.float32), alpha=alpha, format=fmt)


# EXIF orientation -> the transpose that makes the photo upright (Pillow's ImageOps.exif_transpose table)
_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}


def exif_orientation(im: Image.Image, name: str = "image") -> int:
    """The EXIF (or XMP) orientation of ``im``, 1..8; 1 when there is none or the metadata is broken.

    Metadata is optional: a malformed EXIF block (old scanners and archive tools write them) is
    ignored with a one-line warning, never a refusal; the pixels are what matters.
    """
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception as e:  # Pillow parses EXIF lazily and raises SyntaxError, struct.error, ValueError ...
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        _log.warning("tinct: warning: %s: ignoring malformed EXIF metadata (%s)", name, why)
        return 1
    return value if value in _ORIENTATION else 1  # 0, 9, a string ...: treat as upright


def upright(im: Image.Image, name: str = "image") -> Image.Image:
    """``im`` turned as its EXIF orientation says (the same image when upright or the metadata is broken).

    Unlike ``ImageOps.exif_transpose`` it never rewrites the metadata, so a damaged block cannot fail here.
    """
    orientation = exif_orientation(im, name)
    return im if orientation == 1 else im.transpose(_ORIENTATION[orientation])


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path beside ``dest``; on success rename it over ``dest``, else delete it.

    Readers never see a half-written file: the rename is atomic on one filesystem,
    and the data is fsynced first so a power cut cannot leave an empty ``dest``.
    The temporary name carries our pid, so a later run can tell the leftovers of a
    killed process (``remove_stale_parts``) from another live writer's file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.{os.getpid()}-", suffix=".part" + dest.suffix, dir=dest.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_PART_NAME = re.compile(r"^\..+\.(\d+)-[a-z0-9_]+\.part(\.[^.]+)?$")


def is_part_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a temporary file of ``atomic_path``."""
    return _PART_NAME.match(Path(path).name) is not None


def remove_stale_parts(folder: str | os.PathLike) -> int:
    """Delete temporary files that ``atomic_path`` left in ``folder`` when its process was killed.

    Only files whose writer pid is gone are removed. Returns how many were removed.
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        m = _PART_NAME.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False) or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists but is someone else's; or a number no pid can be: leave the file alone
    return True


def refuse_overwriting_input(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """A one-line ``TinctError`` when ``dest`` is ``src`` itself (same file by any path): inputs are never written."""
    src, dest = Path(src), Path(dest)
    if dest.exists() and src.exists() and dest.resolve() == src.resolve():
        raise TinctError(f"{dest}: refusing to overwrite the input")


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
    if fmt == "PNG":
        # zlib level 1 (OpenCV's default): 3x faster than Pillow's 6 on a 12 MP photo, files ~30% larger
        kw["compress_level"] = 1
    try:
        with atomic_path(dest) as tmp:
            im.save(tmp, format=fmt, **kw)
    except OSError as e:
        raise TinctError(f"{dest}: cannot write ({e.strerror or e})") from None
