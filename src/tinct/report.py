"""Pictures: comparison grids and training curves."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .io import atomic_path


def image_grid(rows: list[np.ndarray], labels: list[str], dest: str | Path, tile: int | None = None) -> None:
    """Save a grid: one row per entry of ``rows`` (each ``(N, H, W, 3)`` uint8), labelled on the left."""
    n = min(len(r) for r in rows)
    h, w = np.asarray(rows[0][0]).shape[:2]
    if tile:
        h, w = tile, tile
    label_w = 110
    canvas = Image.new("RGB", (label_w + n * w, len(rows) * h), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (imgs, label) in enumerate(zip(rows, labels)):
        draw.text((4, r * h + h // 2 - 6), label[:18], fill="black")
        for c in range(n):
            im = Image.fromarray(np.asarray(imgs[c], dtype=np.uint8))
            if im.size != (w, h):
                im = im.resize((w, h), Image.Resampling.BICUBIC)
            canvas.paste(im, (label_w + c * w, r * h))
    jpeg = Path(dest).suffix.lower() in (".jpg", ".jpeg")  # photos: far smaller than PNG, for grids kept in git
    with atomic_path(dest) as tmp:
        canvas.save(tmp, format="JPEG" if jpeg else "PNG", **({"quality": 88} if jpeg else {}))


def plot_curves(metrics_csv: str | Path, dest: str | Path) -> None:
    """Loss and validation metrics against step, one panel each."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    cols = [c for c in rows[0] if c not in ("step", "lr") and any(r.get(c) for r in rows)
            and all(_is_number(r[c]) for r in rows if r.get(c))]  # text columns (a GAN's phase) are not curves
    floors = {c[:-len("_gray")]: c for c in cols if c.endswith("_gray") and c[:-len("_gray")] in cols}
    cols = [c for c in cols if c not in floors.values()]  # a gray-input column is a reference line in its panel
    fig, axes = plt.subplots(1, len(cols), figsize=(4 * len(cols), 3.2), squeeze=False)
    for ax, col in zip(axes[0], cols):
        pts = [(int(r["step"]), float(r[col])) for r in rows if r.get(col)]
        xs, ys = zip(*pts)
        if col == "loss" and len(ys) > 50:  # raw per-step loss is noisy: show a moving average too
            k = max(1, len(ys) // 50)
            ax.plot(xs, ys, alpha=0.25, lw=0.5)
            ys = np.convolve(ys, np.ones(k) / k, mode="same")
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None)
        if col in floors:
            fx, fy = zip(*[(int(r["step"]), float(r[floors[col]])) for r in rows if r.get(floors[col])])
            ax.plot(fx, fy, ls="--", color="gray", label="gray input")
            ax.legend(fontsize=7)
        ax.set_title(col)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
