"""Choose the render factor and decoding: score a model at several working resolutions.

    python bench/render_factor.py [--model default] [--data DIR] [--limit 100] [--factors 8 10 12 16 20 24]
                                  [--temperatures T ...] [--corrections C ...] [--median] [--gray DIR ...]
                                  [--out results/render_factor.md]

The working size is what a render factor means only up to the photo's own size: the network sees a square
of the same area as ``render factor x 16`` px on a side, but never more pixels than the photo has (the
pipeline does not upsample). So every row prints the working size it really used (mean side over the
photos, and how many were already at their own size); on val500's 224 px photos, render factors 14 and
above are all the same run.

``--data``: color photos, turned gray and scored as `tinct evaluate` does (near-gray truths skipped), the
gray floor first: AuC, rebalanced AuC, PSNR, colorfulness ratio, ms per photo (network + decoding +
recombining). A classification model runs once per photo and render factor; every (temperature, prior
correction) pair is decoded from those logits, so a decoding sweep costs little more than one run.
``--median`` adds, for each pair, the geometric median of the same distribution (the decoding that maximises
the expected AuC if the distribution is calibrated) beside its annealed mean.
``--gray``: folders of old photos without a color original (e.g. ../shared/data/historical/*): only the
colorfulness (Hasler & Suesstrunk) and mean chroma of the outputs, and a grid to judge by eye (rows: render
factors; tiles: a 256 px crop at full resolution from the centre of each photo, where the detail is).
Prints the markdown tables and writes them to --out (and the grid beside it).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from tqdm import tqdm

from tinct.color import gray_rgb, rgb_to_lab
from tinct.data import colorfulness, find_images
from tinct.evaluate import color_truths, training_prior
from tinct.io import load_image
from tinct.metrics import mean_scores, score_rgb
from tinct.models.base import Decoding
from tinct.pipeline import recombine, working_luminance
from tinct.report import image_grid
from tinct.weights import load_model

VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "val" / "imagenette-val500"
HEADER = ("| render factor | rf x 16 | working side px (mean) | at own size | temperature | prior correction | AuC % "
          "| AuC rebal. % | PSNR dB | colorfulness ratio | ms/photo |\n|---|---|---|---|---|---|---|---|---|---|---|")
GRAY_HEADER = ("| render factor | rf x 16 | working side px (mean) | at own size | colorfulness | mean chroma | ms/photo |"
               "\n|---|---|---|---|---|---|---|")
CROP = 256
GRID_PHOTOS = 8


def size_columns(rf: int, sizes: list[tuple[int, int, int, int]]) -> str:
    """``rf | rf x 16 | mean working side | photos at their own size`` from (H, W, h, w) per photo."""
    side = np.mean([math.sqrt(h * w) for _, _, h, w in sizes])
    own = sum(1 for H, W, h, w in sizes if h * w >= H * W * 0.95)  # not shrunk: the render factor asked for more
    return f"{rf} | {rf * 16} | {side:.0f} | {own} of {len(sizes)}"


def row(sizes: str, T, c, m: dict, ms: str = "") -> str:
    return (f"| {sizes} | {T} | {c} | {m['auc']:.2f} | {m['auc_rebal']:.2f} | {m['psnr']:.2f} "
            f"| {m['colorfulness'] / m['colorfulness_true']:.2f} | {ms} |")


def geometric_median(p: torch.Tensor, centers: torch.Tensor, iterations: int = 8) -> torch.Tensor:
    """The ab ``(B, 2, h, w)`` nearest on average (plain distance) to the bins under ``p`` ``(B, Q, h, w)``.

    AuC averages P(error <= t) over thresholds up to 150, i.e. it rewards a small expected distance, so the
    distribution's geometric median (Weiszfeld's iteration from its mean) is the decoding that maximises the
    expected AuC for a calibrated ``p``; the bench measures how far that is from the annealed mean.
    """
    ca, cb = centers[:, 0].view(1, -1, 1, 1), centers[:, 1].view(1, -1, 1, 1)
    m = torch.einsum("bqhw,qc->bchw", p, centers)
    for _ in range(iterations):
        w = p / torch.sqrt((ca - m[:, :1]) ** 2 + (cb - m[:, 1:]) ** 2).clamp_min(1e-3)
        m = torch.einsum("bqhw,qc->bchw", w, centers) / w.sum(1, keepdim=True)
    return m


def decoded(model, L: np.ndarray, rf: int, decodings) -> tuple[tuple[int, int], list[torch.Tensor], float]:
    """Working size, ab for each (T, correction, estimator) from one network run, and the seconds of the first."""
    t0 = time.perf_counter()
    L_small = working_luminance(L, rf, model.stride)
    out = model(L_small)
    abs_, seconds = [], 0.0
    classification = getattr(model.config, "head", None) == "classification"
    for T, c, estimator in decodings:
        if not classification:
            abs_.append(out["ab"])
        elif estimator == "median":
            p = model.annealed_distribution(out["logits"], Decoding(T, c))
            ab = geometric_median(p, model.bin_centers)
            abs_.append(F.interpolate(ab, size=tuple(L_small.shape[-2:]), mode="bilinear", align_corners=False))
        else:
            abs_.append(model.decode(out["logits"], L_small.shape[-2:], Decoding(T, c)))
        if not seconds:
            seconds = time.perf_counter() - t0
    return tuple(L_small.shape[-2:]), abs_, seconds


@torch.no_grad()
def sweep_factor(model, photos, rf: int, decodings: list[tuple[float, float, str]], prior) -> list[str]:
    """Rows for one render factor on photos with a truth."""
    scores = {d: [] for d in decodings}
    seconds, sizes = 0.0, []
    for lab, truth in tqdm(photos, desc=f"render factor {rf}", leave=False):
        L = lab[..., 0]
        t0 = time.perf_counter()
        (h, w), abs_, _ = decoded(model, L, rf, decodings)
        sizes.append((*L.shape, h, w))
        for i, (d, ab) in enumerate(zip(decodings, abs_)):
            rgb = recombine(L, ab)
            if i == 0:
                seconds += time.perf_counter() - t0
            scores[d].append(score_rgb(rgb, lab, truth, prior))
    ms = f"{seconds / len(photos) * 1000:.0f}"
    return [row(size_columns(rf, sizes), T if e == "mean" else f"{T} (median)", c, mean_scores(scores[(T, c, e)]), ms)
            for T, c, e in decodings]


@torch.no_grad()
def sweep_gray(model, scans: list[np.ndarray], rf: int) -> tuple[str, list[np.ndarray]]:
    """One row for old photos without truth, and a full-resolution centre crop of each output for the grid."""
    cf, chroma, crops, sizes, seconds = [], [], [], [], 0.0
    for L in tqdm(scans, desc=f"gray, render factor {rf}", leave=False):
        t0 = time.perf_counter()
        (h, w), (ab,), _ = decoded(model, L, rf, [(None, None, "mean")])
        rgb = recombine(L, ab)
        seconds += time.perf_counter() - t0
        sizes.append((*L.shape, h, w))
        cf.append(colorfulness(rgb))
        lab = rgb_to_lab(rgb / 255.0)
        chroma.append(float(np.hypot(lab[..., 1], lab[..., 2]).mean()))
        crops.append(centre_crop(rgb))
    line = (f"| {size_columns(rf, sizes)} | {np.mean(cf):.1f} | {np.mean(chroma):.2f} "
            f"| {seconds / len(scans) * 1000:.0f} |")
    return line, crops


def centre_crop(rgb: np.ndarray, side: int = CROP) -> np.ndarray:
    im = Image.fromarray(rgb)
    if min(im.size) < side:
        return np.asarray(ImageOps.fit(im, (side, side)))
    x0, y0 = (im.width - side) // 2, (im.height - side) // 2
    return np.asarray(im.crop((x0, y0, x0 + side, y0 + side)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=str(VAL), help="color photos to score ('' for none)")
    ap.add_argument("--limit", type=int, default=100, help="an even sample of this many files (0: all)")
    ap.add_argument("--factors", type=int, nargs="+", default=[8, 10, 12, 16, 20, 24])
    ap.add_argument("--temperatures", type=float, nargs="+", default=None,
                    help="annealed-mean temperatures to sweep too (classification models)")
    ap.add_argument("--corrections", type=float, nargs="+", default=None,
                    help="prior corrections to sweep too (classification models)")
    ap.add_argument("--median", action="store_true",
                    help="also decode each (T, correction) by the geometric median of the distribution, not its mean")
    ap.add_argument("--gray", nargs="*", default=[], help="folders of old photos without truth (colorfulness, grid)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "render_factor.md"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    temps = args.temperatures or [model.config.temperature]
    corrections = args.corrections or [getattr(model.config, "prior_correction", 0.0)]
    decodings = [(T, c, e) for e in (("mean", "median") if args.median else ("mean",))
                 for T in temps for c in corrections]
    command = " ".join(["python bench/render_factor.py", f"--model {args.model}", f"--data {args.data}",
                        f"--limit {args.limit}", "--factors", *map(str, args.factors)]
                       + (["--temperatures", *map(str, args.temperatures)] if args.temperatures else [])
                       + (["--corrections", *map(str, args.corrections)] if args.corrections else [])
                       + (["--median"] if args.median else [])
                       + (["--gray", *args.gray] if args.gray else []))
    meta = model.meta if hasattr(model, "meta") else {}
    parts = [f"# Render factor and decoding sweep\n\nModel `{args.model}` ({meta.get('model', '?')}, "
             f"{meta.get('steps', '?')} training steps), measured {time.strftime('%Y-%m-%d')}, command: `{command}`. "
             "*rf x 16* is what the render factor asks for; *working side* is what the network saw (the side of a "
             "square of the same area, mean over the photos), never more than the photo itself has: *at own size* "
             "counts the photos the render factor could not shrink. " + args.note]
    if args.data:
        files = find_images(args.data)
        if args.limit:
            files = files[:: max(1, len(files) // args.limit)][: args.limit]
        photos = [(rgb_to_lab(truth / 255.0), truth) for _, truth in color_truths(files)]
        prior = training_prior()
        floor = [score_rgb(gray_rgb(lab[..., 0]), lab, truth, prior) for lab, truth in photos]
        rows = [row("gray floor | | | ", "", "", mean_scores(floor))]
        for rf in args.factors:
            rows += sweep_factor(model, photos, rf, decodings, prior)
        parts.append(f"## {len(photos)} color photos of {args.data}\n\nAn even sample of {len(files)} files, "
                     "near-gray truths skipped as `tinct evaluate` does.\n\n" + HEADER + "\n" + "\n".join(rows))
    if args.gray:
        files = find_images(*args.gray)
        scans = [load_image(f).L for f in files]
        shown = set(range(0, len(scans), max(1, len(scans) // GRID_PHOTOS))[:GRID_PHOTOS])
        lines, grid = [], []
        for rf in args.factors:
            line, crops = sweep_gray(model, scans, rf)
            lines.append(line)
            grid.append([c for i, c in enumerate(crops) if i in shown])
        grid_path = out.with_name(out.stem + "_grid.jpg")
        image_grid(grid, [f"rf {rf}" for rf in args.factors], grid_path)
        parts.append(f"## {len(scans)} old photos without color originals ({', '.join(args.gray)})\n\n"
                     "No truth to score against: the colorfulness and mean chroma of the outputs, and the grid "
                     f"[{grid_path.name}]({grid_path.name}) (rows: render factors; each tile a {CROP} px crop at "
                     f"full resolution from the centre of one of {len(shown)} of the photos) to judge by eye.\n\n" + GRAY_HEADER + "\n"
                     + "\n".join(lines))
    text = "\n\n".join(parts) + "\n"
    print(text)
    out.write_text(text)


if __name__ == "__main__":
    main()
