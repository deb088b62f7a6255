"""The model zoo under one budget: train every family the same way, score them on val500, write a table and a grid.

    nice -n 19 python3 bench/models.py --steps 3000 --batch 16 --size 128 [--limit 500] [--threads 2]
    nice -n 19 python3 bench/models.py --steps 3 --batch 2 --size 64 --limit 8    # smoke test

Budget: every family sees exactly ``steps x batch`` random crops of ``size`` px
from ../shared/data/train (same photos, same crops, same seed, same cache as
the shipped default's run), with the learning rate its paper used (Adam 1e-3;
the GANs 2e-4, beta1 0.5). Each family is scored on val500 through the real
pipeline, as ``tinct evaluate`` does, at the scale it was trained at (render
factor = size / 16, so the working size equals the training crop size; a
family trained on 64 px crops and run at 256 px meets objects 4x larger than
it ever saw, which some families survive and others do not: ``--render-factor
16`` measures that).

Columns: params (the generator only: what runs at inference), train img/s (the
training loop alone, without caching, validation or plots), infer ms (one
512x512 forward pass, median of 3, on ``--threads`` threads), AuC and
rebalanced AuC (%), PSNR (dB), SSIM, colorfulness ratio (mean colorfulness of
outputs over that of the truths), and for noisy models the diversity: mean
pairwise ab distance between 3 samples (Lab units, at working size).

Writes bench/results/models.md, models.csv and models_grid.png (rows: gray,
truth, each family). Runs go to --runs (default runs/bench-models, one folder
per budget); a finished run is reused and an interrupted one resumed, so the
script can be restarted.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tinct.color import gray_rgb, rgb_to_lab
from tinct.data import find_images
from tinct.evaluate import GRAY_FLOOR, color_truths, square_tile, training_prior
from tinct.metrics import mean_scores, score_rgb
from tinct.pipeline import ColorizeOptions, colorize_luminance
from tinct.report import image_grid
from tinct.sampling import mean_pairwise_distance, sample_ab
from tinct.train import TrainConfig, Trainer
from tinct.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TRAIN = DATA / "train"
VAL = DATA / "val" / "imagenette-val500"


@dataclass
class Family:
    label: str
    model: str
    options: dict = field(default_factory=dict)
    schedule: str = "standard"
    lr: float = 1e-3


FAMILIES = [
    Family("cnn", "cnn"),
    Family("autoencoder", "autoencoder"),
    Family("unet", "unet"),
    Family("unet-cls", "unet", {"head": "classification"}),  # the shipped default's configuration
    Family("encdec-resnet", "encoder-decoder", {"backbone": "resnet"}),
    Family("encdec-xception", "encoder-decoder", {"backbone": "xception"}),
    Family("classifier", "classifier"),
    Family("pix2pix", "pix2pix", lr=2e-4),
    Family("pix2pix-nogan", "pix2pix", {"self_attention": True, "spectral_norm": True}, "nogan", lr=2e-4),
    Family("dcgan", "dcgan", lr=2e-4),
    Family("dcgan-survey", "dcgan", {"noise": "input", "diversity_weight": 0.0}, lr=2e-4),
]


def train_family(fam: Family, args) -> tuple[Path, float]:
    """Train (or reuse / resume) one family's run; returns its model file and the loop's img/s."""
    out = Path(args.runs) / f"s{args.steps}_b{args.batch}_p{args.size}" / fam.label  # one folder per budget
    record = out / "bench.json"
    budget = {"steps": args.steps, "batch": args.batch, "size": args.size}
    recipe = {"model": fam.model, "options": fam.options, "schedule": fam.schedule, "lr": fam.lr}
    if record.exists():  # finished before with the same recipe: reuse (delete the folder after code changes)
        rec = json.loads(record.read_text())
        if rec["budget"] == budget and rec.get("recipe") == recipe:
            return out / "model.safetensors", rec["train_img_s"]
        raise SystemExit(f"{out} holds a run of another recipe or budget; remove it or pick another --runs")
    cfg = TrainConfig(model=fam.model, model_options=dict(fam.options), data=[str(TRAIN)], val=str(VAL), out=str(out),
                      steps=args.steps, size=args.size, batch=args.batch, lr=fam.lr, warmup=min(200, args.steps // 10),
                      val_every=args.steps, checkpoint_every=max(1, min(250, args.steps)), val_images=100,
                      cache_size=160, min_colorfulness=10.0, threads=args.threads, schedule=fam.schedule,
                      resume=(out / "checkpoint.safetensors").exists(), seed=0)
    trainer = Trainer(cfg)
    start_step = trainer.step
    overhead = [0.0]

    def timed(fn):
        def run(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                overhead[0] += time.perf_counter() - t
        return run
    for name in ("validate", "save", "plot"):  # the loop alone is what train img/s measures
        setattr(trainer, name, timed(getattr(trainer, name)))
    t0 = time.perf_counter()
    trainer.run()
    loop_s = time.perf_counter() - t0 - overhead[0]
    img_s = (args.steps - start_step) * args.batch / max(loop_s, 1e-9)
    record.write_text(json.dumps({"budget": budget, "recipe": recipe, "train_img_s": img_s}))
    return out / "model.safetensors", img_s


@torch.no_grad()
def infer_ms(model, size: int = 512, repeats: int = 3) -> float:
    L = torch.rand(1, 1, size, size) * 100
    model(L)  # warm-up: first call allocates
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model(L)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def generator_params(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("critic."))


def evaluate_model(model, truths, prior, grid_n: int, tile: int, diversity_n: int, render_factor: int):
    """Mean scores over ``truths`` (list of (L, true_lab, rgb)) and the grid tiles of the first ``grid_n``.

    ``model=None`` scores the gray floor (the input with zero ab), as ``tinct evaluate`` does.
    """
    opts = ColorizeOptions(render_factor=render_factor)
    scores, tiles = [], []
    desc = f"scoring {model.name if model is not None else 'gray'}"
    for i, (L, true_lab, truth) in enumerate(tqdm(truths, desc=desc, unit="img", leave=False)):
        rgb = gray_rgb(L) if model is None else colorize_luminance(model, L, opts)
        scores.append(score_rgb(rgb, true_lab, truth, prior))
        if i < grid_n:
            tiles.append(square_tile(rgb, tile))
    mean = mean_scores(scores)
    mean["colorfulness_ratio"] = mean["colorfulness"] / max(mean["colorfulness_true"], 1e-6)
    if getattr(model, "stochastic", False):
        mean["diversity"] = float(np.mean([mean_pairwise_distance(sample_ab(model, L, 3, render_factor))
                                           for L, _, _ in truths[:diversity_n]]))
    return mean, tiles


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, required=True, help="training steps per family (the budget)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128, help="training crop size, px")
    ap.add_argument("--limit", type=int, default=500, help="val500 photos to score (even sample)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--render-factor", type=int, default=None,
                    help="working size / 16 when scoring (default: size / 16, the scale the families were trained at)")
    ap.add_argument("--families", nargs="+", default=None, help=f"subset of: {' '.join(f.label for f in FAMILIES)}")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "bench-models"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--no-default", action="store_true", help="skip the shipped default as a reference row")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.render_factor = args.render_factor or max(1, args.size // 16)
    fams = [f for f in FAMILIES if args.families is None or f.label in args.families]
    if not fams:
        sys.exit(f"no family among {args.families}")

    files = find_images(VAL)
    files = files[:: max(1, len(files) // args.limit)][: args.limit]
    truths = []
    for _, truth in color_truths(files):  # the photos tinct evaluate scores: readable, not already gray
        true_lab = rgb_to_lab(truth / 255.0).astype(np.float32)
        truths.append((true_lab[..., 0], true_lab, truth))
    prior = training_prior()
    grid_n, tile = min(8, len(truths)), 128
    floor, gray_tiles = evaluate_model(None, truths, prior, grid_n, tile, 0, args.render_factor)
    grid = [gray_tiles, [square_tile(t, tile) for _, _, t in truths[:grid_n]]]
    labels = ["gray", "truth"]

    rows = [{"family": GRAY_FLOOR, "model": "-", "params": 0, "train_img_s": float("nan"), "infer_ms": float("nan"),
             **floor}]
    entries = [(f.label, f) for f in fams] + ([] if args.no_default else [("shipped default*", None)])
    for label, fam in entries:
        if fam is None:
            model, img_s = load_model("default"), float("nan")
        else:
            path, img_s = train_family(fam, args)
            model = load_model(path)
        mean, tiles = evaluate_model(model, truths, prior, grid_n, tile, diversity_n=min(20, len(truths)),
                                     render_factor=args.render_factor)
        rows.append({"family": label, "model": model.name, "params": generator_params(model), "train_img_s": img_s,
                     "infer_ms": infer_ms(model), **mean})
        grid.append(tiles)
        labels.append(label)
        print(f"{label}: AuC {mean['auc']:.2f}  rebal {mean['auc_rebal']:.2f}  PSNR {mean['psnr']:.2f}  "
              f"ratio {mean['colorfulness_ratio']:.2f}", file=sys.stderr)
    write(args, rows, grid, labels, len(truths))


def write(args, rows, grid, labels, n_val):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cols = ["family", "model", "params", "train_img_s", "infer_ms", "auc", "auc_rebal", "psnr", "ssim",
            "colorfulness_ratio", "diversity"]
    with open(out / "models.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = ["| family | params | train img/s | infer ms 512² | AuC % | AuC rebal. % | PSNR dB | SSIM "
             "| colorfulness ratio | diversity |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        div = f"{r['diversity']:.2f}" if "diversity" in r else "–"
        img_s = "–" if np.isnan(r["train_img_s"]) else f"{r['train_img_s']:.1f}"
        params = f"{r['params'] / 1e6:.2f} M" if r["params"] else "–"
        infer = "–" if np.isnan(r["infer_ms"]) else f"{r['infer_ms']:.0f}"
        lines.append(f"| {r['family']} | {params} | {img_s} | {infer} "
                     f"| {r['auc']:.2f} | {r['auc_rebal']:.2f} | {r['psnr']:.2f} | {r['ssim']:.4f} "
                     f"| {r['colorfulness_ratio']:.2f} | {div} |")
    budget = f"{args.steps} steps x batch {args.batch} x {args.size} px = {args.steps * args.batch} crops per family"
    text = (f"# Model zoo under one budget\n\nCommand: `nice -n 19 python3 bench/models.py --steps {args.steps} "
            f"--batch {args.batch} --size {args.size} --limit {args.limit} --threads {args.threads} "
            f"--render-factor {args.render_factor}`\n\n"
            f"Budget: {budget}, on ../shared/data/train (seed 0, same crops for every family). "
            f"Scored on the {n_val} color photos of val500 (near-gray ones skipped, as tinct evaluate does) "
            f"at render factor {args.render_factor} "
            f"({args.render_factor * 16} px working side); "
            f"infer ms = one 512x512 forward on {args.threads} thread(s); diversity = mean pairwise ab distance "
            "of 3 samples (Lab units), noisy models only. *The shipped default is a reference, not trained "
            "under this budget.\n\n" + "\n".join(lines) + "\n\n![grid](models_grid.png)\n")
    if args.steps < 500:
        text += ("\n**Smoke-test budget**: these numbers only show that the script runs end to end; "
                 "they compare nothing.\n")
    (out / "models.md").write_text(text)
    image_grid(grid, labels, out / "models_grid.png")
    print(text)


if __name__ == "__main__":
    main()
