"""Choose the default render factor and decoding: score a model on val500 at several working resolutions.

    python bench/render_factor.py [--model default] [--limit 100] [--factors 8 12 16 20 24 32]
                                  [--temperatures T ...] [--corrections C ...] [--out results/render_factor.md]

Scores the photos `tinct evaluate` scores (near-gray truths skipped), the gray floor first. A classification
model runs once per photo and render factor; every (temperature, prior correction) pair is decoded from those
logits, so a decoding sweep costs little more than one run. Prints a markdown table (AuC, rebalanced AuC, PSNR,
colorfulness ratio, ms per photo for network + decoding + recombining) and writes it to --out.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from tqdm import tqdm

from tinct.color import rgb_to_lab
from tinct.data import find_images
from tinct.evaluate import color_truths, gray_rgb, training_prior
from tinct.metrics import mean_scores, score_rgb
from tinct.models.base import Decoding
from tinct.pipeline import recombine, working_luminance
from tinct.weights import load_model

VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "val" / "imagenette-val500"
HEADER = ("| render factor | working side px | temperature | prior correction | AuC % | AuC rebal. % | PSNR dB "
          "| colorfulness ratio | ms/photo |\n|---|---|---|---|---|---|---|---|---|")


def row(label: str, m: dict, ms: str = "") -> str:
    return (f"| {label} | {m['auc']:.2f} | {m['auc_rebal']:.2f} | {m['psnr']:.2f} "
            f"| {m['colorfulness'] / m['colorfulness_true']:.2f} | {ms} |")


@torch.no_grad()
def sweep_factor(model, photos, rf: int, decodings: list[tuple[float, float]], prior) -> list[str]:
    """Rows for one render factor: the network once per photo, then each (T, correction) decoded from its output."""
    scores = {d: [] for d in decodings}
    seconds = 0.0
    classifier = getattr(model.config, "head", None) == "classification"
    for lab, truth in tqdm(photos, desc=f"render factor {rf}", leave=False):
        L = lab[..., 0]
        t0 = time.perf_counter()
        L_small = working_luminance(L, rf, model.stride)
        out = model(L_small)
        for i, (T, c) in enumerate(decodings):
            if classifier:
                ab = model.decode(out["logits"], L_small.shape[-2:], Decoding(T, c))
            else:
                ab = out["ab"]
            rgb = recombine(L, ab)
            if i == 0:
                seconds += time.perf_counter() - t0
            scores[(T, c)].append(score_rgb(rgb, lab, truth, prior))
    ms = f"{seconds / len(photos) * 1000:.0f}"
    return [row(f"{rf} | {rf * 16} | {T} | {c}", mean_scores(scores[(T, c)]), ms) for T, c in decodings]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=str(VAL))
    ap.add_argument("--limit", type=int, default=100, help="an even sample of this many files (0: all)")
    ap.add_argument("--factors", type=int, nargs="+", default=[8, 12, 16, 20, 24, 32])
    ap.add_argument("--temperatures", type=float, nargs="+", default=None,
                    help="annealed-mean temperatures to sweep too (classification models)")
    ap.add_argument("--corrections", type=float, nargs="+", default=None,
                    help="prior corrections to sweep too (classification models)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "render_factor.md"))
    args = ap.parse_args()
    model = load_model(args.model).eval()
    files = find_images(args.data)
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)][: args.limit]
    photos = [(rgb_to_lab(truth / 255.0), truth) for _, truth in color_truths(files)]
    prior = training_prior()
    temps = args.temperatures or [model.config.temperature]
    corrections = args.corrections or [getattr(model.config, "prior_correction", 0.0)]
    decodings = [(T, c) for T in temps for c in corrections]
    floor = [score_rgb(gray_rgb(lab[..., 0]), lab, truth, prior) for lab, truth in photos]
    rows = [row("gray floor | | | ", mean_scores(floor))]
    for rf in args.factors:
        rows += sweep_factor(model, photos, rf, decodings, prior)
    table = HEADER + "\n" + "\n".join(rows)
    command = " ".join(["python bench/render_factor.py", f"--model {args.model}", f"--limit {args.limit}",
                        "--factors", *map(str, args.factors)]
                       + (["--temperatures", *map(str, args.temperatures)] if args.temperatures else [])
                       + (["--corrections", *map(str, args.corrections)] if args.corrections else []))
    text = (f"# Render factor and decoding sweep\n\nModel `{args.model}`, {len(photos)} color photos of {args.data} "
            f"(an even sample of {len(files)} files; near-gray truths skipped as `tinct evaluate` does), "
            f"measured {time.strftime('%Y-%m-%d')}, command: `{command}`.\n\n{table}\n")
    print(table)
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
