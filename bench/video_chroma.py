"""Where does a film lose its chroma? Mean chroma (and AuC) after each step of the film path.

    OMP_NUM_THREADS=1 nice -n 19 python3 bench/video_chroma.py [--frames 60] [--every 5] [--model default ...]

On the first ``--frames`` frames of ../shared/data/video/bedroom, for each model: the network's ab at
working size (render factor 10 and 16, other decodings, the stabiliser, the reference-photo palette
prior), then full-size frames after the recombination (bilinear upsampling, gamut clamp, uint8) and after
an H.264 round trip through the film path's own writer (crf 0: 4:2:0 chroma subsampling only; crf 18:
the film path's setting). The truth goes through the same round trips, so the codec's own loss is known.
Every ``--every``-th frame is scored (the stabiliser sees all of them); working-size rows are compared
with the true ab shrunk to the working size (area average), whose own chroma is the truth there.
Writes bench/results/video_chroma.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from PIL import Image

from tinct.color import rgb_to_lab
from tinct.guided.palette import PaletteOptions, palette_prior, parse_palette, reference_share
from tinct.guided.transfer import load_reference
from tinct.metrics import ab_error, auc
from tinct.models.base import Decoding
from tinct.pipeline import recombine
from tinct.video.colorize import FrameColorizer
from tinct.video.options import DEFAULT_TEMPORAL, EncodeOptions, TemporalOptions
from tinct.video.sink import SegmentWriter
from tinct.video.temporal import Stabilizer
from tinct.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "video" / "bedroom"


def chroma_auc(ab: np.ndarray, true_ab: np.ndarray) -> tuple[float, float]:
    """ab ``(H, W, 2)`` against true ab of the same size -> (mean chroma, AuC %)."""
    lab = np.zeros(ab.shape[:2] + (3,), np.float64)
    true = lab.copy()
    lab[..., 1:], true[..., 1:] = ab, true_ab
    return float(np.hypot(ab[..., 0], ab[..., 1]).mean()), auc(ab_error(lab, true))


def frame_scores(frames, truths_lab) -> tuple[float, float]:
    """RGB uint8 frames against the true Lab frames -> (mean chroma, mean AuC %)."""
    rows = [chroma_auc(rgb_to_lab(f.astype(np.float32) / 255)[..., 1:], t[..., 1:]) for f, t in zip(frames, truths_lab)]
    return tuple(float(np.mean(c)) for c in zip(*rows))


def h264_round_trip(frames: list[np.ndarray], crf: int, tmp: Path) -> list[np.ndarray]:
    """Encode with the film path's writer (BT.709, 4:2:0) at ``crf``; decode as bench/video.py does."""
    dest = tmp / f"rt{crf}.mp4"
    h, w = frames[0].shape[:2]
    writer = SegmentWriter(dest, w, h, Fraction(30), EncodeOptions(crf=crf))
    for f in frames:
        writer.write(f)
    writer.finish()
    with av.open(str(dest)) as c:
        out = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    dest.unlink()
    return out


def reference_variants(model, reference: Path) -> dict[str, dict]:
    """Ways the reference photo can steer the network: ``FrameColorizer.predict`` keyword arguments."""
    centers = model.bin_centers.float()
    prior = palette_prior(centers, parse_palette(str(reference)), PaletteOptions())
    return {"palette prior (6 k-means colors), before the temperature (the old film --reference, --palette)":
            {"prior": prior},
            "color distribution matched (--reference now)": {"share": reference_share(centers, load_reference(reference))}}


def run_model(name, Ls, truths_lab, scored, reference, tmp, rows) -> None:
    model = load_model(name)
    H, W = Ls[0].shape
    small_truth = {}

    def true_small(h, w):
        if (h, w) not in small_truth:
            small_truth[(h, w)] = [cv2.resize(truths_lab[i][..., 1:].astype(np.float32), (w, h),
                                              interpolation=cv2.INTER_AREA) for i in scored]
        return small_truth[(h, w)]

    def net_ab(rf=10, decoding=None, temporal=0.0, **guide):
        """Working-size ab of the scored frames ``[(2, h, w)]`` (all frames go through when stabilising)."""
        net = FrameColorizer(model, H, W, rf, decoding)
        stab = Stabilizer(TemporalOptions(strength=temporal))
        order = range(len(Ls)) if temporal > 0 else scored
        out = {}
        order = list(order)
        for j in range(0, len(order), 4):
            idx = order[j:j + 4]
            small, ab = net.predict([Ls[i] for i in idx],
                                    **{k: v[None].expand(len(idx), -1) for k, v in guide.items()})
            for i, s, a in zip(idx, small, ab):
                a = stab.step(s, a) if temporal > 0 else a
                if i in scored:
                    out[i] = a
        return [out[i] for i in scored], (net.h, net.w)

    def add(step, abs_, size):
        t = true_small(*size)
        c, a = zip(*[chroma_auc(ab.transpose(1, 2, 0), tt) for ab, tt in zip(abs_, t)])
        tc = float(np.mean([np.hypot(tt[..., 0], tt[..., 1]).mean() for tt in t]))
        rows.append((name, step, f"{size[1]}x{size[0]}", np.mean(c), np.mean(a), tc))
        print(" | ".join(map(str, rows[-1])), flush=True)

    def add_full(step, frames):
        c, a = frame_scores(frames, [truths_lab[i] for i in scored])
        rows.append((name, step, f"{W}x{H}", c, a, None))
        print(" | ".join(map(str, rows[-1])), flush=True)

    ab10, size = net_ab()
    add("render factor 10, frame by frame (decoded as configured)", ab10, size)
    add("render factor 16, frame by frame", *net_ab(rf=16))
    cfg = model.config
    for T, pc in ((cfg.temperature, 0.0), (1.0, cfg.prior_correction), (0.2, cfg.prior_correction)):
        add(f"render factor 10, frame by frame, T {T:g}, prior correction {pc:g}", *net_ab(decoding=Decoding(T, pc)))
    stab, size = net_ab(temporal=DEFAULT_TEMPORAL)
    add(f"render factor 10, stabilised {DEFAULT_TEMPORAL:g}", stab, size)
    for label, guide in reference_variants(model, reference).items():
        add(f"stabilised + reference photo: {label}", *net_ab(temporal=DEFAULT_TEMPORAL, **guide))
    full = [recombine(Ls[i], torch.from_numpy(a)[None]) for i, a in zip(scored, ab10)]
    add_full("render factor 10, frame by frame: upsampled, gamut clamp, uint8", full)
    full = [recombine(Ls[i], torch.from_numpy(a)[None]) for i, a in zip(scored, stab)]
    add_full(f"stabilised {DEFAULT_TEMPORAL:g}: upsampled, gamut clamp, uint8", full)
    add_full("  + H.264 crf 0 (4:2:0 only)", h264_round_trip(full, 0, tmp))
    add_full("  + H.264 crf 18 (the film path)", h264_round_trip(full, 18, tmp))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--model", nargs="+", default=["default", "checkpoints/default-candidate.safetensors"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "video_chroma.md"))
    args = ap.parse_args()
    files = sorted(CLIP.glob("*.jpg"))
    if len(files) < args.frames:
        sys.exit(f"need {args.frames} frames in {CLIP}")
    reference = files[-1]
    scored = list(range(0, args.frames, args.every))
    truths, truths_lab, Ls = {}, {}, []
    for i, f in enumerate(files[:args.frames]):
        rgb = np.asarray(Image.open(f).convert("RGB"))
        lab = rgb_to_lab(rgb.astype(np.float32) / 255)
        Ls.append(np.ascontiguousarray(lab[..., 0], dtype=np.float32))
        if i in scored:
            truths[i], truths_lab[i] = rgb, lab
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="tinct-video-chroma-") as tmp:
        tmp = Path(tmp)
        tl = [truths_lab[i] for i in scored]
        for step, frames in (("truth (JPEG frames)", [truths[i] for i in scored]),
                             ("truth + H.264 crf 0 (4:2:0 only)", h264_round_trip([truths[i] for i in scored], 0, tmp)),
                             ("truth + H.264 crf 18", h264_round_trip([truths[i] for i in scored], 18, tmp))):
            rows.append(("truth", step, "960x540", *frame_scores(frames, tl), None))
            print(" | ".join(map(str, rows[-1])), flush=True)
        for name in args.model:
            run_model(name, Ls, truths_lab, scored, reference, tmp, rows)
    lines = ["| model | step | size | mean chroma | AuC % | true chroma at that size |", "|---|---|---|---|---|---|"]
    for name, step, size, c, a, tc in rows:
        lines.append(f"| {name} | {step} | {size} | {c:.2f} | {a:.2f} | {'' if tc is None else f'{tc:.2f}'} |")
    text = (f"# Where a film loses chroma\n\n`OMP_NUM_THREADS=1 nice -n 19 python3 bench/video_chroma.py --frames "
            f"{args.frames} --every {args.every}` ({time.strftime('%Y-%m-%d %H:%M')}).\n\nFirst {args.frames} frames "
            f"of ../shared/data/video/bedroom (960x540), every {args.every}th scored; each frame's true L goes to the "
            f"network (no gray H.264 before it). Reference photo: the clip's frame {reference.stem}.\n\n"
            + "\n".join(lines) + "\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
