"""Side-by-side sheets of real old photos colorized by several models (no ground truth: for looking).

    python bench/historical.py --model OLD.safetensors --model default [--folder ../shared/data/historical]
                               [--height 256] [--per-sheet 7] [--out bench/results/historical]

Each row is one photo: its gray input, then each model's colorization at its own default decoding,
labelled. Writes ``OUT_1.jpg``, ``OUT_2.jpg`` ... (JPEG: these are for eyes, not for scoring).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps
from tqdm import tqdm

import tinct
from tinct.data import find_images
from tinct.io import atomic_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "historical"


def label_of(name: str) -> str:
    return Path(name).stem if name.endswith(".safetensors") else name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="model name or file (repeatable, in column order)")
    ap.add_argument("--label", action="append", default=None, help="column label for each --model")
    ap.add_argument("--folder", default=str(DATA))
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--per-sheet", type=int, default=7)
    ap.add_argument("--render-factor", type=int, default=None)
    ap.add_argument("--out", default="bench/results/historical")
    args = ap.parse_args()
    models = [tinct.load_model(m) for m in args.model]
    labels = args.label or [label_of(m) for m in args.model]
    photos = find_images(args.folder)
    rows = []
    for path in tqdm(photos, desc="colorizing", unit="photo"):
        gray = ImageOps.exif_transpose(Image.open(path)).convert("L")
        scale = args.height / gray.height
        small = gray.resize((max(1, round(gray.width * scale)), args.height), Image.Resampling.LANCZOS)
        kw = {} if args.render_factor is None else {"render_factor": args.render_factor}
        # colorize the full photo (as a user would), then shrink for the sheet
        outs = [tinct.colorize(gray, model=m, **kw).resize(small.size, Image.Resampling.LANCZOS) for m in models]
        rows.append([small.convert("RGB")] + outs)
    gap, head = 4, 18
    for k in range(0, len(rows), args.per_sheet):
        chunk = rows[k:k + args.per_sheet]
        widths = [max(r[c].width for r in chunk) for c in range(len(models) + 1)]
        sheet = Image.new("RGB", (sum(widths) + gap * len(widths), head + len(chunk) * (args.height + gap)), "white")
        draw = ImageDraw.Draw(sheet)
        x = 0
        for c, title in enumerate(["gray input"] + labels):
            draw.text((x + 4, 3), title, fill="black")
            x += widths[c] + gap
        for r, row in enumerate(chunk):
            x = 0
            for c, im in enumerate(row):
                sheet.paste(im, (x, head + r * (args.height + gap)))
                x += widths[c] + gap
        dest = Path(f"{args.out}_{k // args.per_sheet + 1}.jpg")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            sheet.save(tmp, format="JPEG", quality=85)
        print(f"wrote {dest}")


if __name__ == "__main__":
    main()
