"""Color suggestions for one spot of a photo, from the model's predicted color distribution there.

A classification head predicts, at every cell of the working resolution, a distribution over quantised
ab cells (``bins.py``). At the clicked spot (bilinear between the four nearest cells) that distribution is
taken with the model's prior correction (the same one that decodes its colors) at temperature 1, so the
probabilities are the model's own, not sharpened. Bins whose color does not exist in sRGB at the spot's
lightness are dropped; the rest are clustered greedily (the most probable remaining bin seeds a cluster
that takes every remaining bin within ``merge_radius``; the cluster's color is their probability-weighted
mean ab), and the ``count`` most probable clusters are returned, each at the spot's lightness, as sRGB.

Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors") show the same
recommendations beside an ab gamut at the spot's lightness; the page draws the gamut itself.

Python: ``tinct.suggest_colors(image, x, y)``; HTTP: ``POST /api/suggest``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .color import clamp_ab_to_gamut, lab_to_rgb, lab_to_rgb_t
from .errors import TinctError
from .models.base import ColorModel
from .pipeline import DEFAULT_RENDER_FACTOR, working_luminance

GAMUT_TOLERANCE = 1e-3  # sRGB channels within [-tol, 1 + tol] count as displayable


@dataclass
class SuggestOptions:
    """How a spot's distribution becomes a short list of colors."""
    count: int = 6                     # suggestions returned (fewer when the distribution has fewer clusters)
    merge_radius: float = 15.0         # ab units: bins this close to a cluster's seed join that cluster
    min_probability: float = 1e-3      # clusters less likely than this are not offered
    temperature: float = 1.0           # of the softmax over bins: 1 = the model's probabilities as trained
    prior_correction: float | None = None   # None: the model's own (the one its colors are decoded with)
    render_factor: int = DEFAULT_RENDER_FACTOR


@dataclass
class Suggestion:
    """One suggested color: ``color`` "#rrggbb" (sRGB), ``lab`` (L, a, b) with L the spot's lightness,
    ``probability`` in [0, 1] (the cluster's share of the in-gamut probability at the spot)."""
    color: str
    lab: tuple[float, float, float]
    probability: float


def require_distribution(model) -> None:
    """Refuse, with one line, models that predict no color distribution (regression heads, ONNX exports)."""
    if not isinstance(model, torch.nn.Module):
        raise TinctError("color suggestions need the torch backend (they read the network's color distribution)")
    if getattr(model.config, "head", None) != "classification" or not hasattr(model, "bin_centers"):
        raise TinctError(f"color suggestions need a model with a classification head (it predicts a color "
                         f"distribution); {getattr(model, 'name', 'this model')} regresses one color per pixel")


@torch.no_grad()
def spot_logits(model: ColorModel, L: np.ndarray, render_factor: int = DEFAULT_RENDER_FACTOR,
                hints: torch.Tensor | None = None) -> torch.Tensor:
    """The network on the photo's working-size luminance -> bin logits ``(Q, h, w)`` float32 on the CPU.

    ``L`` ``(H, W)`` float32 in [0, 100]; ``hints`` ``(1, 3, h0, w0)`` at the working size or None.
    """
    require_distribution(model)
    L_small = working_luminance(L, render_factor, model.stride)
    device = next(model.parameters()).device
    out = model(L_small.to(device), None if hints is None else hints.to(device))
    return out["logits"][0].float().cpu()


def bin_probabilities(model: ColorModel, logits: torch.Tensor, options: SuggestOptions | None = None) -> torch.Tensor:
    """Logits ``(Q, h, w)`` -> bin probabilities ``(Q, h, w)``: the model's prior correction, then softmax."""
    options = options or SuggestOptions()
    correction = model.config.prior_correction if options.prior_correction is None else options.prior_correction
    if correction:
        logits = logits - correction * torch.log(model.bin_weights.float().cpu())[:, None, None]
    return torch.softmax(logits / options.temperature, dim=0)


def probabilities_at(probs: torch.Tensor, fy: float, fx: float) -> torch.Tensor:
    """Bin probabilities ``(Q,)`` at fractional position (``fy``, ``fx``) in [0, 1] of ``probs`` ``(Q, h, w)``.

    The probabilities (not the logits) are interpolated between the four nearest cells, so a spot on
    the boundary of two objects offers both objects' colors.
    """
    # cell centres sit at (i + 0.5) / h: the same alignment as the bilinear upsampling of the colors
    grid = torch.tensor([[[[2 * fx - 1, 2 * fy - 1]]]], dtype=probs.dtype)
    return F.grid_sample(probs[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0, 0]


def in_gamut(L: float, ab: torch.Tensor) -> torch.Tensor:
    """Which ab ``(N, 2)`` exist in sRGB at lightness ``L`` -> bool ``(N,)``."""
    lab = torch.cat([torch.full((ab.shape[0], 1), float(L)), ab.float()], 1).T[None, :, :, None]  # (1, 3, N, 1)
    rgb = lab_to_rgb_t(lab.double(), clip=False)[0, :, :, 0]
    return ((rgb >= -GAMUT_TOLERANCE) & (rgb <= 1 + GAMUT_TOLERANCE)).all(0)


def cluster(centers: torch.Tensor, probs: torch.Tensor, count: int, radius: float) -> list[tuple[np.ndarray, float]]:
    """Greedy clustering of bins ``centers`` ``(Q, 2)`` weighted by ``probs`` ``(Q,)`` -> up to ``count``
    (mean ab ``(2,)``, summed probability), most probable first."""
    c, p = centers.double().numpy(), probs.double().numpy()
    left = p > 0
    found = []
    while left.any() and len(found) < 3 * count:  # a few spare: merged masses can reorder the seeds
        seed = int(np.argmax(np.where(left, p, -1.0)))
        members = left & (((c - c[seed]) ** 2).sum(1) <= radius * radius)
        mass = float(p[members].sum())
        found.append(((c[members] * p[members, None]).sum(0) / mass, mass))
        left &= ~members
    found.sort(key=lambda t: -t[1])
    return found[:count]


def suggest_at(model: ColorModel, probs: torch.Tensor, L_spot: float, fy: float, fx: float,
               options: SuggestOptions | None = None) -> list[Suggestion]:
    """Suggestions at fractional position (``fy``, ``fx``) from ``bin_probabilities`` ``(Q, h, w)``, at
    lightness ``L_spot``."""
    options = options or SuggestOptions()
    probs = probabilities_at(probs, fy, fx)
    centers = model.bin_centers.float().cpu()
    ok = in_gamut(L_spot, centers)
    if not ok.any():  # L at 0 or 100: only gray exists there
        return [Suggestion(color=_hex(L_spot, np.zeros(2)), lab=(float(L_spot), 0.0, 0.0), probability=1.0)]
    probs = torch.where(ok, probs, torch.zeros_like(probs))
    probs = probs / probs.sum()
    out = []
    for ab, mass in cluster(centers, probs, options.count, options.merge_radius):
        if out and mass < options.min_probability:
            break
        # a mean of in-gamut bins can sit just outside a curved gamut boundary: shrink it in, as colorize does
        ab_t = torch.as_tensor(ab, dtype=torch.float64).view(1, 2, 1, 1)
        ab = clamp_ab_to_gamut(torch.full((1, 1, 1, 1), float(L_spot), dtype=torch.float64), ab_t).view(2).numpy()
        out.append(Suggestion(color=_hex(L_spot, ab), lab=(round(float(L_spot), 2), round(float(ab[0]), 2),
                                                            round(float(ab[1]), 2)), probability=round(mass, 4)))
    return out


def suggest_for_luminance(model: ColorModel, L: np.ndarray, x: int, y: int, hints: torch.Tensor | None = None,
                          options: SuggestOptions | None = None) -> list[Suggestion]:
    """Suggestions for pixel (``x`` from the left, ``y`` from the top) of the photo's ``L`` ``(H, W)``."""
    options = options or SuggestOptions()
    H, W = L.shape
    check_spot(x, y, W, H)
    logits = spot_logits(model, L, options.render_factor, hints)
    probs = bin_probabilities(model, logits, options)
    return suggest_at(model, probs, float(L[y, x]), (y + 0.5) / H, (x + 0.5) / W, options)


def check_spot(x, y, W: int, H: int) -> None:
    for name, v in (("x", x), ("y", y)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TinctError(f"{name} must be a whole number of pixels, got {v!r}")
    if not (0 <= x < W and 0 <= y < H):
        raise TinctError(f"({x}, {y}) is outside the photo ({W}x{H}; x from the left, y from the top)")


def suggest_colors(image, x: int, y: int, model: ColorModel | str | os.PathLike | None = None,
                   hints: list | None = None, count: int = 6,
                   render_factor: int = DEFAULT_RENDER_FACTOR) -> list[Suggestion]:
    """The model's ``count`` most probable colors for pixel (``x``, ``y``) of ``image``, most probable first.

    ``image``: a PIL image or a NumPy array (as ``tinct.colorize`` takes); ``hints``: color points already
    placed, the hints JSON as a list (``[{"x", "y", "color", "radius"?}]``), which the model conditions on.
    Each ``Suggestion`` has ``color`` ("#rrggbb"), ``lab`` (at the pixel's lightness) and ``probability``.
    """
    from .hints import hints_from_points, hints_tensor
    from .io import image_to_luminance
    from .pipeline import _array_to_pil, working_size
    from .weights import load_model
    from PIL import Image
    if not isinstance(model, ColorModel):
        model = load_model(model)
    require_distribution(model)
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if not isinstance(image, Image.Image):
        raise TinctError(f"suggest_colors() takes a PIL image or a NumPy array, not {type(image).__name__}")
    if not isinstance(count, int) or count < 1:
        raise TinctError(f"count must be a whole number >= 1, got {count!r}")
    L = image_to_luminance(image).L
    hint_t = None
    if hints:
        if not model.config.hint_channels:
            raise TinctError(f"{model.name} does not take color points; suggest without hints")
        h, w = working_size(*L.shape, render_factor, model.stride)
        hint_t = hints_tensor(hints_from_points(hints, L.shape), h, w)
    return suggest_for_luminance(model, L, x, y, hint_t, SuggestOptions(count=count, render_factor=render_factor))


def _hex(L: float, ab: np.ndarray) -> str:
    rgb = lab_to_rgb(np.array([L, ab[0], ab[1]], np.float64))
    r, g, b = (int(round(float(v) * 255)) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"
