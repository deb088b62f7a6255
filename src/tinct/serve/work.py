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
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..color import rgb_to_lab
from ..errors import TinctError
from ..hints import check_takes_hints, parse_color, points_tensor
from ..io import LoadedImage
from ..models.base import ColorModel, Decoding
from ..pipeline import predict_ab, recombine, working_size
from ..restore.photo import prepare
from ..restore.run import RestoreOptions, image_to_photo
from .errors import RequestError
from .photos import PhotoCache

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF")
PNG_COMPRESS_LEVEL = 3  # on a 1.2 MP result, Pillow's default (6) took 2.2x as long as 3 for a file no smaller
MAX_PALETTE_COLORS = 16
MAX_SATURATION = 2.0
MAX_HINT_PIXELS = 4_000_000  # painted pixels per request: bounds memory (16 bytes each) whatever the radii


@dataclass
class Job:
    """One colorization. ``image``: the uploaded bytes; ``points``: parsed hints JSON (a list) or None."""
    image: bytes | None                # the uploaded bytes; None when ``photo`` is given
    model: ColorModel
    model_name: str
    render_factor: int
    points: list | None
    max_pixels: int
    decoding: Decoding | None = None   # per-request prior correction; the shared model is never mutated
    restore: bool = False              # repair the damage (tinct.restore) before colorizing
    recolor: bool = False              # gray and recolor a photo that already has color (default: its own colors)
    photo: LoadedImage | None = None   # a photo decoded earlier (from the cache): then ``image`` is None
    photo_id: str | None = None        # its id
    cache: PhotoCache | None = None    # where a newly decoded upload is kept for later requests
    palette: np.ndarray | None = None  # global hint: ab (K, 2) the colors should favour
    saturation: float = 1.0            # global hint: chroma multiplier (1 = as predicted)


@dataclass
class Result:
    png: bytes
    width: int
    height: int
    seconds: float
    photo_id: str | None = None        # the id later requests may send instead of the image
    colors: str = "colorized"          # "colorized", or "own": the photo had color and kept it, restored


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


def parse_palette(text: str | None) -> np.ndarray | None:
    """The ``palette`` field: ``"#rrggbb,#rrggbb,..."`` -> ab ``(K, 2)`` float32, or None when empty.

    Colors only: unlike the CLI's ``--palette``, a request string is never taken for a file name.
    """
    if text is None or not text.strip():
        return None
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if len(parts) > MAX_PALETTE_COLORS:
        raise RequestError(400, f"palette: {len(parts)} colors, over the limit of {MAX_PALETTE_COLORS}")
    try:
        rgb = np.array([parse_color(p) for p in parts], np.float64) / 255.0
    except ValueError as e:
        raise RequestError(400, f"palette: {e}") from None
    return rgb_to_lab(rgb)[:, 1:].astype(np.float32)


def decode(job: Job) -> tuple[LoadedImage, str | None]:
    """The job's photo as luminance (+ alpha) and its cache id: from the cache, or decoded and then kept."""
    if job.photo is not None:
        return job.photo, job.photo_id
    im = open_upload(job.image, "image", job.max_pixels)
    try:
        loaded = image_to_photo(im, max_pixels=job.max_pixels, name="image")  # colors kept: a color photo keeps them
    except TinctError as e:
        raise RequestError(400, str(e)) from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data: found only when decoding
        raise RequestError(400, f"image: cannot decode ({_first_line(e)})") from None
    finally:
        im.close()
    return loaded, (job.cache.put(loaded) if job.cache is not None else None)


def hints_for(job: Job, shape: tuple[int, int]):
    """The job's points as the model's hint tensor at working size, or None."""
    if not job.points:
        return None
    try:
        check_takes_hints(job.model, job.model_name)
        h, w = working_size(*shape, job.render_factor, job.model.stride)
        return points_tensor(job.points, shape, h, w, max_painted=MAX_HINT_PIXELS)
    except TinctError as e:
        raise RequestError(400, str(e)) from None


def run(job: Job) -> Result:
    """Decode (or take the cached photo), colorize, encode. Raises ``RequestError`` for bad inputs."""
    start = time.perf_counter()
    loaded, photo_id = decode(job)
    H, W = loaded.L.shape
    # the rule of `tinct colorize` (restore.photo); color points or a palette ask for new colors, as --hints does
    recolor = job.recolor or bool(job.points) or job.palette is not None
    p = prepare(getattr(loaded, "rgb", None), loaded.L, job.restore, RestoreOptions(recolor=recolor))
    if p.rgb is not None:
        return Result(png=encode_png(p.rgb, loaded.alpha), width=W, height=H, seconds=time.perf_counter() - start,
                      photo_id=photo_id, colors="own")
    loaded = dataclasses.replace(loaded, L=p.L)  # a copy: the cached photo stays as uploaded
    hints = hints_for(job, (H, W))
    if job.palette is not None:
        from ..guided.palette import predict_ab_palette
        ab = predict_ab_palette(job.model, loaded.L, job.palette, job.render_factor, hints, decoding=job.decoding)
    else:
        ab = predict_ab(job.model, loaded.L, job.render_factor, hints, decoding=job.decoding)
    if job.saturation != 1.0:
        ab = ab * job.saturation  # recombine shrinks what leaves the gamut, keeping L and hue
    rgb = recombine(loaded.L, ab)
    return Result(png=encode_png(rgb, loaded.alpha), width=W, height=H, seconds=time.perf_counter() - start,
                  photo_id=photo_id)


def suggest(job: Job, x: int, y: int) -> dict:
    """The model's most probable colors at pixel (``x``, ``y``) of the job's photo, as the JSON answer."""
    from ..suggest import SuggestOptions, check_spot, suggest_for_luminance
    loaded, photo_id = decode(job)
    H, W = loaded.L.shape
    try:
        check_spot(x, y, W, H)
    except TinctError as e:
        raise RequestError(400, f"x, y: {e}") from None
    options = SuggestOptions(render_factor=job.render_factor)
    found = suggest_for_luminance(job.model, loaded.L, x, y, hints_for(job, (H, W)), options)
    return {"x": x, "y": y, "lightness": round(float(loaded.L[y, x]), 2), "model": job.model_name,
            "photo": photo_id, "width": W, "height": H,
            "suggestions": [{"color": s.color, "lab": list(s.lab), "probability": s.probability} for s in found]}


def reference_palette(data: bytes, max_pixels: int, colors: int = 6) -> list[str]:
    """The main colors of a color reference photo (k-means of its chroma, as ``--palette PHOTO``) as hex."""
    from ..color import clamp_ab_to_gamut, lab_to_rgb
    from ..guided.palette import palette_from_lab
    im = open_upload(data, "reference", max_pixels)
    try:
        im.draft("RGB", (512, 512))  # JPEG: decode at a reduced scale, enough for a palette
        im = im.convert("RGB")
        im.thumbnail((500, 500))
    except (OSError, SyntaxError, ValueError) as e:
        raise RequestError(400, f"reference: cannot decode ({_first_line(e)})") from None
    lab = rgb_to_lab(np.asarray(im, np.float64) / 255.0)
    with warnings.catch_warnings():  # a photo with fewer than `colors` distinct colors leaves clusters empty
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        centers = palette_from_lab(lab, colors)
    centers = centers[np.isfinite(centers).all(1)]
    flat = lab.reshape(-1, 3)
    owner = ((flat[:, None, 1:] - centers[None]) ** 2).sum(-1).argmin(1)
    out = []
    for k, ab in enumerate(centers):
        L = float(np.median(flat[owner == k, 0])) if (owner == k).any() else 60.0
        ab_t = clamp_ab_to_gamut(torch.full((1, 1, 1, 1), L, dtype=torch.float64),
                                 torch.as_tensor(ab, dtype=torch.float64).view(1, 2, 1, 1)).view(2).numpy()
        rgb = lab_to_rgb(np.array([L, ab_t[0], ab_t[1]]))
        color = "#" + "".join(f"{int(round(float(v) * 255)):02x}" for v in rgb)
        if color not in out:
            out.append(color)
    return out


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
