"""Make a trained restoration run the shipped restorer: header filled, fp16 storage.

    python scripts/ship_restore.py runs/restore/model.safetensors --notes "..." \
        [--out src/tinct/weights/_restore.safetensors]

The header says what the network learned from (the photos, the damage, the steps); the weights are stored as
float16 (half the file, rebuilt in float32 on load).
"""
from __future__ import annotations

import argparse

from tinct.weights import WEIGHTS_DIR, load_model, save_model

TRAINED_ON = ("../shared/data/train: Imagenette, one ImageNet photo per class, BSDS500, Wikipedia portraits, "
              "Clothing Co-Parsing, Labeled Faces in the Wild (color photos, used as their luminance), damaged by "
              "tinct.restore.degrade (clean, one kind of damage alone, or the realistic mix)")
DESCRIPTION = ("Old-photo restoration on the luminance: a tone stage that undoes fading, then a global tone curve and a "
               "local correction on top of the input, and a damage (scratch, dust, crack) mask. Used by tinct restore "
               "and colorize --restore.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--notes", default="")
    ap.add_argument("--steps", type=int, default=None,
                    help="training steps of all runs together (default: the file's own, the last run's)")
    ap.add_argument("--out", default=str(WEIGHTS_DIR / "_restore.safetensors"))
    args = ap.parse_args()
    model = load_model(args.model)
    if model.name != "restore":
        raise SystemExit(f"{args.model}: a {model.name} model, not a restoration model")
    save_model(model, args.out, trained_on=TRAINED_ON, steps=args.steps or int(model.meta.get("steps", 0)),
               extra={"description": DESCRIPTION, "notes": args.notes}, half=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
