"""Colorize: full-resolution L -> working-size L -> model -> ab -> upsample -> recombine.

The network only sees the luminance at a working resolution (``render_factor``
x 16 pixels on the side of a square of the same area, DeOldify's convention);
the predicted chroma is upsampled bilinearly and joined to the untouched
full-resolution L, so every output has exactly the input's size and
luminance, and the cost of the network does not grow with the photo.

torch is imported where a torch network runs: a photo colorized by an ONNX export (``onnxrt.OnnxModel``)
goes from file to file without it (its import alone takes 2 s of a photo's few).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from . import fullres
from .errors import TinctError
from .io import DEFAULT_MAX_PIXELS, load_image, refuse_overwriting_input, save_image
from .onnxrt import OnnxModel

if TYPE_CHECKING:
    import torch

    from .models.base import ColorModel, Decoding

DEFAULT_RENDER_FACTOR = 10
# The one range of the render factor, for the CLI, the Python API and the HTTP API alike (README, "Colorize").
# 64 x 16 = 1024 px on the side of the working square: a megapixel through the network, 64 times what the
# model was trained at, already past where colors improve; the network's cost grows with the square.
RENDER_FACTOR_RANGE = (1, 64)


def check_render_factor(render_factor) -> int:
    """``render_factor`` as an int within ``RENDER_FACTOR_RANGE``, else a one-line ``TinctError``."""
    lo, hi = RENDER_FACTOR_RANGE
    if isinstance(render_factor, bool) or not isinstance(render_factor, (int, np.integer)) \
            or not lo <= render_factor <= hi:
        raise TinctError(f"render factor must be a whole number from {lo} to {hi}, got {render_factor!r}")
    return int(render_factor)


@dataclass
class ColorizeOptions:
    render_factor: int = DEFAULT_RENDER_FACTOR
    max_pixels: int = DEFAULT_MAX_PIXELS
    jpeg_quality: int = 95
    mixed_precision: bool = True  # autocast to float16 when the model is on a GPU (no effect on CPU)
    decoding: Decoding | None = None  # classification models: temperature / prior correction for this run
    sample: int | None = None  # models with noise inputs (dcgan): which sample (its noise seed); None: sample 0


def working_size(height: int, width: int, render_factor: int, stride: int) -> tuple[int, int]:
    """(h, w) with the aspect of the photo, about (render_factor*16)^2 pixels, multiples of ``stride``.

    Never larger than the photo itself (rounded up to the stride).
    """
    side = check_render_factor(render_factor) * 16
    scale = min(1.0, side / math.sqrt(height * width))
    h = max(stride, int(round(height * scale / stride)) * stride)
    w = max(stride, int(round(width * scale / stride)) * stride)
    # a strip (1 x 10^6 px) has its short side raised to the stride; cap the long side so the
    # network's input stays within twice the budget whatever the aspect ratio (bounded memory)
    most = max(stride, (2 * side * side // min(h, w)) // stride * stride)
    return (h, min(w, most)) if w >= h else (min(h, most), w)


def decoding_for(model, temperature: float | None = None, prior_correction: float | None = None) -> Decoding | None:
    """Checked overrides of a classification model's decoding (``Decoding``); None when neither is given.

    ``temperature`` > 0; ``prior_correction`` in [0, 1]. Refuses, with a one-line ``TinctError``, models
    that have no bins to decode (regression heads) or whose decoding is baked in (ONNX exports).
    """
    given = [name for name, v in (("temperature", temperature), ("prior correction", prior_correction)) if v is not None]
    if not given:
        return None
    from .models.base import Decoding
    if isinstance(model, OnnxModel):
        raise TinctError(f"the {given[0]} of an ONNX export cannot change: its decoding is inside the graph")
    if getattr(model.config, "head", None) != "classification":
        raise TinctError(f"a {given[0]} applies to classification models; {model.name} regresses ab directly")
    if temperature is not None and not temperature > 0:
        raise TinctError(f"temperature must be > 0, got {temperature}")
    if prior_correction is not None and not 0 <= prior_correction <= 1:
        raise TinctError(f"prior correction must be in [0, 1], got {prior_correction}")
    return Decoding(None if temperature is None else float(temperature),
                    None if prior_correction is None else float(prior_correction))


def shrink_luminance(L: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``L`` ``(B, 1, H, W)`` -> ``(B, 1, h, w)`` bilinear, antialiased where it shrinks (no aliasing moire)."""
    import torch.nn.functional as F
    H, W = L.shape[-2:]
    return F.interpolate(L, size=size, mode="bilinear", antialias=(size[0] < H or size[1] < W), align_corners=False)


def working_luminance_array(L: np.ndarray, render_factor: int, stride: int) -> np.ndarray:
    """What the network sees: ``L`` ``(H, W)`` float32 in [0, 100] -> ``(h, w)`` float32 at ``working_size``.

    Pillow's bilinear resize, antialiased where it shrinks: ``shrink_luminance`` without torch (the two agree
    within 1e-3 in L).
    """
    h, w = working_size(*L.shape, render_factor, stride)
    image = Image.fromarray(np.ascontiguousarray(L, dtype=np.float32), "F")
    return np.asarray(image.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def working_luminance(L: np.ndarray, render_factor: int, stride: int) -> torch.Tensor:
    """``working_luminance_array`` as a torch batch ``(1, 1, h, w)``."""
    import torch
    return torch.from_numpy(working_luminance_array(L, render_factor, stride).copy())[None, None]


def network_ab(model: ColorModel, L_small: torch.Tensor, hints: torch.Tensor | None = None,
               decoding: Decoding | None = None, sample: int | None = None) -> torch.Tensor:
    """The network on working-size ``L_small`` ``(B, 1, h, w)`` -> ab ``(B, 2, h, w)``, decoded per ``decoding``.

    ``sample``: for a model with noise inputs, the seed of its noise (``--samples``); the model is not changed.
    """
    from .models.base import Decoding
    out = model(L_small, hints) if sample is None else model(L_small, hints, seed=sample)
    ab = out["ab"] if decoding is None or decoding == Decoding() else model.decode(out["logits"], L_small.shape[-2:],
                                                                                  decoding)
    return ab if hints is None else take_points(L_small, ab, hints)


def take_points(L_small: torch.Tensor, ab: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
    """The network's ab ``(B, 2, h, w)`` made to agree with the color points in ``hints`` ``(B, 3, h, w)``: each
    point's color exactly, its correction spread along the photo's regions (``levin.spread_point_corrections``).

    The network learns to follow points, but only as far as its training taught it (a pretrained encoder that
    never saw them barely does); this makes every model that takes points honour them. Every path that decodes a
    network's output with hints calls it (``network_ab``, the palette, a film's reference or palette). Without
    points, ``ab`` comes back unchanged.
    """
    if not bool(hints[:, -1].any()):
        return ab
    import torch

    from .guided.levin import spread_point_corrections
    out = []
    for i in range(ab.shape[0]):
        h = hints[i].float().cpu().numpy()
        net_ab = ab[i].float().cpu().numpy().transpose(1, 2, 0)
        fixed = spread_point_corrections(L_small[i, 0].float().cpu().numpy(), net_ab, h[:2].transpose(1, 2, 0),
                                         h[-1] > 0.5)
        out.append(torch.from_numpy(fixed.transpose(2, 0, 1).copy()))
    return torch.stack(out).to(device=ab.device, dtype=ab.dtype)


def predict_ab(model: ColorModel, L: np.ndarray, render_factor: int = DEFAULT_RENDER_FACTOR,
               hints: torch.Tensor | None = None, mixed_precision: bool = True,
               decoding: Decoding | None = None, sample: int | None = None) -> torch.Tensor:
    """Chroma at working size: ``L`` ``(H, W)`` float32 in [0, 100] -> ab ``(1, 2, h, w)``."""
    import torch
    L_small = working_luminance(L, render_factor, model.stride)
    # an onnxrt.OnnxModel is not a torch module: it has no parameters, only a device
    device = model.device if isinstance(model, OnnxModel) else next(model.parameters()).device
    if hints is not None:
        hints = hints.to(device)
    # on a GPU, half precision (tensor cores); autocast keeps softmax, hence the annealed mean's weights, in fp32
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=mixed_precision and device.type == "cuda"):
        return network_ab(model, L_small.to(device), hints, decoding, sample).float().cpu()


def recombine(L: np.ndarray, ab_small: torch.Tensor) -> np.ndarray:
    """Join full-resolution ``L`` ``(H, W)`` with upsampled ``ab_small`` ``(1, 2, h, w)`` -> RGB ``(H, W, 3)`` uint8.

    Works a band of rows at a time (``fullres.recombine``); out-of-gamut chroma is shrunk, so L is kept.
    """
    return fullres.recombine(L, ab_small)


def colorize_luminance(model: ColorModel, L: np.ndarray, options: ColorizeOptions | None = None,
                       hints: torch.Tensor | None = None) -> np.ndarray:
    """``L`` ``(H, W)`` float32 in [0, 100] -> colorized RGB ``(H, W, 3)`` uint8 with the same L."""
    return recombine(L, predict_chroma(model, L, options or ColorizeOptions(), hints))


def predict_chroma(model: ColorModel, L: np.ndarray, options: ColorizeOptions,
                   hints: torch.Tensor | None = None) -> torch.Tensor | np.ndarray:
    """``predict_ab`` with the settings of ``options`` (render factor, precision, decoding, sample).

    An ONNX model without hints answers in NumPy, torch never imported (``recombine`` takes either).
    """
    if isinstance(model, OnnxModel) and hints is None:
        return model.predict(working_luminance_array(L, options.render_factor, model.stride)[None, None])
    return predict_ab(model, L, options.render_factor, hints, options.mixed_precision, options.decoding,
                      options.sample)


def colorize(image, model: ColorModel | str | os.PathLike | None = None, render_factor: int = DEFAULT_RENDER_FACTOR,
             prior_correction: float | None = None, temperature: float | None = None, restore: bool = False,
             recolor: bool = False):
    """Colorize a PIL image or a NumPy array; returns a PIL image of the same size.

    Arrays: ``(H, W)`` gray (uint8, uint16 or float in [0, 1]) or ``(H, W, 3|4)``
    RGB(A) uint8. An RGBA input keeps its alpha. ``prior_correction`` (0 vivid .. 1 safe)
    and ``temperature`` override a classification model's decoding (None: its own).
    As ``tinct colorize``: a photo that already has color gets its own colors restored (a warning says so)
    unless ``recolor``; ``restore`` repairs scratches, dust, noise and fading first (``tinct.restore``).
    """
    from .models.base import ColorModel
    from .restore.photo import KEPT_COLORS, prepare
    from .restore.run import RestoreOptions, image_to_photo
    from .weights import load_model
    check_render_factor(render_factor)  # before a model is loaded for nothing
    if not isinstance(model, ColorModel):
        model = load_model(model)
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if not isinstance(image, Image.Image):
        raise TinctError(f"colorize() takes a PIL image or a NumPy array, not {type(image).__name__}")
    photo = image_to_photo(image)
    p = prepare(photo.rgb, photo.L, restore, RestoreOptions(recolor=recolor))
    if p.rgb is not None:
        rgb = p.rgb
        logging.getLogger("tinct").warning("tinct: %s (recolor=True to recolor)", KEPT_COLORS)
    else:
        decoding = decoding_for(model, temperature, prior_correction)
        rgb = colorize_luminance(model, p.L, ColorizeOptions(render_factor=render_factor, decoding=decoding))
    out = Image.fromarray(rgb, "RGB")
    if photo.alpha is not None:
        out.putalpha(Image.fromarray(photo.alpha, "L"))
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
                  options: ColorizeOptions | None = None, chroma=None) -> None:
    """Read ``src``, colorize, write ``dest`` atomically (never over ``src``).

    ``chroma(model, L, options) -> ab (1, 2, h, w)`` replaces the network's prediction (the guided methods,
    ``guided.colorize.guided_chroma``); the result is recombined with the photo's full-resolution L.
    """
    options = options or ColorizeOptions()
    refuse_overwriting_input(src, dest)
    loaded = load_image(src, options.max_pixels)
    ab = (chroma or predict_chroma)(model, loaded.L, options)
    save_image(recombine(loaded.L, ab), dest, loaded.alpha, quality=options.jpeg_quality)
