"""Colorizing old, damaged scans: val500 photos colorized from their clean gray and from the same gray aged like
an old print, scored against the clean photo's colors, in one table.

    python bench/damaged.py --model default --model runs/x/model.safetensors [--limit 200] [--seed 0]
                            [--decode T,C] [--mix realistic|aged] [--grid bench/results/damaged_grid.jpg]

The aging is ``restore/degrade.py``'s realistic mix (fading, vignetting, scratches, dust, cracks, blur, grain, JPEG;
``--mix aged``: with stains and craquelure too, ``degrade.MIXES``), seeded per photo, so every model sees the
same damage. Columns, for the clean and the damaged input:

- AuC and rebalanced AuC of the ab error against the clean truth (Zhang et al.; as ``tinct evaluate``);
- colorfulness ratio (mean output colorfulness / mean truth colorfulness, as ``tinct evaluate``);
- false chroma: mean chroma (sqrt(a^2 + b^2), Lab units) of the output where the truth is nearly neutral
  (chroma < 5): gray walls, backdrops and suits painted with a color they do not have. Lower is better; the gray
  floor has 0.

On historical portraits the failure users see is false color on damage: a scratch or a stain read as an object
with a color of its own. The damaged columns measure it on photos whose true colors are known.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinct.color import gray_rgb, rgb_to_lab
from tinct.data import colorfulness, find_images
from tinct.evaluate import GRAY_FLOOR, color_truths, square_tile, training_prior
from tinct.metrics import ab_error, auc, rebalance_pixel_weights
from tinct.pipeline import ColorizeOptions, colorize_luminance, decoding_for
from tinct.report import image_grid
from tinct.restore.degrade import MIXES, degrade
from tinct.weights import load_model

VAL500 = Path(__file__).resolve().parents[2] / "shared" / "data" / "val" / "imagenette-val500"
NEUTRAL_CHROMA = 5.0
COLUMNS = ("auc", "auc_rebal", "colorfulness_ratio", "false_chroma")


@dataclass
class Truth:
    """What every output of one photo is scored against, computed once per photo."""
    lab: np.ndarray          # (H, W, 3) float Lab of the clean photo
    weights: np.ndarray      # (H, W) rebalancing weight of each pixel's true color
    neutral: np.ndarray      # (H, W) bool, true chroma < NEUTRAL_CHROMA
    colorfulness: float

    @classmethod
    def of(cls, rgb: np.ndarray, prior: np.ndarray) -> "Truth":
        lab = rgb_to_lab(rgb / 255.0)
        return cls(lab, rebalance_pixel_weights(lab, prior), np.hypot(lab[..., 1], lab[..., 2]) < NEUTRAL_CHROMA,
                   colorfulness(rgb))


def scores(rgb: np.ndarray, truth: Truth) -> dict[str, float]:
    """Colors of output ``rgb`` (uint8 ``(H, W, 3)``) against the clean truth; L differences are not scored."""
    lab = rgb_to_lab(rgb / 255.0)
    err = ab_error(lab, truth.lab)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return {"auc": auc(err), "auc_rebal": auc(err, truth.weights),
            "colorfulness": colorfulness(rgb), "colorfulness_true": truth.colorfulness,
            "false_chroma": float(chroma[truth.neutral].mean()) if truth.neutral.any() else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="a model name or file (repeat)")
    ap.add_argument("--label", action="append", default=None, help="a row label for each --model")
    ap.add_argument("--decode", action="append", default=None,
                    help="TEMPERATURE,PRIOR_CORRECTION for each --model in turn; default: each file's own")
    ap.add_argument("--data", default=str(VAL500))
    ap.add_argument("--limit", type=int, default=200, help="an even sample of this many files")
    ap.add_argument("--seed", type=int, default=0, help="seeds the damage (photo i gets seed + i)")
    ap.add_argument("--mix", choices=tuple(MIXES), default="realistic",
                    help="the damage: tinct restore's realistic mix, or with stains and craquelure too")
    ap.add_argument("--restore", action="store_true",
                    help="also colorize each input after the shipped restoration (a row 'MODEL + restore' each)")
    ap.add_argument("--grid", default=None, help="also write a JPEG grid of the first 6 photos here")
    args = ap.parse_args()
    labels = args.label or args.model
    decodes = args.decode or [None] * len(args.model)
    if len(labels) != len(args.model) or len(decodes) != len(args.model):
        ap.error("give --label and --decode once per --model, or not at all")
    models = {}
    for label, spec, decode in zip(labels, args.model, decodes):
        model = load_model(spec)
        options = ColorizeOptions(decoding=None if decode is None else
                                  decoding_for(model, *(float(v) for v in decode.split(","))))
        models[label] = (model, options)
    restorer = None
    if args.restore:
        from tinct.restore.run import load_restorer, restore_luminance
        restorer = load_restorer()
    files = find_images(args.data)
    files = files[:: max(1, len(files) // args.limit)][: args.limit]
    prior = training_prior()
    names = [GRAY_FLOOR, *models, *([f"{m} + restore" for m in models] if restorer else [])]
    rows = {name: {"clean": [], "damaged": []} for name in names}
    grid = []
    for i, (path, truth) in enumerate(color_truths(tqdm(files, desc="colorizing", unit="photo"))):
        scored = Truth.of(truth, prior)
        clean_L = scored.lab[..., 0].astype(np.float32)
        aged_L = degrade(clean_L, np.random.default_rng(args.seed + i), MIXES[args.mix]).L
        tiles = [square_tile(truth, 160)]
        for kind, L in (("clean", clean_L), ("damaged", aged_L)):
            outputs = {GRAY_FLOOR: gray_rgb(L)}
            outputs.update({name: colorize_luminance(m, L, o) for name, (m, o) in models.items()})
            if restorer is not None:
                restored_L = restore_luminance(L, net=restorer)[0]
                outputs.update({f"{name} + restore": colorize_luminance(m, restored_L, o)
                                for name, (m, o) in models.items()})
            for name, rgb in outputs.items():
                rows[name][kind].append(scores(rgb, scored))
            if kind == "damaged":
                tiles += [square_tile(rgb, 160) for rgb in outputs.values()]
        if len(grid) < 6:
            grid.append(tiles)
    print(f"{len(rows[GRAY_FLOOR]['clean'])} color photos of {args.data}, damage seed {args.seed}")
    head = " | ".join(f"{kind} {c}" for kind in ("clean", "damaged") for c in COLUMNS)
    print(f"| model | {head} |\n" + "|---" * (1 + 2 * len(COLUMNS)) + "|")
    for name, by_kind in rows.items():
        cells = []
        for kind in ("clean", "damaged"):
            mean = {k: float(np.nanmean([s[k] for s in by_kind[kind]])) for k in by_kind[kind][0]}
            mean["colorfulness_ratio"] = mean["colorfulness"] / max(mean["colorfulness_true"], 1e-6)
            cells += [f"{mean[c]:.3f}" if c == "colorfulness_ratio" else f"{mean[c]:.2f}" for c in COLUMNS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.grid:
        # image_grid's rows are labelled: one row per kind of tile (truth, damaged gray, each model), a photo a column
        image_grid([list(tiles) for tiles in zip(*grid)], ["truth", "gray, damaged", *names[1:]], args.grid)
        print(f"grid: {args.grid}")


if __name__ == "__main__":
    main()
