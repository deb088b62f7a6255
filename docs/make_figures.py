"""Make the README's before/after picture with the shipped default model.

    python docs/make_figures.py            # writes docs/before_after.jpg

Rows: the gray input (bundled in examples/), tinct's colorization, and the original color photo
(scikit-image's public-domain / CC0 sample images, from which the gray examples were made).
"""
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

import tinct

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["astronaut", "chelsea", "coffee"]


def main():
    model = tinct.load_model()
    tiles = []
    for name in EXAMPLES:
        gray = Image.open(ROOT / "examples" / f"{name}_gray.jpg")
        color = tinct.colorize(gray, model=model)
        truth = Image.fromarray(getattr(data, name)())
        h = 240
        row = [im.convert("RGB").resize((round(im.width * h / im.height), h), Image.Resampling.LANCZOS)
               for im in (gray, color, truth)]
        tiles.append(row)
    width = max(sum(im.width for im in row) for row in tiles)
    canvas = Image.new("RGB", (width + 8, len(tiles) * 244), "white")
    for r, row in enumerate(tiles):
        x = 0
        for im in row:
            canvas.paste(im, (x, r * 244))
            x += im.width + 4
    canvas.save(ROOT / "docs" / "before_after.jpg", quality=88)
    print("wrote docs/before_after.jpg")


if __name__ == "__main__":
    main()
