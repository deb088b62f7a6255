"""The per-photo quality gate of ``tests/test_quality.py``, for any model file and decoding, as a table.

Every candidate default is checked here before it can ship: the test pins only the shipped file, and the
coffee photo's margin has decided more candidates than val500 has. Margins are the model's score minus the
gray floor's on the same photo (AuC / rebalanced AuC in points); the gate wants every photo >= +0.5 / +1.0
and the means >= +2.0 / +3.0, and a mean colorfulness ratio >= 0.3.

    python bench/quality_gate.py --model default --model runs/x/model.safetensors --decode 0.35,0.38 --decode 0.35,0.40
"""
from __future__ import annotations

import argparse

import numpy as np
import skimage.data

from tinct.color import rgb_to_lab
from tinct.evaluate import gray_rgb, training_prior
from tinct.metrics import score_rgb
from tinct.pipeline import ColorizeOptions, colorize_luminance, decoding_for
from tinct.weights import load_model

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="a model name or file (repeat)")
    ap.add_argument("--decode", action="append", default=[],
                    help="TEMPERATURE,PRIOR_CORRECTION (repeat); default: the file's own")
    args = ap.parse_args()
    prior = training_prior()
    truths = {name: getattr(skimage.data, name)() for name in PHOTOS}
    labs = {name: rgb_to_lab(rgb / 255.0) for name, rgb in truths.items()}
    floors = {name: score_rgb(gray_rgb(labs[name][..., 0]), labs[name], truths[name], prior) for name in PHOTOS}
    decodes = [tuple(float(v) for v in d.split(",")) for d in args.decode] or [None]
    print("| model | T, correction | " + " | ".join(PHOTOS) + " | mean | colorfulness ratio | gate |")
    print("|---" * (len(PHOTOS) + 5) + "|")
    for spec in args.model:
        model = load_model(spec)
        for decode in decodes:
            options = ColorizeOptions(decoding=None if decode is None else decoding_for(model, *decode))
            auc, rebal, ratio = {}, {}, {}
            for name in PHOTOS:
                lab = labs[name]
                s = score_rgb(colorize_luminance(model, lab[..., 0], options), lab, truths[name], prior)
                auc[name] = s["auc"] - floors[name]["auc"]
                rebal[name] = s["auc_rebal"] - floors[name]["auc_rebal"]
                ratio[name] = s["colorfulness"] / s["colorfulness_true"]
            passes = (min(auc.values()) >= 0.5 and min(rebal.values()) >= 1.0 and np.mean(list(auc.values())) >= 2.0
                      and np.mean(list(rebal.values())) >= 3.0 and np.mean(list(ratio.values())) >= 0.3)
            cells = [f"{auc[n]:+.2f} / {rebal[n]:+.2f}" for n in PHOTOS]
            mean = f"{np.mean(list(auc.values())):+.2f} / {np.mean(list(rebal.values())):+.2f}"
            label = "file's own" if decode is None else f"{decode[0]:g}, {decode[1]:g}"
            print(f"| {spec} | {label} | " + " | ".join(cells)
                  + f" | {mean} | {np.mean(list(ratio.values())):.2f} | {'pass' if passes else 'FAIL'} |")


if __name__ == "__main__":
    main()
