"""One entry point for every guided method: chroma for a photo's L, then the pipeline's recombine.

``GuidedOptions.method`` picks the method; ``None`` is the default deep model,
fed the user's color points (``hints``) through its hint channels when given.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import OptionError, TinctError
from ..hints import Hints, check_takes_hints, hints_tensor, load_hints
from ..pipeline import ColorizeOptions, predict_chroma, working_size
from .levin import LevinOptions, solve_levin
from .palette import parse_palette, predict_ab_palette
from .transfer import TransferOptions, load_reference, reinhard_transfer, welsh_transfer

METHODS = ("levin", "transfer", "welsh", "deep-colorization")


@dataclass
class GuidedOptions:
    method: str | None = None          # one of METHODS, or None for the deep model
    hints: str | None = None           # hints file (RGBA PNG the photo's size, or JSON points)
    reference: str | None = None       # color reference photo (transfer, welsh)
    palette: str | None = None         # deep model: "#rrggbb,..." or a color photo (palette.py)
    levin: LevinOptions = field(default_factory=LevinOptions)
    transfer: TransferOptions = field(default_factory=TransferOptions)


def check_options(g: GuidedOptions, jobs=None, samples: int | None = None, temperature: float | None = None,
                  prior_correction: float | None = None) -> None:
    """Refuse combinations that cannot work, before any photo is read (one-line ``TinctError``).

    ``jobs``: the planned ``batch.Job`` list (hints describe one photo).
    """
    jobs = jobs or []
    if samples is not None:
        raise TinctError("--samples does not combine with --method/--hints/--reference/--palette")
    for flag, value in (("--temperature", temperature), ("--prior-correction", prior_correction)):
        if value is not None and g.method is not None:
            raise TinctError(f"{flag} is for the deep model, not --method {g.method}")
    if g.method is not None and g.method not in METHODS:
        raise TinctError(f"unknown method {g.method!r}; choose one of {', '.join(METHODS)}")
    if g.method in ("transfer", "welsh") and not g.reference:
        raise TinctError(f"--method {g.method} needs --reference PHOTO (a color photo to take the colors from)")
    if g.reference and g.method not in ("transfer", "welsh"):
        raise TinctError("--reference is used by --method transfer or --method welsh")
    if g.method == "levin" and not g.hints:
        raise TinctError("--method levin needs --hints FILE (the colors to spread)")
    if g.hints and g.method not in (None, "levin"):
        raise TinctError(f"--method {g.method} takes no --hints; hints go to --method levin or the default deep model")
    if g.palette and g.method is not None:
        raise TinctError("--palette steers the deep model; it does not combine with --method")
    if g.hints and len(jobs) > 1:
        raise TinctError("--hints describes one photo: give exactly one input image")


def guided_ab(L: np.ndarray, g: GuidedOptions, model=None, options: ColorizeOptions | None = None,
              hints: Hints | None = None, reference_lab: np.ndarray | None = None,
              palette: np.ndarray | None = None) -> torch.Tensor:
    """Chroma for ``L`` ``(H, W)`` in [0, 100]: ``(1, 2, h, w)`` float32 at full or working size.

    ``hints``, ``reference_lab`` and ``palette`` (ab ``(K, 2)``) override the files or lists named
    in ``g`` (for callers that hold them already).
    """
    options = options or ColorizeOptions()
    H, W = L.shape
    if hints is None and g.hints:
        try:
            hints = load_hints(g.hints, (H, W))
        except TinctError as e:  # the --hints file is wrong, not the photo
            raise OptionError(str(e)) from None
    if reference_lab is None and g.reference:
        reference_lab = load_reference(g.reference)
    if palette is None and g.palette:
        palette = parse_palette(g.palette)
    if g.method is None:
        if model is None:
            raise TinctError("no model given for deep colorization")
        t = None
        if hints is not None:
            check_takes_hints(model)
            h, w = working_size(H, W, options.render_factor, model.stride)
            t = hints_tensor(hints, h, w)
        if palette is not None:
            return predict_ab_palette(model, L, palette, options.render_factor, hints=t, decoding=options.decoding)
        return predict_chroma(model, L, options, hints=t)
    if g.method == "levin":
        ab = solve_levin(L, hints, g.levin)
    elif g.method == "transfer":
        ab = reinhard_transfer(L, reference_lab, g.transfer)
    elif g.method == "welsh":
        ab = welsh_transfer(L, reference_lab, g.transfer)
    else:
        from .deep_colorization import deep_colorization_ab
        return deep_colorization_ab(_cached_net(), L)
    return torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1)))[None]


_NET = {}


def _cached_net():
    from .deep_colorization import load_net
    if "net" not in _NET:
        _NET["net"] = load_net()
    return _NET["net"]


def guided_chroma(g: GuidedOptions):
    """A ``chroma(model, L, options)`` for ``pipeline.colorize_file`` that uses method ``g`` (reference photo and
    palette read once for all photos)."""
    reference = load_reference(g.reference) if g.reference else None
    palette = parse_palette(g.palette) if g.palette else None

    def chroma(model, L: np.ndarray, options: ColorizeOptions) -> torch.Tensor:
        return guided_ab(L, g, model, options, reference_lab=reference, palette=palette)

    return chroma
