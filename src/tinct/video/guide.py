"""Guidance for a film: color points on chosen frames, whole-film points, a reference photo or palette, one
reference photo per shot. Turns them into what the network takes for each frame.

Hints file for a film (JSON, pixels of the film's frames, x from the left, y from the top)::

    [{"frame": 120, "x": 410, "y": 300, "color": "#a02020", "radius": 6},
     {"time": "00:00:05.0", "x": 90, "y": 60, "color": "#3060c0"},
     {"x": 10, "y": 10, "color": "#808080"}]

A point with ``"frame"`` (0-based) or ``"time"`` (``HH:MM:SS.s``, ``MM:SS.s`` or seconds; frame =
round(seconds x fps)) holds from its frame on, carried along the motion with its region, and back to the
start of its shot, until the shot ends or the region leaves the frame (``tracks.py``). A point without
either, or an RGBA PNG hints image the film's size, holds at the same place on every frame. The deep
model receives the points of each frame through its hint channels, as for a photo.

A palette (``--palette``) becomes the palette prior of ``guided/palette.py`` on every frame. A reference
photo (``--reference``) is taken as a photo of the film's scene: each frame's predicted color
distribution is moved onto the photo's (``palette.matched_prior``), so the frame takes the reference's
colors in the reference's proportions (a palette prior from it only removed colors, and grayed a mostly
gray scene). ``--reference-per-shot DIR`` does that for shot i with the i-th photo of DIR (sorted by
name), and refuses a folder whose photo count is not the film's shot count.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..color import rgb_to_lab
from ..errors import OptionError, TinctError
from ..hints import Hints, cell_average, hints_from_points, load_hints, parse_color, read_points_json
from ..io import IMAGE_EXTENSIONS
from .options import TemporalOptions, VideoOptions
from .tracks import GuidePlan, KeyPoint, plan_guidance

_TIME = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)$")


def parse_time(value, fps: Fraction, where: str) -> int:
    """``"HH:MM:SS.s"`` / ``"MM:SS.s"`` / ``"SS.s"`` or a number of seconds -> frame index at ``fps``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        seconds = float(value)
    elif isinstance(value, str) and (m := _TIME.match(value.strip())):
        parts = [g for g in m.groups() if g is not None]
        seconds = 0.0
        for part in parts:  # hours, minutes, seconds, whichever are given, most significant first
            seconds = seconds * 60 + float(part)
    else:
        raise TinctError(f'{where}: time must look like "00:01:05.5" (or seconds), got {value!r}')
    return int(round(seconds * float(fps)))


@dataclass
class FilmHints:
    """A film's hints: ``keyed`` points (full-resolution pixels, with their frame) and ``static`` ones."""
    keyed: list[dict]            # {"index", "frame", "x", "y", "radius", "a", "b"}
    static: Hints | None         # full-resolution sparse ab for every frame


def load_film_hints(path: str | Path, width: int, height: int, fps: Fraction) -> FilmHints:
    """Read a film's hints file (JSON with frames/times, or an RGBA PNG for every frame). One-line errors."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return FilmHints([], load_hints(path, (height, width)))
    if not path.is_file():
        raise TinctError(f"{path}: no such hints file")
    points = read_points_json(path)
    if not isinstance(points, list) or not points:
        raise TinctError(f'{path}: hints JSON must be a non-empty list of {{"frame": .., "x": .., "y": .., '
                         '"color": "#rrggbb"}} objects')
    for i, p in enumerate(points):
        if not isinstance(p, dict):
            raise TinctError(f'{path}: point {i + 1}: expected an object like '
                             '{"frame": 0, "x": 10, "y": 20, "color": "#ff0000"}')
    # x, y, color, radius: checked by the photo's rules, all at once (hint numbers stay those of the file)
    hints_from_points([{k: v for k, v in p.items() if k not in ("frame", "time")} for p in points],
                      (height, width), str(path))
    keyed, plain = [], []
    for i, p in enumerate(points):
        where = f"{path}: point {i + 1}"
        if "frame" in p and "time" in p:
            raise TinctError(f"{where}: give a frame or a time, not both")
        rest = {k: v for k, v in p.items() if k not in ("frame", "time")}
        if "frame" in p:
            f = p["frame"]
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or f != int(f) or f < 0:
                raise TinctError(f"{where}: frame must be a whole number >= 0 (0 = the first frame), got {f!r}")
            frame = int(f)
        elif "time" in p:
            frame = parse_time(p["time"], fps, where)
        else:
            plain.append(rest)
            continue
        a, b = rgb_to_lab(np.array(parse_color(rest["color"]), np.float64) / 255.0)[1:]
        keyed.append({"index": i, "frame": frame, "x": int(rest["x"]), "y": int(rest["y"]),
                      "radius": int(rest.get("radius", 0)), "a": float(a), "b": float(b)})
    static = hints_from_points(plain, (height, width), str(path)) if plain else None
    return FilmHints(keyed, static)


def reference_photos(folder: str | Path) -> list[Path]:
    """The photos of a per-shot reference folder, in name order (hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TinctError(f"{folder}: --reference-per-shot needs a folder of color photos, one per shot")
    photos = sorted(p for p in folder.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not photos:
        raise TinctError(f"{folder}: no photos in the per-shot reference folder")
    return photos


def takes_hints(model) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "hint_channels", getattr(model, "hint_channels", 0)) == 3


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha1()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


class FilmGuide:
    """Per-frame network inputs of a guided film run: hint channels and a palette log-prior.

    Built from ``VideoOptions`` (``hints``, ``reference``, ``palette``, ``reference_per_shot``) for a film
    of ``width`` x ``height`` at ``fps`` colorized at working size ``(h, w)``. ``needs_plan``: the run
    must first call :meth:`set_plan` with the look-ahead pass (``tracks.plan_guidance``).
    """

    def __init__(self, model, options: VideoOptions, width: int, height: int, fps: Fraction, h: int, w: int):
        self.model, self.h, self.w = model, h, w
        self.sx, self.sy = w / width, h / height     # full-resolution px -> working px
        self.hints = None
        self.static = None           # (3, h, w) float32 hint planes on every frame, or None
        self.keyed: list[KeyPoint] = []
        self.priors: list[torch.Tensor] = []   # a palette's log prior per ab bin (Q,)
        self.shares: list[torch.Tensor] = []   # reference photos' color distributions (Q,): one, or one per shot
        self.plan: GuidePlan | None = None
        self.per_shot = options.reference_per_shot is not None
        self.reach = float(options.hint_reach)
        if not (self.reach >= 0 and math.isfinite(self.reach)):
            raise TinctError(f"hint reach must be >= 0 (L units), got {options.hint_reach}")
        self._digests = {}
        if sum(x is not None for x in (options.reference, options.palette, options.reference_per_shot)) > 1:
            raise TinctError("a film takes one of --reference, --palette and --reference-per-shot")
        if options.hints is not None:
            if not takes_hints(model):
                raise TinctError("this model takes no color hints (it was built without hint channels); "
                                 "use the default model")
            fh = load_film_hints(options.hints, width, height, fps)
            self._digests["hints"] = _digest([Path(options.hints)])
            if fh.static is not None:
                ab, mask = cell_average(fh.static, h, w)
                self.static = np.concatenate([ab.transpose(2, 0, 1), mask[None].astype(np.float32)])
            self.keyed = [KeyPoint(index=k["index"], frame=k["frame"], x=(k["x"] + 0.5) * self.sx,
                                   y=(k["y"] + 0.5) * self.sy, radius=k["radius"] * self.sx, a=k["a"], b=k["b"])
                          for k in fh.keyed]
        spec = options.reference or options.palette
        if spec is not None or self.per_shot:
            from ..guided.palette import PaletteOptions, palette_prior, parse_palette, reference_share
            from ..guided.transfer import load_reference
            if not isinstance(model, torch.nn.Module) or getattr(model.config, "head", None) != "classification" \
                    or not hasattr(model, "bin_centers"):
                raise TinctError("--reference/--palette on a film need a classification model on the torch "
                                 "backend (they reweight the predicted color distribution), as the default is")
            if options.reference is not None and not Path(options.reference).is_file():
                raise TinctError(f"{options.reference}: no such reference photo")
            photos = reference_photos(options.reference_per_shot) if self.per_shot else [spec]
            centers = model.bin_centers.detach().float().cpu()
            if options.palette is not None:
                self.priors = [palette_prior(centers, parse_palette(str(options.palette)), PaletteOptions())]
            else:
                self.shares = [reference_share(centers, load_reference(p)) for p in photos]
            files = [Path(p) for p in photos if Path(p).is_file()]
            if files:
                self._digests["reference"] = _digest(files)

    @property
    def active(self) -> bool:
        return self.static is not None or bool(self.keyed) or bool(self.priors) or bool(self.shares)

    @property
    def needs_plan(self) -> bool:
        return bool(self.keyed) or self.per_shot

    def identity(self) -> dict:
        """Contents of the guidance files (for the resume fingerprint: an edited hints file restarts the run)."""
        return dict(self._digests)

    def make_plan(self, frames, options: TemporalOptions) -> GuidePlan:
        """The look-ahead pass over working-size uint8 luminance ``frames``; checks the per-shot photo count."""
        plan = plan_guidance(frames, self.keyed, options, whole_film=self.per_shot)
        self.set_plan(plan)
        return plan

    def set_plan(self, plan: GuidePlan) -> None:
        if self.per_shot and plan.shots != len(self.shares):
            cuts = ", ".join(map(str, plan.cuts[:10])) + (", ..." if len(plan.cuts) > 10 else "")
            raise OptionError(f"--reference-per-shot has {len(self.shares)} photos but the film has {plan.shots} "
                             f"shots{f' (new shots at frames {cuts})' if plan.cuts else ''}: give one photo per shot")
        self.plan = plan

    def cut(self, t: int) -> bool | None:
        return None if self.plan is None else self.plan.is_cut(t)

    def hint_planes(self, t: int) -> np.ndarray | None:
        """The hint channels of frame ``t``: ``(3, h, w)`` float32 (a, b, mask), or None without hints."""
        if self.static is None and not self.keyed:
            return None
        rows = self.plan.points.get(t, []) if self.plan is not None else []
        planes = self.static.copy() if self.static is not None else np.zeros((3, self.h, self.w), np.float32)
        yy, xx = np.mgrid[0:self.h, 0:self.w]
        for _, x, y, r, a, b in sorted(rows):       # by hint number: later points paint over earlier ones
            disc = (yy + 0.5 - y) ** 2 + (xx + 0.5 - x) ** 2 <= r * r
            disc[min(int(y), self.h - 1), min(int(x), self.w - 1)] = True   # at least the cell it lies in
            planes[0][disc], planes[1][disc], planes[2][disc] = a, b, 1.0
        return planes

    def batch(self, indices: list[int]) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """For frames ``indices``: hint tensor ``(B, 3, h, w)``, a palette's log prior ``(B, Q)`` and a
        reference's color distribution ``(B, Q)`` (each None when unused)."""
        hints = None
        if self.static is not None or self.keyed:
            hints = torch.from_numpy(np.stack([self.hint_planes(t) for t in indices]))
        prior = torch.stack([self.priors[0]] * len(indices)) if self.priors else None
        share = None
        if self.shares:
            share = torch.stack([self.shares[self.plan.shot(t) if self.per_shot else 0] for t in indices])
        return hints, prior, share
