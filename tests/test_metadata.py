"""Broken metadata (EXIF, ICC, XMP, MPO, thumbnails) never refuses a photo: the pixels are what matter.

Every file here is built by the test: a valid image with one damaged metadata block spliced in.
"""
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from tinct.color import rgb_to_lab
from tinct.io import exif_orientation, load_image

from .conftest import gradient_photo

PIXELS = gradient_photo(40, 50)
GARBAGE_EXIF = b"Exif\x00\x00" + b"XXXXnot-a-tiff-header" * 3


def _jpeg(**kw) -> bytes:
    buf = io.BytesIO()
    # dpi in the JFIF header: Pillow then never reads the EXIF at open time, so our own read meets the damage
    Image.fromarray(PIXELS).save(buf, "JPEG", dpi=(300, 300), **kw)
    return buf.getvalue()


def _jpeg_segment(marker: bytes, payload: bytes) -> bytes:
    data = _jpeg()
    return data[:2] + marker + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def _png_chunk(ctype: bytes, payload: bytes) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(PIXELS).save(buf, "PNG")
    b = buf.getvalue()
    chunk = struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))
    i = b.index(b"IDAT") - 4
    return b[:i] + chunk + b[i:]


def _webp(**kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(PIXELS).save(buf, "WEBP", **kw)
    return buf.getvalue()


# IFD0 with a valid orientation (6) but a next-IFD (thumbnail) offset far past the end of the block
_BAD_THUMBNAIL_EXIF = (b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00"
                       b"\xff\xff\xff\x7f")

CASES = {
    "jpeg_exif_not_tiff.jpg": lambda: _jpeg_segment(b"\xff\xe1", GARBAGE_EXIF),
    "jpeg_exif_truncated.jpg": lambda: _jpeg_segment(b"\xff\xe1", b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12"),
    "jpeg_exif_bad_offset.jpg": lambda: _jpeg_segment(b"\xff\xe1", b"Exif\x00\x00II*\x00\xff\xff\x00\x00"),
    "jpeg_thumbnail_broken.jpg": lambda: _jpeg(exif=_BAD_THUMBNAIL_EXIF),
    "jpeg_icc_garbage.jpg": lambda: _jpeg(icc_profile=b"not an icc profile" * 8),
    "jpeg_icc_segment.jpg": lambda: _jpeg_segment(b"\xff\xe2", b"ICC_PROFILE\x00\x01\x01" + b"nonsense" * 10),
    "jpeg_xmp_broken.jpg": lambda: _jpeg_segment(b"\xff\xe1", b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta <<<"),
    "jpeg_mpo_broken.jpg": lambda: _jpeg_segment(b"\xff\xe2", b"MPF\x00II*\x00\x08\x00\x00\x00\x01\x00\x00\xb0"),
    "png_exif_not_tiff.png": lambda: _png_chunk(b"eXIf", GARBAGE_EXIF[6:]),
    "png_iccp_not_zlib.png": lambda: _png_chunk(b"iCCP", b"prof\x00\x00" + b"not zlib" * 5),
    "png_iccp_garbage.png": lambda: _png_chunk(b"iCCP", b"prof\x00\x00" + zlib.compress(b"garbage icc")),
    "png_xmp_broken.png": lambda: _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00not zlib"),
    "webp_exif_not_tiff.webp": lambda: _webp(exif=GARBAGE_EXIF),
    "webp_icc_garbage.webp": lambda: _webp(icc_profile=b"garbage" * 10),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_metadata_still_loads(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(CASES[name]())
    loaded = load_image(path)
    # the thumbnail case keeps its valid orientation (6: turned a quarter), the others are read as they are
    assert loaded.L.shape == ((50, 40) if "thumbnail" in name else (40, 50))
    expected = rgb_to_lab(PIXELS / 255.0)[..., 0]
    if "thumbnail" not in name:  # the pixels are the photo's, not a blank or a thumbnail (JPEG/WebP: lossy)
        assert np.abs(loaded.L - expected).mean() < 2


def test_the_broken_exif_case_does_fail_a_plain_exif_read(tmp_path):
    """Guard: the corrupt block really is corrupt for Pillow (else the test above proves nothing)."""
    path = tmp_path / "x.jpg"
    path.write_bytes(CASES["jpeg_exif_not_tiff.jpg"]())
    with Image.open(path) as im, pytest.raises(SyntaxError):
        im.getexif()
    with Image.open(path) as im:
        assert exif_orientation(im, "x.jpg") == 1


def test_cli_colorizes_a_jpeg_with_corrupt_exif_and_warns_once(tmp_path, tiny_model_path):
    src = tmp_path / "archive_scan.jpg"
    src.write_bytes(CASES["jpeg_exif_not_tiff.jpg"]())
    r = subprocess.run([sys.executable, "-m", "tinct", "colorize", str(src), "-o", str(tmp_path / "out.png"),
                        "--model", str(tiny_model_path), "--recolor"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "out.png").size == (50, 40)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    warned = [ln for ln in lines if "warning" in ln]
    assert len(warned) == 1 and "ignoring malformed EXIF" in warned[0] and "archive_scan.jpg" in warned[0]
    assert len(lines) == 2 and "out.png (" in lines[1] and " -> " in lines[1]  # and the per-output line
