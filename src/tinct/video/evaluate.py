"""Score film colorization against a color clip: flicker, CDC, warp error, per-frame AuC, colorfulness, L drift.

Flicker is the mean over frames of the mean per-pixel ab distance between
consecutive frames, ``mean |ab(t) - ab(t-1)|``; the real film moves too, so
the score that matters is the ratio of the output's flicker to the truth's
(1 = as steady as the real colors; above 1, colors that jump on their own).
Flicker alone rewards gray, so chroma and colorfulness are reported beside it.
CDC (NTIRE 2023) and the warp error along the truth's flow are in
``consistency.py``; each is reported for the truth too, as the floor.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..color import rgb_to_lab, rgb_to_luminance
from ..data import colorfulness
from ..errors import TinctError
from ..io import atomic_path
from ..metrics import ab_error, auc
from ..pipeline import DEFAULT_RENDER_FACTOR, recombine
from ..weights import load_model
from .colorize import stabilised_frames
from .consistency import CDC, TruthMotion, warp_error
from .source import open_source
from .options import DEFAULT_TEMPORAL, TemporalOptions
from .temporal import Stabilizer


REGION = 16  # px: block size of the region flicker


class ClipScorer:
    """Accumulates scores frame by frame (bounded memory); :meth:`summary` gives the means."""

    def __init__(self, motion: TruthMotion | None = None):
        """``motion``: the truth's flow, shared by scorers of the same clip (computed once per frame)."""
        self.rows: list[dict] = []
        self._prev_pred = self._prev_true = None
        self._flicker: dict[str, list[float]] = {k: [] for k in ("flicker", "flicker_true", "flicker_region",
                                                                   "flicker_region_true", "warp_error",
                                                                   "warp_error_true")}
        self.motion = motion or TruthMotion()
        self._cdc, self._cdc_true = CDC(), CDC()

    def add(self, pred_rgb: np.ndarray, true_rgb: np.ndarray, input_L: np.ndarray) -> dict:
        """RGB ``(H, W, 3)`` uint8 output and truth, ``input_L`` ``(H, W)`` the L the colorizer was given."""
        pred = rgb_to_lab(pred_rgb.astype(np.float32) / 255)
        true = rgb_to_lab(true_rgb.astype(np.float32) / 255)
        row = {"frame": len(self.rows), "auc": auc(ab_error(pred, true)),
               "colorfulness": colorfulness(pred_rgb), "colorfulness_true": colorfulness(true_rgb),
               "chroma": float(np.hypot(pred[..., 1], pred[..., 2]).mean()),
               "chroma_true": float(np.hypot(true[..., 1], true[..., 2]).mean()),
               "luminance_drift": float(np.abs(pred[..., 0] - input_L).mean())}
        pred_ab, true_ab = pred[..., 1:], true[..., 1:]
        self._cdc.add(pred_rgb)
        self._cdc_true.add(true_rgb)
        self.motion.update(row["frame"], true[..., 0])
        if self._prev_pred is not None:
            row["warp_error"] = warp_error(self.motion, self._prev_pred[0], pred_ab)
            row["warp_error_true"] = warp_error(self.motion, self._prev_true[0], true_ab)
            row["flicker"] = _mean_distance(pred_ab, self._prev_pred[0])
            row["flicker_true"] = _mean_distance(true_ab, self._prev_true[0])
            row["flicker_region"] = _mean_distance(_pool(pred_ab), self._prev_pred[1])
            row["flicker_region_true"] = _mean_distance(_pool(true_ab), self._prev_true[1])
            for k in self._flicker:
                if np.isfinite(row[k]):
                    self._flicker[k].append(row[k])
        self._prev_pred, self._prev_true = (pred_ab, _pool(pred_ab)), (true_ab, _pool(true_ab))
        self.rows.append(row)
        return row

    def summary(self) -> dict:
        if not self.rows:
            raise TinctError("no frames were scored")
        keys = ["auc", "colorfulness", "colorfulness_true", "chroma", "chroma_true", "luminance_drift"]
        out = {k: float(np.mean([r[k] for r in self.rows])) for k in keys}
        out["frames"] = len(self.rows)
        for k, v in self._flicker.items():
            out[k] = float(np.mean(v)) if v else float("nan")
        for k in ("flicker", "flicker_region"):
            out[k + "_ratio"] = out[k] / out[k + "_true"] if out[k + "_true"] > 0 else float("nan")
        out["cdc"], out["cdc_true"] = self._cdc.value(), self._cdc_true.value()
        return out


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-pixel Euclidean distance between two ab planes ``(H, W, 2)``."""
    return float(np.sqrt(((a - b) ** 2).sum(-1)).mean())


def _pool(ab: np.ndarray, cell: int = REGION) -> np.ndarray:
    """Mean ab over ``cell`` x ``cell`` blocks: region colors, without pixel noise and edge motion."""
    h, w = ab.shape[0] // cell * cell, ab.shape[1] // cell * cell
    if h == 0 or w == 0:
        return ab
    return ab[:h, :w].reshape(h // cell, cell, w // cell, cell, 2).mean((1, 3))


@dataclass
class VideoEvalConfig:
    clip: str = ""
    model: str = "default"
    out: str = "video-report"
    render_factor: int = DEFAULT_RENDER_FACTOR
    temporal: list[float] = field(default_factory=lambda: [0.0, DEFAULT_TEMPORAL])
    frames: int | None = None      # score only the first N frames
    fps: float | None = None       # for a folder of frames
    batch: int = 8


def evaluate_video(cfg: VideoEvalConfig) -> dict[str, dict]:
    """Gray the color clip, colorize it once per temporal strength (one network pass), score; write a report."""
    model = load_model(cfg.model)
    source = open_source(cfg.clip, cfg.fps)
    info = source.info
    stabs = {f"temporal {s:g}": Stabilizer(TemporalOptions(strength=s)) for s in dict.fromkeys(cfg.temporal)}
    motion = TruthMotion()
    scorers = {name: ClipScorer(motion) for name in stabs}
    limit = cfg.frames or info.expected_frames
    truths: list[np.ndarray] = []

    def gray_frames():
        # the clip is read once: each color frame is kept until its colorized versions are scored
        for i, rgb in enumerate(source.frames(rgb=True)):
            if cfg.frames and i >= cfg.frames:
                return
            truths.append(rgb)
            yield rgb_to_luminance(rgb.astype(np.float32) / 255)

    with source, tqdm(total=limit, unit="frame", desc="evaluating") as bar:
        for L, abs_ in stabilised_frames(model, gray_frames(), info.height, info.width, cfg.render_factor,
                                         list(stabs.values()), cfg.batch):
            truth = truths.pop(0)
            for name, ab in zip(stabs, abs_):
                scorers[name].add(recombine(L, torch.from_numpy(ab)[None]), truth, L)
            bar.update(1)
    summary = {name: s.summary() for name, s in scorers.items()}
    _write(cfg, info, summary, scorers)
    return summary


def markdown_table(summary: dict[str, dict]) -> str:
    first = next(iter(summary.values()))
    lines = ["| run | frames | flicker | flicker ratio to truth | region flicker ratio | CDC | warp error "
             "| AuC % | colorfulness | chroma | L drift |",
             "|---|---|---|---|---|---|---|---|---|---|---|",
             f"| truth | {first['frames']} | {first['flicker_true']:.3f} | 1.00 | 1.00 | {first['cdc_true']:.5f} "
             f"| {first['warp_error_true']:.3f} | 100 | {first['colorfulness_true']:.1f} | {first['chroma_true']:.2f} | 0 |"]
    for name, m in summary.items():
        lines.append(f"| {name} | {m['frames']} | {m['flicker']:.3f} | {m['flicker_ratio']:.2f} "
                     f"| {m['flicker_region_ratio']:.2f} | {m['cdc']:.5f} | {m['warp_error']:.3f} | {m['auc']:.2f} "
                     f"| {m['colorfulness']:.1f} | {m['chroma']:.2f} | {m['luminance_drift']:.3f} |")
    return "\n".join(lines)


def _write(cfg: VideoEvalConfig, info, summary: dict, scorers: dict[str, ClipScorer]) -> None:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "report.md") as tmp:
        Path(tmp).write_text(
            f"# tinct video evaluation\n\nClip: {cfg.clip} ({info.description}), model {cfg.model}, render factor "
            f"{cfg.render_factor}. Each frame is turned gray (its CIE L), the clip is colorized once per temporal "
            "strength (0 = frame by frame) and compared with the original frames (no codec in between). "
            "Flicker = mean |ab(t) - ab(t-1)| (Lab units); ratio = output flicker / truth flicker; region flicker "
            f"is the same on ab averaged over {REGION}x{REGION} px blocks (color jumps of areas, not edges). CDC: "
            "NTIRE 2023's color distribution consistency (Jensen-Shannon divergence of per-channel RGB histograms "
            "of frames 1, 2 and 4 apart, averaged; lower = steadier); warp error: mean |ab(t) - ab(t-1) carried "
            "along the flow of the truth's luminance| where that flow is trusted (ab units); the truth row is the "
            "floor of both. AuC of "
            "per-pixel ab error over thresholds 0..150, per frame, averaged; colorfulness after Hasler & "
            "Suesstrunk; chroma = mean sqrt(a^2 + b^2); L drift = mean |L_out - L_in|.\n\n"
            + markdown_table(summary) + "\n")
    with atomic_path(out / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1))
    with atomic_path(out / "frames.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            fields = ["run", "frame", "auc", "colorfulness", "colorfulness_true", "chroma", "chroma_true",
                      "luminance_drift", "flicker", "flicker_true", "flicker_region", "flicker_region_true",
                      "warp_error", "warp_error_true"]
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for name, s in scorers.items():
                for r in s.rows:
                    w.writerow({"run": name, **{k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in r.items()}})
