"""Choose the default render factor: score a model on val500 at several working resolutions.

    python bench/render_factor.py [--model default] [--limit 100] [--factors 8 12 16 20 24 32]

Prints a markdown table (AuC, rebalanced AuC, PSNR, colorfulness ratio, ms per photo) and writes it to
bench/results/render_factor.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinct.color import rgb_to_lab
from tinct.data import find_images
from tinct.evaluate import load_truth, training_prior
from tinct.metrics import score_image
from tinct.pipeline import ColorizeOptions, colorize_luminance
from tinct.weights import load_model

VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "val" / "imagenette-val500"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=str(VAL))
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--factors", type=int, nargs="+", default=[8, 12, 16, 20, 24, 32])
    ap.add_argument("--temperatures", type=float, nargs="+", default=None,
                    help="annealed-mean temperatures to sweep too (classification models)")
    ap.add_argument("--corrections", type=float, nargs="+", default=None,
                    help="prior corrections to sweep too (classification models)")
    args = ap.parse_args()
    model = load_model(args.model)
    files = find_images(args.data)
    files = files[:: max(1, len(files) // args.limit)][: args.limit]
    truths = [load_truth(f) for f in files]
    prior = training_prior()
    rows = []
    temps = args.temperatures or [model.config.temperature]
    corrections = args.corrections or [getattr(model.config, "prior_correction", 0.0)]
    for rf, T, c in [(rf, T, c) for rf in args.factors for T in temps for c in corrections]:
        model.config.temperature = T
        model.config.prior_correction = c
        scores, t0 = [], time.perf_counter()
        for truth in tqdm(truths, desc=f"render factor {rf}, T {T}", leave=False):
            lab = rgb_to_lab(truth / 255.0)
            rgb = colorize_luminance(model, lab[..., 0], ColorizeOptions(render_factor=rf))
            scores.append(score_image(rgb_to_lab(rgb / 255.0), lab, rgb, truth, lab[..., 0], prior))
        ms = (time.perf_counter() - t0) / len(truths) * 1000
        m = {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}
        rows.append(f"| {rf} | {rf * 16} | {T} | {c} | {m['auc']:.2f} | {m['auc_rebal']:.2f} | {m['psnr']:.2f} "
                    f"| {m['colorfulness'] / m['colorfulness_true']:.2f} | {ms:.0f} |")
    table = ("| render factor | working side px | temperature | prior correction | AuC % | AuC rebal. % | PSNR dB | colorfulness ratio | ms/photo "
             "(incl. scoring) |\n|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    text = (f"# Render factor sweep\n\nModel `{args.model}`, {len(files)} photos of {args.data} (an even sample), "
            f"command: `python bench/render_factor.py --model {args.model} --limit {args.limit}`.\n\n{table}\n")
    print(table)
    out = Path(__file__).parent / "results" / "render_factor.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
