"""A global hint for the deep model: a palette of colors the photo should use.

A classification model predicts, per pixel, a distribution over quantised ab
cells; the palette is a prior over those cells, ``pi_q = sum_k exp(-|c_q -
p_k|^2 / (2 sigma^2)) + floor``, multiplied into the distribution before the
annealed mean (``softmax((logits + log pi) / T)``: the temperature then sharpens
the prior too, which is what lets one palette color pull a photo whose network
barely considered it; after the temperature, a single green barely moved a
photo). Colors the network already
thought likely and that are near the palette win; colors far from every
palette entry lose, but a pixel the network is sure about keeps its color
(the floor). The palette comes from a list (``"#aa3322,#3355aa"``) or from a
reference photo (k-means of its chroma, ``k`` colors).

A reference photo *of the same scene* (a film's ``--reference``) says more
than which colors exist: how much of each. ``reference_share`` is its color
distribution over the cells and ``matched_prior`` the prior that moves a
frame's predicted color distribution onto it (Saerens et al. 2002's class-prior
shift ``pi_q = share_q / m_q``, ``m`` the frame's mean predicted distribution,
iterated until the frame's distribution is the reference's). A palette prior cannot do that: it only removes the colors the
reference lacks, and on a mostly gray scene what is left is gray (the bedroom
clip's mean chroma fell from 4.0 to 1.5, ``bench/results/video_chroma.md``). The
fitted prior is applied after the temperature (``ColorModel.decode``'s
``log_prior``): it is fitted to the annealed distribution itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import bins
from ..color import rgb_to_lab
from ..errors import TinctError
from ..hints import parse_color
from ..pipeline import take_points, working_luminance


MATCH_STEPS = 8  # proportional-fitting steps of matched_prior


@dataclass
class PaletteOptions:
    sigma: float = 10.0     # width of each palette color's basin, in ab units
    floor: float = 0.05     # prior of cells far from every palette color (relative to a palette color's peak)
    colors: int = 6         # k-means clusters when the palette comes from a photo


def parse_palette(spec: str, options: PaletteOptions | None = None) -> np.ndarray:
    """``"#rrggbb,#rrggbb,..."`` or the path of a color photo -> palette ab ``(K, 2)`` float32."""
    options = options or PaletteOptions()
    if Path(spec).is_file():
        from .transfer import load_reference
        return palette_from_lab(load_reference(spec, max_pixels=250_000), options.colors)
    parts = [p for p in spec.replace(" ", "").split(",") if p]
    if not parts:
        raise TinctError("--palette: give colors like '#aa3322,#3355aa' or a color photo")
    try:
        rgb = np.array([parse_color(p) for p in parts], np.float64) / 255.0
    except ValueError as e:
        raise TinctError(f"--palette: {e} (and {spec!r} is not an existing photo either)") from None
    return rgb_to_lab(rgb)[:, 1:].astype(np.float32)


def palette_from_lab(lab: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The ``k`` main chroma clusters (k-means) of a Lab image ``(H, W, 3)`` -> ``(k, 2)`` float32."""
    from scipy.cluster.vq import kmeans2
    ab = lab[..., 1:].reshape(-1, 2).astype(np.float64)
    rng = np.random.default_rng(seed)
    if len(ab) > 20000:
        ab = ab[rng.choice(len(ab), 20000, replace=False)]
    centers, _ = kmeans2(ab, k, minit="++", seed=seed)
    return centers.astype(np.float32)


def palette_prior(centers: torch.Tensor, palette: np.ndarray, options: PaletteOptions) -> torch.Tensor:
    """log prior per ab cell ``(Q,)`` for cell centres ``(Q, 2)``."""
    pal = torch.as_tensor(palette, dtype=centers.dtype, device=centers.device)
    d2 = torch.cdist(centers, pal) ** 2
    prior = torch.exp(-d2 / (2 * options.sigma ** 2)).sum(1) + options.floor
    return prior.log()


def reference_share(centers: torch.Tensor, lab: np.ndarray) -> torch.Tensor:
    """Color distribution of a reference photo over the cells: Lab ``(H, W, 3)`` -> ``(Q,)`` summing to 1.

    Each pixel is spread over its nearest cells as in training (``bins.soft_encode``).
    """
    ab = torch.from_numpy(np.ascontiguousarray(lab[..., 1:].transpose(2, 0, 1), dtype=np.float32))[None]
    return bins.soft_encode(ab.to(centers.device), centers.float()).mean((0, 2, 3))


def matched_prior(model, logits: torch.Tensor, share: torch.Tensor, decoding=None,
                  steps: int = MATCH_STEPS) -> torch.Tensor:
    """Log prior ``(B, Q)`` that moves each frame's mean predicted distribution onto ``share`` ``(B, Q)``.

    ``logits`` ``(B, Q, h, w)`` of a classification model. Iterative proportional fitting: ``steps`` times,
    ``pi *= share / m`` with ``m`` the frame's mean annealed distribution under the prior so far (one step
    is Saerens et al.'s class-prior shift; a reference whose colors the network barely considers needs
    several). Both get a uniform ``1/Q`` added, so a cell that neither uses cannot take over.
    """
    eps = 1.0 / logits.shape[1]
    target = torch.log(share.to(logits) + eps)
    log_prior = torch.zeros_like(target)
    for _ in range(steps):
        m = model.annealed_distribution(logits, decoding, log_prior).mean((2, 3))
        log_prior = log_prior + target - torch.log(m + eps)
    return log_prior


@torch.no_grad()
def predict_ab_palette(model, L: np.ndarray, palette: np.ndarray, render_factor: int,
                       hints: torch.Tensor | None = None, options: PaletteOptions | None = None,
                       decoding=None) -> torch.Tensor:
    """Like ``pipeline.predict_ab`` with the palette prior: ``L`` ``(H, W)`` -> ab ``(1, 2, h, w)``."""
    options = options or PaletteOptions()
    config = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module):
        raise TinctError("--palette needs the torch backend (it reads the network's color distribution)")
    if getattr(config, "head", None) != "classification" or not hasattr(model, "bin_centers"):
        raise TinctError("--palette needs a classification model (it reweights the predicted color distribution)")
    L_small = working_luminance(L, render_factor, model.stride)
    device = next(model.parameters()).device
    out = model(L_small.to(device), None if hints is None else hints.to(device))
    logits = out["logits"].float()
    logits = logits + palette_prior(model.bin_centers.float(), palette, options).view(1, -1, 1, 1)
    ab = model.decode(logits, L_small.shape[-2:], decoding).cpu()
    return ab if hints is None else take_points(L_small, ab, hints)
