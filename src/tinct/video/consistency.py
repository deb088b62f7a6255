"""Temporal consistency scores of a colorized film, accumulated frame by frame (bounded memory).

* **CDC**, the color distribution consistency index of the NTIRE 2023 video
  colorization challenge (from Liu et al.'s TCVC): per RGB channel, the
  256-bin histogram of each frame (normalised to sum 1); the Jensen-Shannon
  divergence (natural log) between frames ``d`` apart, averaged over all such
  pairs, for ``d`` in 1, 2 and 4; the three averages weighted 1/3 each, then
  the three channels averaged. Lower is steadier; it ignores where colors
  are, only how much of each there is, so it is blind to colors swapping
  places and sensitive to a whole frame's tint jumping.
* **Warp error**: the previous frame's colors carried onto the current one
  along the optical flow of the *truth's luminance* (OpenCV DIS, both
  directions, scored only where they agree and the luminance matches),
  ``mean |ab(t) - warp(ab(t-1))|`` in Lab ab units. The truth's own warp
  error is the floor: real colors move with their objects, but flow and
  lighting are not perfect.
"""
from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from .temporal import FlowEstimator, flow_trust

CDC_DILATIONS = (1, 2, 4)
WARP_PIXELS = 500_000   # the warp error is measured at most at this many pixels (flow cost)
WARP_TOLERANCE = 8.0    # L units: pixels whose carried luminance differs more are occlusions, not scored


def channel_histograms(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(3, 256)`` float64, each row summing to 1."""
    flat = rgb.reshape(-1, 3)
    return np.stack([np.bincount(flat[:, c], minlength=256) for c in range(3)]).astype(np.float64) / len(flat)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats) between rows of ``p`` and ``q`` ``(..., n)`` (each summing to 1)."""
    m = (p + q) / 2

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log(a / np.where(b > 0, b, 1)), 0.0).sum(-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


class CDC:
    """Feed frames in order with :meth:`add`; :meth:`value` is the CDC of the frames so far (nan if < 2)."""

    def __init__(self, dilations=CDC_DILATIONS):
        self.dilations = tuple(dilations)
        self._recent: deque = deque(maxlen=max(self.dilations))
        self._sums = {d: np.zeros(3) for d in self.dilations}
        self._counts = {d: 0 for d in self.dilations}

    def add(self, rgb: np.ndarray) -> None:
        h = channel_histograms(rgb)
        for d in self.dilations:
            if len(self._recent) >= d:
                self._sums[d] += js_divergence(self._recent[-d], h)
                self._counts[d] += 1
        self._recent.append(h)

    def value(self) -> float:
        used = [d for d in self.dilations if self._counts[d]]
        if not used:
            return float("nan")
        # the challenge's weights are 1/3 each; a clip too short for d = 4 averages the dilations it has
        per_channel = sum(self._sums[d] / self._counts[d] for d in used) / len(used)
        return float(per_channel.mean())


class TruthMotion:
    """Optical flow between consecutive true frames, computed once and shared by every run scored on them."""

    def __init__(self, method: str = "dis"):
        self._flow = FlowEstimator(method)
        self._prev_L8 = None
        self._index = -1
        self.warp = None      # carries a previous-frame plane onto the current one (analysis size)
        self.trust = None     # (h, w) bool: where that carry is right
        self.size = None

    def update(self, index: int, true_L: np.ndarray) -> None:
        """Frame ``index``'s true L ``(H, W)`` in [0, 100]; repeated calls with the same index do nothing."""
        if index == self._index:
            return
        H, W = true_L.shape
        s = min(1.0, (WARP_PIXELS / (H * W)) ** 0.5)
        self.size = (max(1, round(W * s)), max(1, round(H * s)))
        L8 = np.clip(self.shrink(true_L) * 2.55 + 0.5, 0, 255).astype(np.uint8)
        if self._prev_L8 is not None and index == self._index + 1:
            back, fwd = self._flow(L8, self._prev_L8), self._flow(self._prev_L8, L8)
            self.warp, trust = flow_trust(self._prev_L8, L8, back, fwd, WARP_TOLERANCE)
            self.trust = trust > 0.99   # inside the softened mask only
        else:
            self.warp = self.trust = None
        self._prev_L8, self._index = L8, index

    def shrink(self, plane: np.ndarray) -> np.ndarray:
        if self.size == (plane.shape[1], plane.shape[0]):
            return np.asarray(plane, np.float32)
        return cv2.resize(np.asarray(plane, np.float32), self.size, interpolation=cv2.INTER_AREA)


def warp_error(motion: TruthMotion, prev_ab: np.ndarray, ab: np.ndarray) -> float:
    """``mean |ab - warp(prev_ab)|`` over trusted pixels; ab planes ``(H, W, 2)`` float. nan when nothing is."""
    if motion.warp is None or not motion.trust.any():
        return float("nan")
    carried = np.stack([motion.warp(motion.shrink(prev_ab[..., c])) for c in range(2)], -1)
    now = np.stack([motion.shrink(ab[..., c]) for c in range(2)], -1)
    return float(np.sqrt(((now - carried) ** 2).sum(-1))[motion.trust].mean())
