"""Color suggestions on val500: is the true color among them, and what do points at suggested colors buy?

    nice -n 10 python3 bench/suggest.py [--model default] [--pixels 20] [--photos 0] [--hint-photos 100]
                                        [--points 1 5 10] [--radius 15] [--sweep] [--note "..."]

1. Hits. For every color photo of val500 (colorfulness >= 5, as ``tinct evaluate``; ``--photos N``: an
   even sample of N), the photo is grayed (its CIE L), the network runs once at the default render factor
   and ``--pixels`` random pixels (seeded) are asked for suggestions (``tinct.suggest``: the shipped code
   path, at each pixel's lightness). A pixel is a hit at k when one of the first k suggestions lies within
   ``--radius`` (15) ab units of the pixel's true ab. With ``--sweep`` the table also shows other prior
   corrections and cluster radii (same pixels, same network outputs); the colorization itself (the
   decoded color at the pixel) is shown as a one-color reference.
2. Points. For ``--hint-photos`` photos (an even sample), ``N`` random spots each get a point (a disc
   covering about 3x3 network cells, as the page places them) whose color is (a) the truth's mean color
   under it, (b) the suggestion nearest the truth among the top 6 (a person picking the right one of six),
   (c) the top suggestion (a person accepting the first); suggestions come from the photo without points.
   Scored: AuC of the ab error (thresholds 0..150, percent), the mean over photos, and its gain over the
   same photos without points.

Writes ``bench/results/suggest.md``. Runs on whatever model ``--model`` names (default: the shipped one).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tinct.color import lab_to_rgb, rgb_to_lab  # noqa: E402
from tinct.data import find_images  # noqa: E402
from tinct.evaluate import color_truths  # noqa: E402
from tinct.io import atomic_path  # noqa: E402
from tinct.metrics import ab_error, auc  # noqa: E402
from tinct.pipeline import DEFAULT_RENDER_FACTOR, predict_ab, recombine, working_size  # noqa: E402
from tinct.hints import points_tensor  # noqa: E402
from tinct.suggest import SuggestOptions, bin_probabilities, spot_logits, suggest_at  # noqa: E402
from tinct.weights import load_model, resolve_model_path  # noqa: E402

VAL = ROOT.parent / "shared" / "data" / "val" / "imagenette-val500"
OUT = ROOT / "bench" / "results" / "suggest.md"


def variants(model, radius: float, sweep: bool) -> dict[str, SuggestOptions]:
    """The shipped settings first, then (``sweep``) alternatives scored on the same pixels."""
    own = float(model.config.prior_correction)
    out = {f"shipped: prior correction {own:g} (the model's), cluster radius 15": SuggestOptions()}
    if sweep:
        for pc in sorted({0.0, 1.0} - {own}):
            out[f"prior correction {pc:g}, radius 15"] = SuggestOptions(prior_correction=pc)
        out[f"prior correction {own:g}, radius 10"] = SuggestOptions(merge_radius=10.0)
        out[f"prior correction {own:g}, radius 20"] = SuggestOptions(merge_radius=20.0)
    return out


def hits(model, photos, pixels: int, radius: float, rf: int, seed: int, sweep: bool):
    """Hit counts at top 1/3/6 per variant, hits of the decoded color, pixels and photos scored."""
    opts = variants(model, radius, sweep)
    counts = {name: np.zeros(3) for name in opts}
    decoded_hits, n, sizes = 0, 0, []
    t0 = time.perf_counter()
    for i, (path, truth) in enumerate(photos):
        rng = np.random.default_rng([seed, int(path_key(path))])  # pixels depend on the photo, not the shard
        lab = rgb_to_lab(truth / 255.0)
        L = lab[..., 0]
        H, W = L.shape
        logits = spot_logits(model, L, rf)
        decoded = model.decode_logits(logits[None]).cpu()  # (1, 2, h, w): the colorization's own colors
        probs = {name: bin_probabilities(model, logits, o) for name, o in opts.items()}
        ys, xs = rng.integers(0, H, pixels), rng.integers(0, W, pixels)
        for y, x in zip(ys, xs):
            fy, fx = (y + 0.5) / H, (x + 0.5) / W
            true_ab = lab[y, x, 1:]
            for name, o in opts.items():
                s = suggest_at(model, probs[name], float(L[y, x]), fy, fx, o)
                d = np.array([math.dist(true_ab, q.lab[1:]) for q in s])
                for j, k in enumerate((1, 3, 6)):
                    counts[name][j] += bool((d[:k] <= radius).any())
            g = torch.tensor([[[[2 * fx - 1, 2 * fy - 1]]]], dtype=torch.float32)
            ab = torch.nn.functional.grid_sample(decoded, g, align_corners=False)[0, :, 0, 0].numpy()
            decoded_hits += math.dist(true_ab, ab) <= radius
            n += 1
        sizes.append(H * W)
        if (i + 1) % 20 == 0:
            print(f"  hits: {i + 1} photos, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return {k: v.tolist() for k, v in counts.items()}, int(decoded_hits), n, len(sizes)


def point_list(lab, spots, colors, radius):
    return [{"x": int(x), "y": int(y), "color": c, "radius": radius} for (y, x), c in zip(spots, colors)]


def hex_of(L: float, ab) -> str:
    rgb = lab_to_rgb(np.array([L, ab[0], ab[1]], np.float64))
    return "#" + "".join(f"{int(round(float(v) * 255)):02x}" for v in rgb)


def auc_of(model, L, true_lab, rf, hints=None) -> float:
    ab = predict_ab(model, L, rf, hints)
    rgb = recombine(L, ab)
    return auc(ab_error(rgb_to_lab(rgb / 255.0), true_lab))


def points_gain(model, photos, counts: list[int], rf: int, seed: int):
    """Per-photo AuC lists: without points, and per point count with true / best-of-6 / top-1 colors."""
    rows = {n: {"true": [], "best of 6": [], "top 1": []} for n in counts}
    base = []
    t0 = time.perf_counter()
    for i, (path, truth) in enumerate(photos):
        rng = np.random.default_rng([seed + 1, int(path_key(path))])
        lab = rgb_to_lab(truth / 255.0)
        L = lab[..., 0]
        H, W = L.shape
        h, w = working_size(H, W, rf, model.stride)
        cell = math.sqrt(H * W) / (rf * 16)
        radius = max(1, round(1.5 * max(1.0, cell)))  # the page's point: about 3x3 network cells
        base.append(auc_of(model, L, lab, rf))
        probs = bin_probabilities(model, spot_logits(model, L, rf), SuggestOptions())
        yy, xx = np.mgrid[:H, :W]
        for n in counts:
            spots = list(zip(rng.integers(0, H, n), rng.integers(0, W, n)))
            true_c, best_c, top_c = [], [], []
            for y, x in spots:
                disc = (yy - y) ** 2 + (xx - x) ** 2 <= radius * radius
                t_ab = lab[disc][:, 1:].mean(0)
                true_c.append(hex_of(float(L[y, x]), t_ab))
                s = suggest_at(model, probs, float(L[y, x]), (y + 0.5) / H, (x + 0.5) / W)
                best = min(s, key=lambda q: math.dist(q.lab[1:], t_ab))
                best_c.append(best.color)
                top_c.append(s[0].color)
            for name, colors in (("true", true_c), ("best of 6", best_c), ("top 1", top_c)):
                hints = points_tensor(point_list(lab, spots, colors, radius), (H, W), h, w)
                rows[n][name].append(auc_of(model, L, lab, rf, hints))
        if (i + 1) % 10 == 0:
            print(f"  points: {i + 1} photos, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return base, rows


def path_key(path) -> int:
    import zlib
    return zlib.crc32(Path(path).name.encode())


def even_sample(items: list, n: int) -> list:
    if not n or n >= len(items):
        return items
    return [items[int(i * len(items) / n)] for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=str(VAL))
    ap.add_argument("--photos", type=int, default=0, help="even sample of this many color photos (0: all)")
    ap.add_argument("--pixels", type=int, default=20, help="random pixels per photo")
    ap.add_argument("--radius", type=float, default=15.0, help="a hit: within this many ab units")
    ap.add_argument("--hint-photos", type=int, default=100)
    ap.add_argument("--points", type=int, nargs="*", default=[1, 5, 10])
    ap.add_argument("--render-factor", type=int, default=DEFAULT_RENDER_FACTOR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--note", default="")
    ap.add_argument("--sweep", action="store_true", help="also score other prior corrections and cluster radii")
    ap.add_argument("--only", choices=["hits", "points"], default=None, help="run one part only")
    ap.add_argument("--shard", default="0/1", help="I/N: this process takes every N-th photo from the I-th")
    ap.add_argument("--json", default=None, help="write this process's raw counts here (for --merge)")
    ap.add_argument("--merge", nargs="*", default=None, help="combine the --json files of shards into --out")
    args = ap.parse_args()
    if args.merge:
        return write_markdown([json.loads(Path(f).read_text()) for f in args.merge], args)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = load_model(args.model)
    i, n = (int(v) for v in args.shard.split("/"))
    photos = list(color_truths(find_images(args.data)))
    part = {"argv": sys.argv[1:], "model": args.model, "model_file": resolve_model_path(args.model).name,
            "family": model.name, "bins": model.config.num_bins,
            "prior_correction": float(model.config.prior_correction), "render_factor": args.render_factor,
            "radius": args.radius, "torch": torch.__version__, "threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    with torch.no_grad():
        if args.only != "points":
            rates, decoded, n_pixels, n_photos = hits(model, even_sample(photos, args.photos)[i::n], args.pixels,
                                                      args.radius, args.render_factor, args.seed, args.sweep)
            part.update(hits=rates, decoded=decoded, pixels=n_pixels, photos=n_photos)
        if args.only != "hits" and args.hint_photos and args.points:
            base, gains = points_gain(model, even_sample(photos, args.hint_photos)[i::n], args.points,
                                      args.render_factor, args.seed)
            part.update(base=base, gains={str(k): v for k, v in gains.items()})
    part["seconds"] = time.perf_counter() - t0
    if args.json:
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps(part))
    else:
        write_markdown([part], args)


def write_markdown(parts: list[dict], args) -> None:
    p0 = parts[0]
    commands = sorted({" ".join(["python3 bench/suggest.py"] + p["argv"]) for p in parts})
    lines = ["# Color suggestions on val500", ""]
    lines += [f"`{c}`" + ("  " if k < len(commands) - 1 else "") for k, c in enumerate(commands)]
    if len(parts) > 1:
        lines.append(f"({len(parts)} processes, merged by `python3 bench/suggest.py --merge ...`)")
    lines += [
        f"on {platform.machine()}, torch {p0['torch']}, {p0['threads']} thread(s) each; "
        f"{sum(p['seconds'] for p in parts) / 60:.1f} process-minutes on a shared, heavily loaded CPU.",
        f"Model: `{p0['model']}` ({p0['model_file']}, {p0['family']}, {p0['bins']} bins, prior correction "
        f"{p0['prior_correction']:g}), render factor {p0['render_factor']}: the network works at about "
        f"{16 * p0['render_factor']}x{16 * p0['render_factor']} px (that many pixels, the photo's aspect, sides multiples "
        f"of the stride; every val500 photo is larger). {args.note}".rstrip(),
    ]
    with_hits = [p for p in parts if "hits" in p]
    if with_hits:
        n_pixels = sum(p["pixels"] for p in with_hits)
        n_photos = sum(p["photos"] for p in with_hits)
        counts = {name: np.sum([p["hits"][name] for p in with_hits], 0) for name in with_hits[0]["hits"]}
        decoded = sum(p["decoded"] for p in with_hits) / n_pixels
        lines += ["", f"## Is the true color among the suggestions? ({n_pixels} random pixels of {n_photos} photos)",
                  "", f"A hit at k: one of the first k suggestions within {p0['radius']:g} ab units of the pixel's "
                  "true color.", "", "| suggestions | top 1 % | top 3 % | top 6 % |", "|---|---|---|---|"]
        for name, c in counts.items():
            r = c / n_pixels
            bold = "**" if name.startswith("shipped") else ""
            lines.append(f"| {bold}{name}{bold} | {r[0] * 100:.1f} | {r[1] * 100:.1f} | {bold}{r[2] * 100:.1f}{bold} |")
        lines.append(f"| the colorization itself (one color, the model's decoding) | {decoded * 100:.1f} | | |")
    with_points = [p for p in parts if "gains" in p]
    if with_points:
        base = [a for p in with_points for a in p["base"]]
        b = float(np.mean(base))
        lines += ["", f"## What points at suggested colors buy ({len(base)} photos)", "",
                  f"AuC % (ab error, thresholds 0..150) of the colorization; without points: {b:.2f}. "
                  "Gain over that in brackets.", "",
                  "| points | true colors | best of the 6 suggestions | top suggestion |", "|---|---|---|---|"]
        for npts in with_points[0]["gains"]:
            g = {k: float(np.mean([a for p in with_points for a in p["gains"][npts][k]]))
                 for k in ("true", "best of 6", "top 1")}
            lines.append(f"| {npts} | " + " | ".join(f"{g[k]:.2f} ({g[k] - b:+.2f})"
                                                     for k in ("true", "best of 6", "top 1")) + " |")
    text = "\n".join(lines) + "\n"
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
