"""Evaluation: gray the color photos, colorize them, score, and write a report.

Writes into the report folder: ``report.md`` (mean scores per model, the gray
floor first), ``scores.csv`` (one row per photo and model), ``summary.csv`` and
``grid.png`` (rows: gray, truth, then each model). With the ``tinct[pretrained]``
extra it adds the semantic measures of ``semantic.py`` (ImageNet top-1 of an
EfficientNet-Lite2 classifier on truth, gray and colorizations; FD-Lite2).
"""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from .color import gray_rgb, rgb_to_lab
from .data import colorfulness, find_images
from .errors import TinctError
from .io import atomic_path, upright
from .metrics import score_rgb
from .pipeline import DEFAULT_RENDER_FACTOR, colorize_luminance, ColorizeOptions
from .report import image_grid
from .semantic import FD_NAME, SEMANTIC_VARIANT, SemanticTally, load_classifier
from .weights import WEIGHTS_DIR, load_model

GRAY_FLOOR = "gray (floor)"
METRICS = ["mae", "rmse", "psnr", "ssim", "auc", "auc_rebal", "colorfulness", "colorfulness_ratio",
           "luminance_drift"]
# top-1 hit (1/0; blank where the photo's ImageNet class is unknown) on this version and on the truth;
# summary: % of the photos with a known class. fd_lite2: against the truths (summary only). Blank when skipped.
SEMANTIC = ["top1", "top1_truth"]


@dataclass
class EvaluateConfig:
    data: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=lambda: ["default"])
    out: str = "report"
    render_factor: int = DEFAULT_RENDER_FACTOR
    limit: int | None = None
    grid_images: int = 8
    grid_tile: int = 160
    min_colorfulness: float = 5.0  # photos below this are already gray and are skipped (as in training)
    semantic: bool = True  # ImageNet top-1 and FD-Lite2 (needs tinct[pretrained]; skipped with a note if absent)


def training_prior() -> np.ndarray:
    """ab histogram (23x23) of the training photos, shipped with the package, for rebalanced AuC."""
    return np.asarray(json.loads((WEIGHTS_DIR / "ab_prior.json").read_text())["hist"], dtype=np.float64)


def load_truth(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(upright(im, str(path)).convert("RGB"), dtype=np.uint8)


def color_truths(files, min_colorfulness: float = EvaluateConfig.min_colorfulness, skipped: list | None = None):
    """``(path, uint8 RGB)`` for each readable photo of ``files`` that has color to score against.

    The others are appended to ``skipped`` (when given) as ``(path, reason)``: a user must be able to see
    why the count of scored photos is not the count of files.
    """
    for path in files:
        try:
            truth = load_truth(path)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            if skipped is not None:
                skipped.append((path, f"unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})"))
            continue
        c = colorfulness(truth)
        if c >= min_colorfulness:  # below: already a gray photo, nothing to score
            yield path, truth
        elif skipped is not None:
            skipped.append((path, f"near-gray (colorfulness {c:.1f} < {min_colorfulness:g}: no color to score)"))


def evaluate(cfg: EvaluateConfig, on_skip=None) -> dict[str, dict[str, float]]:
    """Score every model on ``cfg.data``; ``on_skip(path, reason)`` hears of each file not scored (and why).

    The skipped files are also counted in ``report.md`` and listed in ``skipped.csv``.
    """
    files = find_images(*cfg.data)
    if cfg.limit:
        files = files[:: max(1, len(files) // cfg.limit)][: cfg.limit]
    if not files:
        raise TinctError("no images to evaluate")
    models = {name: load_model(name) for name in cfg.models}
    prior = training_prior()
    opts = ColorizeOptions(render_factor=cfg.render_factor)
    tally, semantic_note = _semantic_tally(cfg)
    rows, grid = [], {GRAY_FLOOR: [], **{m: [] for m in models}}
    grid_truth, grid_gray = [], []
    i = 0
    skipped = _Skipped(on_skip)
    for path, truth in color_truths(tqdm(files, desc="evaluating", unit="img"), cfg.min_colorfulness, skipped):
        i += 1
        true_lab = rgb_to_lab(truth / 255.0)
        L = true_lab[..., 0]
        outputs = {GRAY_FLOOR: gray_rgb(L)}
        for name, model in models.items():
            outputs[name] = colorize_luminance(model, L, opts)
        hits = tally.add(path, {"truth": truth, **outputs}) if tally else {}
        for name, rgb in outputs.items():
            s = score_rgb(rgb, true_lab, truth, prior)
            s["colorfulness_ratio"] = s["colorfulness"] / max(s["colorfulness_true"], 1e-6)
            if tally and not np.isnan(hits[name]):  # unknown class: blank in scores.csv
                s["top1"], s["top1_truth"] = hits[name], hits["truth"]
            rows.append({"image": str(path), "model": name, **s})
            if i <= cfg.grid_images:
                grid[name].append(square_tile(rgb, cfg.grid_tile))
        if i <= cfg.grid_images:
            grid_truth.append(square_tile(truth, cfg.grid_tile))
            grid_gray.append(square_tile(outputs[GRAY_FLOOR], cfg.grid_tile))
    if not rows:
        raise TinctError(f"no color photos to evaluate: all {len(files)} files unreadable or already gray")
    summary = _summarise(rows)
    if tally:
        sem = tally.summary()
        for name, m in summary.items():
            m.update(top1=sem[name]["top1"], top1_truth=sem["truth"]["top1"], top1_images=sem[name]["top1_images"],
                     fd_lite2=sem[name]["fd_lite2"])
    else:
        for m in summary.values():
            m["semantic_note"] = semantic_note
    _write(cfg, rows, summary, [grid_gray, grid_truth] + [grid[m] for m in models], ["gray", "truth", *models])
    _write_skipped(Path(cfg.out), len(files), skipped)
    return summary


def _semantic_tally(cfg: EvaluateConfig) -> tuple[SemanticTally | None, str]:
    """The semantic measures' accumulator, or None and the one line that says why they are skipped."""
    if not cfg.semantic:
        return None, "semantic measures: off"
    try:
        return SemanticTally(load_classifier(SEMANTIC_VARIANT)), ""
    except TinctError as e:  # the extra is optional: the other scores stand without it
        note = f"semantic measures skipped: {e}"
        print(f"tinct: {note}", file=sys.stderr)
        return None, note


class _Skipped(list):
    """``(path, reason)`` pairs; each is passed on to ``on_skip`` as it is found."""

    def __init__(self, on_skip=None):
        super().__init__()
        self.on_skip = on_skip

    def append(self, item):
        super().append(item)
        if self.on_skip is not None:
            self.on_skip(*item)


def skip_counts(skipped) -> str:
    """``"14 near-gray, 1 unreadable"``: the reasons' first words, counted."""
    counts: dict[str, int] = {}
    for _, reason in skipped:
        kind = reason.split(" ", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def _write_skipped(out: Path, n_files: int, skipped) -> None:
    """``skipped.csv`` (path, reason) and a closing section of ``report.md`` with the counts."""
    with atomic_path(out / "skipped.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "reason"])
            w.writerows((str(p), r) for p, r in skipped)
    note = (f"\n## Skipped\n\n{len(skipped)} of {n_files} files were not scored"
            + (f": {skip_counts(skipped)} (each with its reason in `skipped.csv`).\n" if skipped else ".\n"))
    report = out / "report.md"
    with atomic_path(report) as tmp:
        Path(tmp).write_text(report.read_text() + note)


def square_tile(rgb: np.ndarray, tile: int) -> np.ndarray:
    """A ``(tile, tile, 3)`` center-cropped thumbnail for comparison grids."""
    return np.asarray(ImageOps.fit(Image.fromarray(rgb), (tile, tile), Image.Resampling.BICUBIC))


def _summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        means = {k: float(np.nanmean([r[k] for r in mine])) for k in METRICS + ["colorfulness_true"]}
        # the ratio of means is steadier than the mean of per-photo ratios (near-gray truths explode)
        means["colorfulness_ratio"] = means["colorfulness"] / max(means["colorfulness_true"], 1e-6)
        means["images"] = len(mine)
        out[name] = means
    return out


def _write(cfg: EvaluateConfig, rows, summary, grid_rows, grid_labels):
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fields = ["image", "model", *METRICS, "colorfulness_true", *SEMANTIC]
    with atomic_path(out / "scores.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in r.items()})
    with atomic_path(out / "summary.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["model", "images", *METRICS, "top1_images", *SEMANTIC, "fd_lite2"])
            for name, m in summary.items():
                sem = [m.get("top1_images", "")] + [_cell(m.get(k)) for k in [*SEMANTIC, "fd_lite2"]]
                w.writerow([name, m["images"], *[f"{m[k]:.4f}" for k in METRICS], *sem])
    with atomic_path(out / "report.md") as tmp:
        Path(tmp).write_text(markdown_table(summary, cfg))
    if grid_rows[0]:
        image_grid(grid_rows, grid_labels, out / "grid.png")


def _cell(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4f}"


def semantic_table(summary: dict) -> str:
    """The semantic measures as markdown (truth, gray floor, models), or the one line saying why they are absent."""
    first = next(iter(summary.values()))
    if "top1" not in first:
        return first.get("semantic_note", "semantic measures: not computed")
    n = first["top1_images"]

    def pct(v):
        return "n/a" if np.isnan(v) else f"{v:.1f}"
    lines = [f"| truth | {pct(first['top1_truth'])} | 0 |"]
    lines += [f"| {name} | {pct(m['top1'])} | {m['fd_lite2']:.2f} |" for name, m in summary.items()]
    return (f"| version | top-1 % ({n} photos of known class) | {FD_NAME} to truth |\n|---|---|---|\n"
            + "\n".join(lines))


def markdown_table(summary: dict, cfg: EvaluateConfig) -> str:
    head = ("| model | MAE | RMSE | PSNR dB | SSIM | AuC % | AuC rebal. % | colorfulness | ratio to truth "
            "| L drift |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {name} | {m['mae']:.2f} | {m['rmse']:.2f} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['auc']:.2f} "
             f"| {m['auc_rebal']:.2f} | {m['colorfulness']:.1f} | {m['colorfulness_ratio']:.2f} "
             f"| {m['luminance_drift']:.3f} |" for name, m in summary.items()]
    n = next(iter(summary.values()))["images"]
    return (f"# tinct evaluation\n\nData: {', '.join(cfg.data)} ({n} photos), render factor {cfg.render_factor}.\n"
            "Each photo is turned gray (its CIE L), colorized, and compared with the original. "
            "MAE/RMSE on 8-bit RGB; AuC of per-pixel ab error over thresholds 0..150; rebalanced AuC weights "
            "pixels by the inverse training prior of their true color; colorfulness after Hasler & Suesstrunk; "
            "L drift = mean |L_out - L_in|.\n\n" + head + "\n".join(lines) + "\n\n"
            f"## Semantic measures ({SEMANTIC_VARIANT}, ImageNet)\n\n"
            "Top-1 accuracy of an ImageNet classifier tinct's models were not trained against (Zhang et al. 2016's "
            "semantic interpretability test), on the photos whose class is known from a synset id (nXXXXXXXX) in "
            f"their folder or file name. {FD_NAME}: Frechet distance between Gaussians fitted to the classifier's "
            "pooled 1280-d features of the truths and of each version (not FID: the features are Lite2's, not "
            "Inception's). With fewer photos than 1280 the covariances are rank-deficient and the value depends on "
            "the count: compare FD-Lite2 only between runs on the same photos.\n\n"
            + semantic_table(summary) + "\n\n![grid](grid.png)\n")
