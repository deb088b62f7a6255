"""Widen a trained network (more channels at every level), keeping what it computes; then train it on.

    python scripts/widen.py src/tinct/weights/_restore.safetensors --channels 32 \
        --out runs/restore_grow_init/model.safetensors
    INIT=runs/restore_grow_init/model.safetensors OUT=runs/restore_grow STEPS=5000 bash scripts/train_restore.sh

Works for the families with a ``base_channels`` option that say how their layers' inputs are put together
(``unet``, ``restore``; tinct.models.widen). Session 20 grew the shipped 16-channel restorer to 32 this way
(bench/results/restore.md); session 21 the default colorizer's U-Net (bench/results/default_semantic.md).
The file keeps the original's header (ab histogram, description) and adds ``widened``.
"""
from __future__ import annotations

import argparse

from tinct.errors import TinctError
from tinct.models.widen import widened
from tinct.weights import load_model, save_model

_OWN_KEYS = ("tinct_format", "model", "config", "trained_on", "steps")  # save_model writes these itself


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--channels", type=int, required=True, help="base channels of the wider network")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20)
    args = ap.parse_args()
    try:
        net = load_model(args.model)
        wide = widened(net, args.channels, args.seed)
    except TinctError as e:
        raise SystemExit(f"error: {e}") from None
    extra = {k: v for k, v in net.meta.items() if k not in _OWN_KEYS}
    extra["widened"] = f"{net.config.base_channels} -> {args.channels} base channels"
    save_model(wide, args.out, trained_on=net.meta.get("trained_on", ""), steps=int(net.meta.get("steps", 0)),
               extra=extra)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
