"""Temporal stabilisation: carry each frame's chroma forward along optical flow and blend.

A colorization network run frame by frame answers each frame afresh, and small
changes in the input flip its guesses: the colors flicker. Here every frame's
predicted ab is blended with the previous *output* ab warped along the optical
flow (OpenCV DIS or Farneback, computed on the luminance at working size), so
a surface keeps the color it had, as an exponential average along its motion
path. Where the flow cannot be trusted the model's own prediction is used:

* occlusion check: forward and backward flow must agree (Sundaram et al. 2010,
  |w_b + w_f(x + w_b)|^2 < 0.01 (|w_b|^2 + |w_f|^2) + 0.5 px^2), and the warped
  previous luminance must match the current one;
* scene cuts (a jump in the luminance histogram, or too little of the frame
  trackable) reset the propagation: the first frame of a shot is the model's.

The blend keeps saturation: averaging two different hues shortens the ab
vector, so the blended vector is rescaled to the blended chroma magnitude.
That is what lets strong stabilisation not wash colors out.

Everything here works at the network's working size: chroma is upsampled
afterwards, so stabilising it at full resolution would buy nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import TinctError
from .options import TemporalOptions

FLOW_METHODS = ("dis", "farneback")


@dataclass
class StabilizerState:
    """What the next frame needs from the last one: its luminance (uint8, working size) and its output ab."""
    L: np.ndarray      # (h, w) uint8, L * 2.55
    ab: np.ndarray     # (2, h, w) float32, Lab units


class Stabilizer:
    """Feed frames in order with :meth:`step`; it returns the stabilised ab and notes scene cuts."""

    def __init__(self, options: TemporalOptions | None = None, state: StabilizerState | None = None):
        self.options = options or TemporalOptions()
        if not 0.0 <= self.options.strength <= 1.0:
            raise TinctError(f"temporal strength must be in [0, 1], got {self.options.strength}")
        if self.options.flow not in FLOW_METHODS:
            raise TinctError(f"unknown flow method {self.options.flow!r}; use one of {', '.join(FLOW_METHODS)}")
        self.state = state
        self.cut = False          # whether the last step started a new shot
        self.tracked = 0.0        # trackable fraction of the last frame
        self._dis = None

    def step(self, L: np.ndarray, ab: np.ndarray, cut: bool | None = None) -> np.ndarray:
        """``L`` ``(h, w)`` float in [0, 100], ``ab`` ``(2, h, w)`` float32 -> stabilised ab ``(2, h, w)`` float32.

        ``cut``: the shot boundary as already decided by a look-ahead pass (``tracks.py``), so that carried
        hints, per-shot references and the colors all restart on the same frames; None decides here.
        """
        L8 = luminance8(L)
        ab = np.asarray(ab, dtype=np.float32)
        prev, o = self.state, self.options
        self.cut, self.tracked = False, 0.0
        out = ab
        if cut is None:
            new_shot = prev is None or prev.L.shape != L8.shape or histogram_distance(prev.L, L8) > o.cut_threshold
        else:
            new_shot = prev is None or prev.L.shape != L8.shape or cut
        if new_shot:
            self.cut = prev is not None
        elif o.strength > 0:
            warped_ab, weight = self._propagate(prev, L8)
            self.tracked = float((weight > 0.5).mean())
            if cut is None and self.tracked < o.min_tracked:
                self.cut = True
            else:
                out = blend_keep_chroma(ab, warped_ab, o.strength * weight)
        self.state = StabilizerState(L8, out)
        return out

    def _propagate(self, prev: StabilizerState, L8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous output ab warped onto the current frame, and a [0, 1] trust map ``(h, w)``."""
        if self._dis is None:
            self._dis = FlowEstimator(self.options.flow)
        back = self._dis(L8, prev.L)          # where each current pixel was in the previous frame
        fwd = self._dis(prev.L, L8)
        warp, trust = flow_trust(prev.L, L8, back, fwd, self.options.photometric_tolerance)
        warped_ab = np.stack([warp(prev.ab[0]), warp(prev.ab[1])])
        return warped_ab, trust


def luminance8(L: np.ndarray) -> np.ndarray:
    """``L`` ``(h, w)`` float in [0, 100] -> uint8 ``L * 2.55`` (what the flow and the cut test look at)."""
    return np.clip(L * 2.55 + 0.5, 0, 255).astype(np.uint8)


class FlowEstimator:
    """Dense optical flow between two uint8 frames; ``est(a, b)`` -> ``(h, w, 2)`` float32 px, ``a(x) ~ b(x + flow(x))``."""

    def __init__(self, method: str = "dis"):
        if method not in FLOW_METHODS:
            raise TinctError(f"unknown flow method {method!r}; use one of {', '.join(FLOW_METHODS)}")
        self.method = method
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if method == "dis" else None

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def flow_consistent(back: np.ndarray, fwd_at: np.ndarray) -> np.ndarray:
    """Sundaram et al.'s forward-backward check: bool ``(h, w)``, ``fwd_at`` = forward flow sampled at x + back(x)."""
    err = ((back + fwd_at) ** 2).sum(-1)
    return err < 0.01 * ((back ** 2).sum(-1) + (fwd_at ** 2).sum(-1)) + 0.5


def flow_trust(prev_L8: np.ndarray, L8: np.ndarray, back: np.ndarray, fwd: np.ndarray, tolerance: float):
    """``(warp, trust)``: ``warp(img)`` carries a previous-frame ``(h, w)`` plane onto the current frame along
    ``back``; ``trust`` ``(h, w)`` float32 in [0, 1] is where that is right (consistent flow, inside the frame,
    luminance within ``tolerance`` L units), its edges softened so occlusion borders print no seam."""
    h, w = L8.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + back[..., 0], gy + back[..., 1]

    def warp(img):
        return cv2.remap(img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    consistent = flow_consistent(back, warp(fwd))
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    similar = np.abs(warp(prev_L8).astype(np.float32) - L8) / 2.55 < tolerance
    trust = cv2.blur((consistent & inside & similar).astype(np.float32), (3, 3))
    return warp, trust


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Half the L1 distance between the luminance histograms of two uint8 frames: 0 same, 1 disjoint."""
    ha = np.bincount(a.ravel() >> 3, minlength=bins).astype(np.float64)
    hb = np.bincount(b.ravel() >> 3, minlength=bins).astype(np.float64)
    return float(0.5 * np.abs(ha / ha.sum() - hb / hb.sum()).sum())


def blend_keep_chroma(ab: np.ndarray, warped: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(1 - weight) * ab + weight * warped``, rescaled to the blended chroma magnitude.

    Shapes: ab and warped ``(2, h, w)``, weight ``(h, w)`` in [0, 1]. The rescale
    is capped at 2x so two nearly opposite hues do not turn noise into color.
    """
    mix = (1 - weight) * ab + weight * warped
    target = (1 - weight) * np.hypot(ab[0], ab[1]) + weight * np.hypot(warped[0], warped[1])
    length = np.hypot(mix[0], mix[1])
    scale = np.minimum(target / np.maximum(length, 1e-6), 2.0)
    return (mix * scale).astype(np.float32)
