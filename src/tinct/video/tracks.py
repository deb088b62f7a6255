"""Look-ahead pass for guided films: where the shots start, and where each color point is on every frame.

A hint given on frame N ("her dress is red") must hold from the start of its
shot to the end, wherever the dress moves. Before any frame is colorized, the
film's luminance is read once at the network's working size (cheap: no
network) and:

* shots are found with the stabiliser's own test (luminance-histogram jump, or
  too little of the frame trackable by forward-backward-consistent flow), so
  the colors, the carried points and a per-shot reference all restart on the
  same frames;
* every point is carried along the optical flow, frame to frame, forward to
  the end of its shot and backward to its start: each step moves it by the
  median flow over its region (a disc of its radius, at least 1.5 working
  pixels), and it stops when the region leaves the frame, when fewer than
  half of the region's pixels pass the forward-backward check (occluded), or
  when the region's median luminance strays from the one the user pointed at
  by more than the stabiliser's photometric tolerance (the object is gone).

The result, a ``GuidePlan``, is saved in the run's work folder so that an
interrupted run resumes with exactly the same points. Memory: the working-size
luminance of the current shot (``h * w`` bytes a frame).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from ..errors import OptionError
from ..io import atomic_path
from .options import TemporalOptions
from .temporal import FlowEstimator, flow_consistent, flow_trust, histogram_distance

MIN_REGION = 1.5     # working px: the smallest region a point's motion is measured over
MIN_CONSISTENT = 0.5  # fraction of a point's region that must pass the forward-backward check


@dataclass
class KeyPoint:
    """A user's color point on frame ``frame``, in working-size pixel coordinates (float, x right, y down).

    ``radius`` in working pixels (0: one cell); ``ab`` in Lab units; ``index`` orders overlapping points
    (later ones paint over earlier ones, as in the hints file).
    """
    index: int
    frame: int
    x: float
    y: float
    radius: float
    a: float
    b: float


@dataclass
class GuidePlan:
    """Shots and carried points of a film (or of its first ``frames`` frames; later frames carry none).

    ``cuts``: first frames of every shot after the first, ascending. ``points[t]``: rows
    ``(index, x, y, radius, a, b)`` of the points present on frame ``t``, working-size coordinates.
    ``complete``: the pass reached the film's end (so ``len(cuts) + 1`` is its number of shots).
    """
    frames: int = 0
    cuts: list[int] = field(default_factory=list)
    points: dict[int, list[tuple]] = field(default_factory=dict)
    complete: bool = False

    def is_cut(self, t: int) -> bool | None:
        """Whether frame ``t`` starts a shot; None past the analysed frames (the stabiliser decides)."""
        if t >= self.frames:
            return None
        i = bisect.bisect_left(self.cuts, t)
        return i < len(self.cuts) and self.cuts[i] == t

    def shot(self, t: int) -> int:
        """0-based shot number of frame ``t``."""
        return bisect.bisect_right(self.cuts, t)

    @property
    def shots(self) -> int:
        return len(self.cuts) + 1

    def save(self, path: Path) -> None:
        rows = [(t, *r) for t in sorted(self.points) for r in self.points[t]]
        arr = np.asarray(rows, np.float64).reshape(-1, 7)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, frames=np.int64(self.frames), cuts=np.asarray(self.cuts, np.int64), rows=arr,
                         complete=np.bool_(self.complete))

    @classmethod
    def load(cls, path: Path) -> "GuidePlan":
        with np.load(path, allow_pickle=False) as z:
            plan = cls(frames=int(z["frames"]), cuts=[int(c) for c in z["cuts"]], complete=bool(z["complete"]))
            for t, i, x, y, r, a, b in z["rows"]:
                plan.points.setdefault(int(t), []).append((int(i), float(x), float(y), float(r), float(a), float(b)))
        return plan


def _region(x: float, y: float, radius: float, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rows and columns of a point's region: the disc of ``radius`` (at least MIN_REGION) in the frame."""
    r = max(radius, MIN_REGION)
    y0, y1 = max(0, int(np.floor(y - r))), min(h, int(np.ceil(y + r)) + 1)
    x0, x1 = max(0, int(np.floor(x - r))), min(w, int(np.ceil(x + r)) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    disc = (yy + 0.5 - y) ** 2 + (xx + 0.5 - x) ** 2 <= r * r
    if not disc.any():
        return np.array([min(int(y), h - 1)]), np.array([min(int(x), w - 1)])
    return yy[disc], xx[disc]


class _Track:
    """One point being carried, frame to frame, in one direction; ``L8`` the frame it was given on."""

    def __init__(self, p: KeyPoint, L8: np.ndarray, tolerance: float):
        self.p = p
        self.x, self.y = p.x, p.y
        self.tolerance = tolerance * 2.55    # L units -> uint8 steps
        self.look = float(np.median(L8[_region(p.x, p.y, p.radius, *L8.shape)]))

    def row(self) -> tuple:
        return (self.p.index, self.x, self.y, self.p.radius, self.p.a, self.p.b)

    def move(self, flow: np.ndarray, other: np.ndarray, L8_next: np.ndarray) -> bool:
        """Step along ``flow`` (this frame -> next, ``(h, w, 2)``); ``other`` the reverse flow. False: lost."""
        h, w = flow.shape[:2]
        ys, xs = _region(self.x, self.y, self.p.radius, h, w)
        v = flow[ys, xs]                                       # (n, 2) motion of the region's pixels
        tx = (xs + v[:, 0]).astype(np.float32)[None]
        ty = (ys + v[:, 1]).astype(np.float32)[None]
        back_at = cv2.remap(other, tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
        inside = (tx[0] >= 0) & (tx[0] <= w - 1) & (ty[0] >= 0) & (ty[0] <= h - 1)
        ok = flow_consistent(v[None], back_at[None])[0] & inside
        if ok.mean() < MIN_CONSISTENT:
            return False
        dx, dy = np.median(v[ok], axis=0)
        self.x, self.y = self.x + float(dx), self.y + float(dy)
        if not (0 <= self.x < w and 0 <= self.y < h):
            return False
        # the region must still look like the one the user pointed at: an object that left the frame
        # leaves the point on the background, whose flow is just as consistent
        now = float(np.median(L8_next[_region(self.x, self.y, self.p.radius, h, w)]))
        return abs(now - self.look) <= self.tolerance


def plan_guidance(frames: Iterable[np.ndarray], points: list[KeyPoint], options: TemporalOptions,
                  whole_film: bool = False) -> GuidePlan:
    """Run the look-ahead pass over ``frames`` (working-size uint8 luminance ``(h, w)``, from frame 0).

    Stops after the last point's shot unless ``whole_film`` (a per-shot reference needs every cut).
    A point on a frame the film does not have is a one-line ``TinctError``.
    """
    by_frame: dict[int, list[KeyPoint]] = {}
    for p in points:
        by_frame.setdefault(p.frame, []).append(p)
    last_key = max(by_frame, default=-1)
    flow = FlowEstimator(options.flow)
    plan = GuidePlan()
    shot: list[np.ndarray] = []      # this shot's frames so far (for carrying points backward)
    active: list[_Track] = []        # points carried forward
    t = -1
    for t, L8 in enumerate(frames):
        if shot:
            prev = shot[-1]
            cut = prev.shape != L8.shape or histogram_distance(prev, L8) > options.cut_threshold
            if not cut:
                back, fwd = flow(L8, prev), flow(prev, L8)
                _, trust = flow_trust(prev, L8, back, fwd, options.photometric_tolerance)
                cut = float((trust > 0.5).mean()) < options.min_tracked
            if cut:
                plan.cuts.append(t)
                shot, active = [], []
            else:
                active = [tr for tr in active if tr.move(fwd, back, L8)]
        shot.append(L8)
        for tr in active:
            plan.points.setdefault(t, []).append(tr.row())
        keys = by_frame.get(t, [])
        for p in keys:
            tr = _Track(p, L8, options.photometric_tolerance)
            active.append(tr)
            plan.points.setdefault(t, []).append(tr.row())
        if keys:
            _carry_back(plan, shot, t, keys, flow, options.photometric_tolerance)
        plan.frames = t + 1
        if not whole_film and t >= last_key and not active:
            break
    else:
        plan.complete = True
    missing = [p for p in points if p.frame > t]
    if missing:
        p = missing[0]
        raise OptionError(f"point {p.index + 1}: frame {p.frame} is past the film's end ({t + 1} frames)")
    return plan


def _carry_back(plan: GuidePlan, shot: list[np.ndarray], t: int, keys: list[KeyPoint], flow: FlowEstimator,
                tolerance: float) -> None:
    """Carry the points given on frame ``t`` back to the first frame of their shot (``shot[0]``)."""
    tracks = [_Track(p, shot[-1], tolerance) for p in keys]
    for k in range(len(shot) - 1, 0, -1):      # shot[k] is frame t - (len(shot) - 1 - k)
        cur, earlier = shot[k], shot[k - 1]
        back, fwd = flow(cur, earlier), flow(earlier, cur)
        tracks = [tr for tr in tracks if tr.move(back, fwd, earlier)]
        if not tracks:
            return
        frame = t - (len(shot) - k)
        plan.points.setdefault(frame, []).extend(tr.row() for tr in tracks)
