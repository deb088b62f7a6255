"""Give a restoration network the tone stage (``tinct.restore.tone``), fitted on damaged training photos.

    python scripts/fit_restore_tone.py src/tinct/weights/_restore.safetensors --out runs/restore-tone/model.safetensors
    python scripts/ship_restore.py runs/restore-tone/model.safetensors --notes "..."

The network's other weights are kept as they are; the curve is fitted alone (minutes on one core), on
``--photos`` photos of ``--data`` (the trainer's cached 128 px squares), each damaged ``--per-photo`` times the way
the network is trained (clean, one kind alone, or the realistic mix). Seeded: the same arguments give the same file.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from tinct.data import build_cache, find_images, to_lab_batch
from tinct.io import default_cache_dir
from tinct.restore.degrade import DegradeConfig
from tinct.restore.tone import ToneCurve, damaged_samples, fit_tone_curve
from tinct.weights import load_model, save_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="restoration model file to start from")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default="../shared/data/train")
    ap.add_argument("--photos", type=int, default=6000)
    ap.add_argument("--per-photo", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model = load_model(args.model, overrides={"tone_stage": True}, grow=True)
    if model.name != "restore":
        raise SystemExit(f"{args.model}: a {model.name} model, not a restoration model")
    cfg = model.config
    cache = build_cache(find_images(args.data), 128, default_cache_dir())
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(cache), min(args.photos, len(cache)), replace=False))
    L = np.concatenate([to_lab_batch(torch.from_numpy(np.asarray(cache.images[rows[i:i + 256]])))[0][:, 0].numpy()
                        for i in range(0, len(rows), 256)])
    samples = damaged_samples(L, rng, args.per_photo, clean=cfg.clean_fraction, single=cfg.single_fraction,
                              config=DegradeConfig(scale=cfg.degradation_scale))
    model.tone = ToneCurve()
    history = fit_tone_curve(model.tone, *samples, steps=args.steps, seed=args.seed)
    print(f"tone curve L1: {history[0] * 50:.2f} -> {history[-1] * 50:.2f} L units")
    save_model(model.eval(), args.out, trained_on=model.meta.get("trained_on", ""),
               steps=int(model.meta.get("steps", 0)),
               extra={"tone_stage": f"fitted on {len(rows)} photos x {args.per_photo} damages, {args.steps} steps"})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
