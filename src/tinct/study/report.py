"""`tinct study --report answers.csv`: each model's fooling rate with a 95% confidence interval, and a
picture of the most and least convincing pairs.

The fooling rate is the share of answers that took the colorization for the real photo (50% = people
cannot tell them apart). Its interval is Wilson's score interval (z = 1.96), which stays inside [0, 1]
and behaves at small counts and rates near 0 or 1, where the normal approximation does not.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from ..io import atomic_path
from .answers import read_answers
from .pairs import file_stem, pairs_dir

Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials -> (low, high) in [0, 1]."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def fooling_rates(rows: list[dict]) -> dict[str, dict]:
    """Per model: answers ``n``, ``fooled`` count, ``rate`` and its 95% ``low`` / ``high``; also per pair."""
    by_model = defaultdict(lambda: [0, 0])
    for r in rows:
        by_model[r["model"]][0] += 1
        by_model[r["model"]][1] += int(r["fooled"])
    out = {}
    for model in sorted(by_model):
        n, k = by_model[model]
        low, high = wilson_interval(k, n)
        out[model] = {"n": n, "fooled": k, "rate": k / n, "low": low, "high": high}
    return out


def pair_rates(rows: list[dict]) -> list[tuple[str, str, int, int]]:
    """(photo, model, fooled, n) for every pair answered at least once."""
    counts = defaultdict(lambda: [0, 0])
    for r in rows:
        counts[(r["photo"], r["model"])][0] += int(r["fooled"])
        counts[(r["photo"], r["model"])][1] += 1
    return [(p, m, k, n) for (p, m), (k, n) in counts.items()]


def report_text(rows: list[dict]) -> str:
    lines = [f"{len(rows)} answers from {len({r['participant'] for r in rows})} participants",
             "", "| model | answers | fooled | fooling rate | 95% interval (Wilson) |", "|---|---|---|---|---|"]
    for model, s in fooling_rates(rows).items():
        lines.append(f"| {model} | {s['n']} | {s['fooled']} | {s['rate'] * 100:.1f}% | "
                     f"{s['low'] * 100:.1f}% - {s['high'] * 100:.1f}% |")
    return "\n".join(lines)


def convincing_picture(rows: list[dict], answers: Path, dest: Path, each: int = 3, tile: int = 192) -> int:
    """Rows of (truth | colorization) for the ``each`` most and least convincing pairs -> ``dest`` (PNG).

    Returns the number of pairs drawn (their images come from the pairs folder the study wrote).
    """
    folder = pairs_dir(answers)
    ranked = sorted(pair_rates(rows), key=lambda t: (-t[2] / t[3], -t[3], t[0], t[1]))
    most = ranked[:each]
    least = [t for t in ranked[::-1] if t not in most][:each]
    rows_img = []
    for title, group in (("most convincing", most), ("least convincing", least)):
        for photo, model, k, n in group:
            truth, fake = folder / f"{file_stem(photo)}.truth.png", folder / f"{file_stem(photo)}.{file_stem(model)}.png"
            if not (truth.is_file() and fake.is_file()):
                continue
            tiles = [np.asarray(ImageOps.pad(Image.open(p).convert("RGB"), (tile, tile), color=(24, 24, 24)))
                     for p in (truth, fake)]
            caption = Image.new("RGB", (2 * tile, 34), (24, 24, 24))
            draw = ImageDraw.Draw(caption)
            draw.text((6, 3), f"{title}: {model} fooled {k}/{n}", fill=(235, 235, 235))
            draw.text((6, 18), f"{photo} (left: real, right: {model})", fill=(170, 170, 170))
            rows_img.append(np.concatenate([np.asarray(caption), np.concatenate(tiles, 1)], 0))
    if not rows_img:
        return 0
    with atomic_path(dest) as tmp:
        Image.fromarray(np.concatenate(rows_img, 0)).save(tmp, format="PNG")
    return len(rows_img)


def report(answers: str | Path, picture: str | Path | None = None, echo=print) -> dict:
    """Print the table; write the picture (default ``ANSWERS_convincing.png`` beside the CSV)."""
    answers = Path(answers)
    rows = read_answers(answers)
    echo(report_text(rows))
    if rows:
        dest = Path(picture) if picture else answers.with_name(answers.stem + "_convincing.png")
        drawn = convincing_picture(rows, answers, dest)
        echo(f"picture of the most and least convincing pairs: {dest}" if drawn
             else f"no picture: the pairs folder {pairs_dir(answers)} is missing")
    return fooling_rates(rows)
