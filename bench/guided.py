"""Guided and classical colorization on val500, with user strokes simulated from the truth.

    nice -n 19 python3 bench/guided.py [--photos 50] [--strokes 0 5 20 100] [--accept 12]
                                       [--model default] [--levin-4mp] [--note "..."]

For an even sample of ``--photos`` photos of val500 (every k-th file): the photo
is turned gray (its CIE L); ``n`` short strokes (random walks of 8..24 px,
3 px wide) carry the truth's colors under them, written as an RGBA hints PNG
and read back with ``tinct.hints.load_hints`` (the CLI's path). Scored:
automatic (the deep model, no hints), the deep model with the hints, Levin et
al. with the hints, Reinhard transfer and Welsh with a reference photo (the
next color photo of the same class in val500, never the photo itself), and
Deep Colorization (Cheng et al.), and the deep model with a palette (6 k-means colors of the truth, or of the
reference). AuC (ab error, thresholds 0..150) and PSNR
(8-bit RGB) per photo, averaged; colorfulness against the truth's.
``--accept 12``: the acceptance row (12 strokes). ``--levin-4mp`` times Levin
on a 4-megapixel photo (a val500 photo upscaled to 2000x2000, 12 strokes).
Writes ``bench/results/guided.md`` and ``bench/results/guided_grid.png``.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tinct.color import gray_rgb, rgb_to_lab  # noqa: E402
from tinct.data import colorfulness, find_images  # noqa: E402
from tinct.evaluate import load_truth, square_tile  # noqa: E402
from tinct.guided.colorize import GuidedOptions, guided_ab  # noqa: E402
from tinct.guided.levin import solve_levin  # noqa: E402
from tinct.guided.palette import palette_from_lab  # noqa: E402
from tinct.hints import Hints, load_hints, save_hints_png  # noqa: E402
from tinct.io import atomic_path  # noqa: E402
from tinct.metrics import ab_error, auc, psnr  # noqa: E402
from tinct.pipeline import ColorizeOptions, recombine, working_size  # noqa: E402
from tinct.report import image_grid  # noqa: E402
from tinct.weights import load_model, resolve_model_path  # noqa: E402

VAL = ROOT.parent / "shared" / "data" / "val" / "imagenette-val500"
OUT = ROOT / "bench" / "results"
TILE = 128  # grid thumbnail side, px


def simulate_strokes(shape: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` short strokes: random walks of 8..24 px with a 3 px brush -> mask ``(H, W)`` bool."""
    H, W = shape
    mask = np.zeros((H, W), bool)
    for _ in range(n):
        y, x = rng.uniform(0, H), rng.uniform(0, W)
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(8, 25))):
            yi, xi = int(y), int(x)
            mask[max(0, yi - 1):yi + 2, max(0, xi - 1):xi + 2] = True
            angle += rng.normal(0, 0.3)
            y = min(max(y + math.sin(angle), 0), H - 1)
            x = min(max(x + math.cos(angle), 0), W - 1)
    return mask


def is_color(rgb: np.ndarray) -> bool:
    return colorfulness(rgb) >= 5.0


def reference_for(path: Path, files_by_class: dict) -> Path:
    """The next color photo of the same class (wrapping), never ``path`` itself."""
    same = files_by_class[path.parent]
    i = same.index(path)
    for k in range(1, len(same)):
        cand = same[(i + k) % len(same)]
        if is_color(load_truth(cand)):
            return cand
    raise SystemExit(f"no color reference for {path}")


def score(ab: torch.Tensor, L: np.ndarray, truth: np.ndarray, true_lab: np.ndarray) -> tuple[dict, np.ndarray]:
    rgb = recombine(L, ab)
    lab = rgb_to_lab(rgb / 255.0)
    return {"auc": auc(ab_error(lab, true_lab)), "psnr": psnr(rgb, truth), "cf": colorfulness(rgb)}, rgb


def run(args) -> str:
    torch.set_num_threads(1)
    files = find_images(VAL)
    files_by_class: dict = {}
    for f in files:
        files_by_class.setdefault(f.parent, []).append(f)
    sample = files[:: max(1, len(files) // args.photos)][: args.photos]
    model = load_model(args.model)
    opts = ColorizeOptions()
    counts = sorted(set(args.strokes) | {args.accept})
    rows: dict[str, list[dict]] = {}
    seconds: dict[str, list[float]] = {}
    grid: dict[str, list[np.ndarray]] = {}
    grid_n = 20 if 20 in counts else counts[-1]
    tmp = Path(tempfile.mkdtemp(prefix="tinct-guided-bench-"))
    rng = np.random.default_rng(args.seed)

    def add(name, s, t, rgb, i):
        rows.setdefault(name, []).append(s)
        seconds.setdefault(name, []).append(t)
        if i < args.grid:
            grid.setdefault(name, []).append(square_tile(rgb, TILE))

    used = 0
    step = max(1, args.photos // args.grid)  # grid photos spread over the classes
    for i, path in enumerate(sample):
        truth = load_truth(path)
        if not is_color(truth):
            continue  # a gray truth has no colors to give or score
        true_lab = rgb_to_lab(truth / 255.0)
        L = true_lab[..., 0]
        ref_lab = rgb_to_lab(load_truth(reference_for(path, files_by_class)) / 255.0)
        shown = used % step == 0 and len(grid.get("truth", [])) < args.grid
        g_i = len(grid.get("truth", [])) if shown else args.grid  # index in the grid, or past its end
        used += 1
        if shown:
            grid.setdefault("gray", []).append(square_tile(gray_rgb(L), TILE))
            grid.setdefault("truth", []).append(square_tile(truth, TILE))
        for name, g in (("automatic", GuidedOptions()), ("transfer", GuidedOptions(method="transfer")),
                        ("welsh", GuidedOptions(method="welsh")),
                        ("deep-colorization", GuidedOptions(method="deep-colorization"))):
            t = time.perf_counter()
            ab = guided_ab(L, g, model, opts, reference_lab=ref_lab)
            t = time.perf_counter() - t
            s, rgb = score(ab, L, truth, true_lab)
            s["cf_true"] = colorfulness(truth)
            add(name, s, t, rgb, g_i)
        for name, lab in (("palette (truth)", true_lab), ("palette (reference)", ref_lab)):
            t = time.perf_counter()
            ab = guided_ab(L, GuidedOptions(), model, opts, palette=palette_from_lab(lab, 6))
            t = time.perf_counter() - t
            s, rgb = score(ab, L, truth, true_lab)
            s["cf_true"] = colorfulness(truth)
            add(name, s, t, rgb, g_i)
        for n in counts:
            mask = simulate_strokes(L.shape, n, rng)
            if n == 0:
                continue  # 0 strokes: the deep model is "automatic"; Levin has nothing to spread (gray)
            hint_file = tmp / f"{i}_{n}.png"
            save_hints_png(truth, mask, hint_file)
            hints = load_hints(hint_file, L.shape)
            if g_i < args.grid and n == grid_n:
                strokes = gray_rgb(L).copy()
                strokes[mask] = truth[mask]
                grid.setdefault(f"{n} strokes", []).append(square_tile(strokes, TILE))
            for name, g in ((f"deep+hints {n}", GuidedOptions()), (f"levin {n}", GuidedOptions(method="levin"))):
                t = time.perf_counter()
                ab = guided_ab(L, g, model, opts, hints=hints)
                t = time.perf_counter() - t
                s, rgb = score(ab, L, truth, true_lab)
                add(name, s, t, rgb, g_i if n == grid_n else args.grid)
        print(f"{used} photos done ({path.name})", file=sys.stderr, flush=True)
    return report(args, rows, seconds, grid, counts, used, grid_n)


def mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def report(args, rows, seconds, grid, counts, used, grid_n) -> str:
    auto = rows["automatic"]
    lines = ["# Guided colorization on val500\n",
             f"{used} color photos of val500 (an even sample of {args.photos}; gray truths skipped), "
             f"model `{args.model}` ({resolve_model_path(args.model).name}, header steps "
             f"{getattr(load_model(args.model), 'meta', {}).get('steps', '?')}), render factor "
             f"{ColorizeOptions().render_factor} (on val500's 224x224 photos the network works at "
             f"{'x'.join(map(str, working_size(224, 224, ColorizeOptions().render_factor, load_model(args.model).stride)))}"
             "). Strokes: random walks of 8..24 px with a 3 px brush, colored with the truth under them, "
             "written as RGBA hints PNGs and read back. AuC: % of pixels within each ab error threshold 0..150, "
             "averaged. Seconds: wall time per photo for the chroma (not recombine), on "
             f"{platform.node() or 'this machine'} ({os.cpu_count()} CPUs, torch 1 thread).\n"]
    if args.note:
        lines.append(args.note + "\n")
    lines.append("## AuC % / PSNR dB by number of strokes\n")
    head = "| method | " + " | ".join(f"{n} strokes" for n in counts) + " |"
    lines += [head, "|---|" + "---|" * len(counts)]
    auto_cell = f"{mean(auto, 'auc'):.2f} / {mean(auto, 'psnr'):.2f}"
    cells = []
    for n in counts:
        cells.append(auto_cell if n == 0 else f"{mean(rows[f'deep+hints {n}'], 'auc'):.2f} / "
                                              f"{mean(rows[f'deep+hints {n}'], 'psnr'):.2f}")
    lines.append("| deep model + hints (0 = automatic) | " + " | ".join(cells) + " |")
    cells = ["gray (no hints)" if n == 0 else f"{mean(rows[f'levin {n}'], 'auc'):.2f} / "
             f"{mean(rows[f'levin {n}'], 'psnr'):.2f}" for n in counts]
    lines.append("| levin | " + " | ".join(cells) + " |")
    lines.append("\nMethods that take no strokes (colorfulness: Hasler & Suesstrunk; ratio: mean over mean of the "
                 "truths). Transfer and welsh take the colors of the reference photo; palette = the deep model "
                 "with the 6 k-means chroma clusters of the truth (an oracle: a user who knows the colors) or of "
                 "the reference photo:\n")
    lines += ["| method | AuC % | PSNR dB | colorfulness | ratio to truth | s / photo |", "|---|---|---|---|---|---|"]
    for name in ("automatic", "transfer", "welsh", "deep-colorization", "palette (truth)", "palette (reference)"):
        r = rows[name]
        ratio = mean(r, "cf") / mean(r, "cf_true")
        lines.append(f"| {name} | {mean(r, 'auc'):.2f} | {mean(r, 'psnr'):.2f} | {mean(r, 'cf'):.1f} | {ratio:.2f} "
                     f"| {np.mean(seconds[name]):.2f} |")
    n = args.accept
    a_auto, a_deep, a_lev = mean(auto, "auc"), mean(rows[f"deep+hints {n}"], "auc"), mean(rows[f"levin {n}"], "auc")
    t_ratio = mean(rows["transfer"], "cf") / mean(rows["transfer"], "cf_true")
    lines += [f"\n## Acceptance ({n} strokes per photo)\n",
              f"- deep model + hints: AuC {a_deep:.2f} vs automatic {a_auto:.2f} ({a_deep - a_auto:+.2f}; "
              f"needs >= +1): {'pass' if a_deep - a_auto >= 1 else 'FAIL'}",
              f"- levin: AuC {a_lev:.2f} vs automatic {a_auto:.2f} ({a_lev - a_auto:+.2f}; needs >= +1): "
              f"{'pass' if a_lev - a_auto >= 1 else 'FAIL'}",
              f"- transfer colorfulness: {t_ratio:.2f} x the truth's (needs >= 0.3): "
              f"{'pass' if t_ratio >= 0.3 else 'FAIL'}",
              f"- mean seconds per photo: levin {np.mean(seconds[f'levin {n}']):.2f}, deep+hints "
              f"{np.mean(seconds[f'deep+hints {n}']):.2f}"]
    if args.levin_4mp:
        lines += ["\n## Levin on a 4-megapixel photo\n", levin_4mp()]
    order = ["gray", "truth", f"{grid_n} strokes", "automatic", f"deep+hints {grid_n}", f"levin {grid_n}",
             "transfer", "welsh", "deep-colorization"]
    order = [k for k in order if k in grid]
    grid_path = Path(args.out).with_name(Path(args.out).stem + "_grid.png")
    image_grid([grid[k] for k in order], [k.replace("deep+hints", "deep+h") for k in order], grid_path)
    lines.append(f"\n![grid]({grid_path.name})\n\nRows: {', '.join(order)}.\n")
    return "\n".join(lines)


def levin_4mp() -> str:
    path = find_images(VAL)[0]
    big = np.asarray(Image.fromarray(load_truth(path)).resize((2000, 2000), Image.Resampling.BICUBIC))
    lab = rgb_to_lab(big / 255.0)
    L = lab[..., 0]
    mask = simulate_strokes(L.shape, 12, np.random.default_rng(0))
    hints = Hints(np.where(mask[..., None], lab[..., 1:], 0).astype(np.float32), mask)
    wall, cpu = time.perf_counter(), time.process_time()
    ab = solve_levin(L, hints)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    t = time.perf_counter()
    recombine(L, torch.from_numpy(ab.transpose(2, 0, 1).copy())[None])
    rec = time.perf_counter() - t
    return (f"{path.name} upscaled to 2000x2000 (4.0 MP), 12 strokes: solve {wall:.1f} s wall, {cpu:.1f} s CPU "
            f"(one process on {os.cpu_count()} CPUs; see the note above for what else ran); "
            f"recombine to RGB {rec:.1f} s more.")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photos", type=int, default=50)
    p.add_argument("--strokes", type=int, nargs="+", default=[0, 5, 20, 100])
    p.add_argument("--accept", type=int, default=12)
    p.add_argument("--model", default="default")
    p.add_argument("--grid", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--levin-4mp", action="store_true")
    p.add_argument("--note", default="")
    p.add_argument("--out", default=str(OUT / "guided.md"))
    args = p.parse_args()
    text = run(args)
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
