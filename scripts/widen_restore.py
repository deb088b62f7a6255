"""Widen a restoration network (more channels at every level), keeping what it computes; then train it on.

    python scripts/widen_restore.py src/tinct/weights/_restore.safetensors --channels 32 \
        --out runs/restore_grow_init/model.safetensors
    INIT=runs/restore_grow_init/model.safetensors OUT=runs/restore_grow STEPS=5000 bash scripts/train_restore.sh

Session 20 grew the shipped 16-channel network to 32 this way (bench/results/restore.md).
"""
from __future__ import annotations

import argparse

from tinct.restore.network import widened
from tinct.weights import load_model, save_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--channels", type=int, required=True, help="base channels of the wider network")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20)
    args = ap.parse_args()
    net = load_model(args.model)
    if net.name != "restore":
        raise SystemExit(f"{args.model}: a {net.name} model, not a restoration model")
    wide = widened(net, args.channels, args.seed)
    save_model(wide, args.out, trained_on=net.meta.get("trained_on", ""), steps=int(net.meta.get("steps", 0)),
               extra={"widened": f"{net.config.base_channels} -> {args.channels} base channels"})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
