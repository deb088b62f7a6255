"""The per-photo quality gate of ``tests/test_quality.py``, for any model file and decoding, as a table.

Every candidate default is checked here before it can ship: the test pins only the shipped file, and the
coffee photo's margin has decided more candidates than val500 has. Margins are the model's score minus the
gray floor's on the same photo (AuC / rebalanced AuC in points); the photos, the scoring and the floors the gate
wants are the test's own (imported from it, so the two cannot drift apart).

    python bench/quality_gate.py --model default --model runs/x/model.safetensors --decode 0.35,0.38 --decode 0.35,0.40
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_quality import (MIN_AUC_MARGIN, MIN_COLORFULNESS_RATIO, MIN_MEAN_AUC_MARGIN,  # noqa: E402
                          MIN_MEAN_REBALANCED_MARGIN, MIN_REBALANCED_MARGIN, PHOTOS, photo_scores)

from tinct.evaluate import training_prior  # noqa: E402
from tinct.pipeline import ColorizeOptions, decoding_for  # noqa: E402
from tinct.weights import load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="a model name or file (repeat)")
    ap.add_argument("--decode", action="append", default=[],
                    help="TEMPERATURE,PRIOR_CORRECTION (repeat); default: the file's own")
    args = ap.parse_args()
    prior = training_prior()
    decodes = [tuple(float(v) for v in d.split(",")) for d in args.decode] or [None]
    print("| model | T, correction | " + " | ".join(PHOTOS) + " | mean | colorfulness ratio | gate |")
    print("|---" * (len(PHOTOS) + 5) + "|")
    for spec in args.model:
        model = load_model(spec)
        for decode in decodes:
            options = ColorizeOptions(decoding=None if decode is None else decoding_for(model, *decode))
            scores = photo_scores(model, options, prior)
            auc = {n: m["auc"] - g["auc"] for n, (m, g) in scores.items()}
            rebal = {n: m["auc_rebal"] - g["auc_rebal"] for n, (m, g) in scores.items()}
            ratio = np.mean([m["colorfulness"] / m["colorfulness_true"] for m, _ in scores.values()])
            mean_auc, mean_rebal = np.mean(list(auc.values())), np.mean(list(rebal.values()))
            passes = (min(auc.values()) >= MIN_AUC_MARGIN and min(rebal.values()) >= MIN_REBALANCED_MARGIN
                      and mean_auc >= MIN_MEAN_AUC_MARGIN and mean_rebal >= MIN_MEAN_REBALANCED_MARGIN
                      and ratio >= MIN_COLORFULNESS_RATIO)
            cells = [f"{auc[n]:+.2f} / {rebal[n]:+.2f}" for n in PHOTOS]
            label = "file's own" if decode is None else f"{decode[0]:g}, {decode[1]:g}"
            print(f"| {spec} | {label} | " + " | ".join(cells)
                  + f" | {mean_auc:+.2f} / {mean_rebal:+.2f} | {ratio:.2f} | {'pass' if passes else 'FAIL'} |")


if __name__ == "__main__":
    main()
