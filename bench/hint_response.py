"""Does a model follow color points? Mean ab error against the truth with 0, 30 and 120 dabs of the true colors.

    python bench/hint_response.py --model default --model checkpoints/default-candidate.safetensors

Photos: scikit-image's astronaut and coffee (as in tests/test_quality.py); dabs: that test's ``strokes``
(3x3 px squares of the truth's colors at random places, seed 0), given to the deep model as hints at the default
render factor. A model that follows points drops its error sharply (the shipped U-Net: astronaut 11.25 -> 7.19).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_quality import strokes, truth_of  # noqa: E402

from tinct.color import rgb_to_lab  # noqa: E402
from tinct.guided.colorize import GuidedOptions, guided_ab  # noqa: E402
from tinct.pipeline import ColorizeOptions  # noqa: E402
from tinct.weights import load_model  # noqa: E402

PHOTOS = ("astronaut", "coffee")
DABS = (0, 30, 120)


def mean_ab_error(model, lab: np.ndarray, dabs: int) -> float:
    L = lab[..., 0]
    ab = guided_ab(L, GuidedOptions(), model, ColorizeOptions(), hints=strokes(lab, dabs) if dabs else None)
    ab = F.interpolate(ab, size=L.shape, mode="bilinear", align_corners=False)[0].numpy().transpose(1, 2, 0)
    return float(np.abs(ab - lab[..., 1:]).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="model name or file (repeatable)")
    args = ap.parse_args()
    labs = {p: rgb_to_lab(truth_of(p) / 255.0).astype(np.float32) for p in PHOTOS}
    print("| model | " + " | ".join(f"{p}: {' / '.join(map(str, DABS))} dabs" for p in PHOTOS) + " |")
    print("|---|" + "---|" * len(PHOTOS))
    for name in args.model:
        model = load_model(name)
        cells = [" / ".join(f"{mean_ab_error(model, labs[p], n):.2f}" for n in DABS) for p in PHOTOS]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
