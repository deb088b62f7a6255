"""Make a trained run's model file the shipped default: decoding chosen, header filled, fp16 storage.

    python scripts/ship_default.py RUN/model.safetensors --temperature T --prior-correction C \
        [--average-with OTHER.safetensors --average-weight W] [--out src/tinct/weights/default.safetensors]

``--average-with``: ship the weights ``(1 - W) x OTHER + W x RUN`` instead (both grown from one ancestor, same
architecture; the header comes from RUN): the average of two runs' weights can keep part of each one's gains
(the default since session 12 is such an average: ``bench/results/default_semantic.md``). OTHER may lack a
branch that RUN grew (``--init OTHER --option semantic_deep_map=true``, ``self_attention=true``): it is grown
first, its zero-initialised tensors averaged with zero (the branch scaled by W), its others taken from RUN.

The weights are stored as float16 (half the file; the network is rebuilt in float32 on load, and the
colorizations differ by well under one ab unit). The header says what the model is for `tinct models`,
the server's model list and anyone who opens the file.
"""
from __future__ import annotations

import argparse
import dataclasses

from tinct.ema import lerp_weights
from tinct.models import model_class
from tinct.models.base import LOSS_WEIGHTS
from tinct.weights import WEIGHTS_DIR, load_model, read_header, save_model

TRAINED_ON = ("Imagenette, one ImageNet photo per class, BSDS500, Wikipedia portraits, Clothing Co-Parsing, "
              "Labeled Faces in the Wild (14,600 color photos)")
DESCRIPTION = ("Automatic colorization of photos of any kind; trained on 14,600 photos (people, places, things); "
               "takes color points. U-Net with Zhang et al.'s classification head over ab bins, and the "
               "features of an ImageNet-pretrained EfficientNet-Lite0 fused at its bottleneck (what things are).")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--temperature", type=float, required=True)
    ap.add_argument("--prior-correction", type=float, required=True)
    ap.add_argument("--render-factor", type=int, default=None, help="recorded in the header's notes")
    ap.add_argument("--steps", type=int, default=None,
                    help="training steps of all stages together (default: the file's own, the last stage's)")
    ap.add_argument("--average-with", default=None, help="another model file of the same architecture")
    ap.add_argument("--average-weight", type=float, default=0.5, help="weight of MODEL in the average, in [0, 1]")
    ap.add_argument("--notes", default="")
    ap.add_argument("--description", default=DESCRIPTION)
    ap.add_argument("--out", default=str(WEIGHTS_DIR / "default.safetensors"))
    args = ap.parse_args()
    # decoding chosen; training-only options (freezing, learning-rate scales) back to their neutral values
    options = {f.name for f in dataclasses.fields(model_class(read_header(args.model)["model"]).Config)}
    # (the semantic encoder frozen, as a U-Net's config has it: `--init default` then trains it only if asked)
    neutral = {"encoder_frozen": 0, "encoder_lr_scale": 1.0, "hint_lr_scale": 1.0, "semantic_frozen": 5,
               **{name: 0.0 for name in LOSS_WEIGHTS}}
    model = load_model(args.model, overrides={"temperature": args.temperature, "prior_correction": args.prior_correction,
                                              **{k: v for k, v in neutral.items() if k in options}})
    if args.average_with:
        if not 0.0 <= args.average_weight <= 1.0:
            raise SystemExit(f"--average-weight must lie in [0, 1], got {args.average_weight}")
        other = load_model(args.average_with)
        if other.name == model.name and other.state_dict().keys() != model.state_dict().keys():
            # OTHER may lack a branch that RUN grew later (e.g. semantic_deep_map, self_attention): grown the way
            # --init grows it, it is the same network. Its zero-initialised tensors (a fusion conv, an attention's
            # gate) average with zero, so the branch is scaled by W; the others (the attention's query, key and
            # value, behind that gate) are RUN's, or the average would mix trained weights with random ones
            had = set(other.state_dict())
            other = load_model(args.average_with, overrides=dataclasses.asdict(model.config), grow=True)
            grown = other.state_dict()
            for key, value in model.state_dict().items():
                if key not in had and grown[key].is_floating_point() and bool(grown[key].any()):
                    grown[key].copy_(value)
        if other.name != model.name or other.state_dict().keys() != model.state_dict().keys():
            raise SystemExit(f"--average-with {args.average_with}: not the architecture of {args.model}")
        lerp_weights(other, model, args.average_weight)
        model.load_state_dict(other.state_dict())
    extra = {"description": args.description, "notes": args.notes}
    if "ab_hist" in model.meta:
        extra["ab_hist"] = model.meta["ab_hist"]
    save_model(model, args.out, trained_on=TRAINED_ON, steps=args.steps or int(model.meta.get("steps", 0)), extra=extra, half=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
