"""Restore an old photo: find and remove scratches, dust and cracks, denoise, bring back contrast and colors.

The flow (each step measured in ``bench/restore.py``, ``bench/results/restore.md``):

    luminance ──network──▶ restored L + damage mask ──inpaint (Telea) inside the mask──▶ denoise? ──▶ L'
    color photo (not toned, not gray) ──▶ its own colors restored (levels per dye, saturation) first
    chroma (toned or color) ──inpaint inside the mask──▶ recombined with L'

``restore_image`` works on arrays; ``restore`` (``tinct.restore``) on PIL images; ``restore_file`` and
``colorize_file`` are what ``tinct restore`` and ``tinct colorize`` run for each photo.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..color import gray_rgb, lab_to_rgb, rgb_to_lab
from ..errors import TinctError
from ..io import DEFAULT_MAX_PIXELS, LoadedImage, atomic_path, load_image, save_image, upright
from .color import is_color_photo, restore_colors

_log = logging.getLogger("tinct")

RESTORE_MODEL = "_restore"       # src/tinct/weights/_restore.safetensors (underscore: not a colorization model)
NETWORK_PIXELS = 4_000_000       # the network runs on at most this many pixels; larger scans use its output upsampled


@dataclass
class RestoreOptions:
    """What ``tinct restore`` / ``colorize --restore`` do. ``denoise``: None = automatic strength, 0 = off,
    else the non-local-means strength in L units. ``recolor``: colorize a color photo anyway (colorize only)."""
    scratches: bool = True
    denoise: float | None = None
    contrast: bool = True
    recolor: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    jpeg_quality: int = 95
    model: str | None = None          # restoration network file (default: the shipped one)
    inpaint: str = "telea"            # classical fill inside the network's mask: "telea", "ns" or "none"
    mask_threshold: float = 0.8       # damage probability above which a pixel is inpainted (precision first)


@dataclass
class Restored:
    """``rgb``: ``(H, W, 3)`` uint8; ``L``: ``(H, W)`` float32 restored luminance; ``mask``: ``(H, W)`` bool damage;
    ``kind``: "gray", "toned" (one-tint print, sepia) or "color"."""
    rgb: np.ndarray
    L: np.ndarray
    mask: np.ndarray
    kind: str
    notes: list[str] = field(default_factory=list)


_NETS: dict = {}


def load_restorer(name_or_path: str | os.PathLike | None = None):
    """The restoration network (cached per path; read-only afterwards, so threads may share it)."""
    from ..weights import WEIGHTS_DIR, load_model
    path = Path(name_or_path) if name_or_path else WEIGHTS_DIR / f"{RESTORE_MODEL}.safetensors"
    key = str(path)
    if key not in _NETS:
        if not path.exists():
            raise TinctError(f"{path}: no such restoration model file")
        net = load_model(path)
        if getattr(net, "name", None) != "restore":
            raise TinctError(f"{path}: a {getattr(net, 'name', '?')} model, not a restoration model")
        _NETS[key] = net
    return _NETS[key]


def run_network(net, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network on ``L`` ``(H, W)`` float32 in [0, 100] -> (restored L ``(H, W)``, damage probability ``(H, W)``).

    Runs on the whole photo (its global gain sees everything: no tile seams) up to ``NETWORK_PIXELS``;
    a larger scan is shrunk for the network and its correction and mask are upsampled back.
    """
    import torch  # here, not above: `tinct colorize` loads this module for every photo, restored or not
    import torch.nn.functional as F
    H, W = L.shape
    x = torch.from_numpy(np.ascontiguousarray(L, np.float32))[None, None]
    scale = min(1.0, (NETWORK_PIXELS / (H * W)) ** 0.5)
    if scale < 1.0:
        x = F.interpolate(x, size=(max(1, round(H * scale)), max(1, round(W * scale))), mode="area")
    h, w = x.shape[-2:]
    s = net.stride
    ph, pw = (-h) % s, (-w) % s
    xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    with torch.no_grad():
        out = net(xp)
    restored = out["L"][..., :h, :w]
    prob = torch.sigmoid(out["mask_logits"][..., :h, :w])
    if scale < 1.0:
        delta = F.interpolate(restored - x, size=(H, W), mode="bilinear", align_corners=False)
        prob = F.interpolate(prob, size=(H, W), mode="bilinear", align_corners=False)
        restored = torch.from_numpy(np.ascontiguousarray(L, np.float32))[None, None] + delta
    return restored[0, 0].clamp(0, 100).numpy(), prob[0, 0].numpy()


def _keep_tones(L_out: np.ndarray, L_in: np.ndarray) -> np.ndarray:
    """``--no-contrast``: give ``L_out`` back the mean and spread of ``L_in`` (only local repairs stay)."""
    sd_out, sd_in = float(L_out.std()), float(L_in.std())
    return np.clip((L_out - L_out.mean()) * (sd_in / max(sd_out, 1e-6)) + L_in.mean(), 0, 100).astype(np.float32)


def restore_luminance(L: np.ndarray, options: RestoreOptions | None = None, net=None) -> tuple[np.ndarray, np.ndarray]:
    """``L`` ``(H, W)`` float32 in [0, 100] -> (restored L, damage mask ``(H, W)`` bool)."""
    from . import classical  # OpenCV: imported when restoring, not at every `tinct` start (models register us)
    options = options or RestoreOptions()
    net = net if net is not None else load_restorer(options.model)
    L = np.asarray(L, np.float32)
    restored, prob = run_network(net, L)
    mask = prob > options.mask_threshold
    if options.scratches:
        if options.inpaint != "none":
            restored = classical.inpaint(restored, mask, options.inpaint)
    else:
        # leave the damage alone: the input's own pixels there, under the tonal map the network applied
        a, b = np.polyfit(L[~mask][::7], restored[~mask][::7], 1) if (~mask).sum() > 14 else (1.0, 0.0)
        restored = np.where(mask, np.clip(a * L + b, 0, 100), restored).astype(np.float32)
        mask = np.zeros(L.shape, bool)
    if not options.contrast:
        restored = _keep_tones(restored, L)
    if options.denoise is None or options.denoise > 0:
        restored = classical.denoise(restored, options.denoise)
    return restored.astype(np.float32), mask


def restore_image(rgb: np.ndarray | None, L: np.ndarray, options: RestoreOptions | None = None, net=None,
                  keep_color: bool = True) -> Restored:
    """Restore one photo. ``rgb``: ``(H, W, 3)`` uint8 or None for a gray file; ``L``: its luminance ``(H, W)``.

    A color photo (not toned, not gray) gets its own colors restored first (unless ``keep_color`` is off:
    it is then treated as gray). Toned prints keep their tint; the chroma is inpainted inside the mask.
    """
    from . import classical
    options = options or RestoreOptions()
    notes = []
    kind = "gray"
    lab = None
    if rgb is not None:
        color = is_color_photo(rgb)
        kind = "color" if color else ("toned" if _has_tint(rgb) else "gray")
        if color and keep_color:
            fixed = restore_colors(rgb.astype(np.float32) / 255.0, contrast=options.contrast)
            lab = rgb_to_lab(fixed.astype(np.float64)).astype(np.float32)
            L = lab[..., 0]
            notes.append("already in color: restored its own colors")
        elif kind == "toned" and keep_color:
            lab = rgb_to_lab(rgb.astype(np.float64) / 255.0).astype(np.float32)
    L_out, mask = restore_luminance(L, options, net)
    if lab is None:
        rgb_out = gray_rgb(L_out)
    else:
        ab = lab[..., 1:]
        if mask.any():  # a scratch's chroma is the paper's: fill it from around, as the luminance
            ab = np.stack([classical.inpaint(ab[..., i], mask, options.inpaint if options.inpaint != "none"
                                             else "telea") for i in range(2)], -1)
        rgb_out = _to_u8(lab_to_rgb(np.concatenate([L_out[..., None], ab], -1).astype(np.float64)))
    return Restored(rgb=rgb_out, L=L_out, mask=mask, kind=kind, notes=notes)


def _has_tint(rgb: np.ndarray) -> bool:
    small = rgb[:: max(1, rgb.shape[0] // 128), :: max(1, rgb.shape[1] // 128)]
    ab = rgb_to_lab(small.astype(np.float64) / 255.0)[..., 1:]
    return float(np.median(np.hypot(ab[..., 0], ab[..., 1]))) > 2.0


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- loading ---

@dataclass
class LoadedPhoto(LoadedImage):
    """``LoadedImage`` plus ``rgb`` ``(H, W, 3)`` uint8 when the file has color channels (None for gray files)."""
    rgb: np.ndarray | None = None


_GRAY_MODES = ("L", "LA", "1", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")


def image_to_photo(im: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "image") -> LoadedPhoto:
    """A PIL image -> its luminance (as ``io.image_to_luminance``) and, for color files, its RGB."""
    from ..fullres import luminance_of
    from ..io import check_size, image_to_luminance
    if im.mode in _GRAY_MODES:
        base = image_to_luminance(im, max_pixels=max_pixels, name=name)
        return LoadedPhoto(L=base.L, alpha=base.alpha, format=base.format)
    check_size(im, max_pixels, name)
    fmt = im.format
    im.load()
    im = upright(im, name)  # once: a broken EXIF block is reported once
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    alpha = np.asarray(im.getchannel("A"), dtype=np.uint8) if im.mode in ("RGBA", "PA") else None
    rgb = np.ascontiguousarray(np.asarray(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8))
    return LoadedPhoto(L=np.ascontiguousarray(luminance_of(rgb), dtype=np.float32), alpha=alpha, format=fmt, rgb=rgb)


def load_photo(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedPhoto:
    """``io.load_image`` that keeps the colors too; the same one-line refusals."""
    return load_image(path, max_pixels, convert=image_to_photo)


# ------------------------------------------------------------------------------ public ---

def restore(image, options: RestoreOptions | None = None, **kw) -> Image.Image:
    """Restore a PIL image or a NumPy array (``(H, W)`` gray or ``(H, W, 3|4)`` uint8); returns a PIL image.

    Keyword arguments fill ``RestoreOptions`` (``scratches``, ``denoise``, ``contrast``, ``model``).
    """
    from ..pipeline import _array_to_pil
    options = options or RestoreOptions(**kw)
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if not isinstance(image, Image.Image):
        raise TinctError(f"restore() takes a PIL image or a NumPy array, not {type(image).__name__}")
    photo = image_to_photo(image)
    out = restore_image(photo.rgb, photo.L, options)
    result = Image.fromarray(out.rgb, "RGB")
    if photo.alpha is not None:
        result.putalpha(Image.fromarray(photo.alpha, "L"))
    return result


def mask_path(dest: Path) -> Path:
    """Where ``--save-mask`` writes the damage mask of ``dest``: ``NAME.mask.png`` beside it."""
    return dest.with_name(dest.stem + ".mask.png")


def save_mask(mask: np.ndarray, dest: Path) -> None:
    """The damage mask as an 8-bit PNG (255 = damaged), atomically."""
    with atomic_path(dest) as tmp:
        Image.fromarray(mask.astype(np.uint8) * 255, "L").save(tmp, format="PNG")


def restore_file(src: str | os.PathLike, dest: str | os.PathLike, options: RestoreOptions | None = None,
                 write_mask: bool = False) -> Restored:
    """Read ``src``, restore, write ``dest`` (and ``NAME.mask.png`` with ``write_mask``) atomically."""
    options = options or RestoreOptions()
    src, dest = Path(src), Path(dest)
    if dest.exists() and src.resolve() == dest.resolve():
        raise TinctError(f"{dest}: refusing to overwrite the input")
    photo = load_photo(src, options.max_pixels)
    out = restore_image(photo.rgb, photo.L, options)
    if write_mask:  # the mask first: a finished dest means a finished pair, so a rerun may skip it
        save_mask(out.mask, mask_path(dest))
    save_image(out.rgb, dest, photo.alpha, quality=options.jpeg_quality)
    for note in out.notes:
        _log.warning("tinct: %s: %s", src, note)
    return out
