"""Where a restored photo's remaining error lies: in its tones, its uneven exposure, or the local damage.

    OMP_NUM_THREADS=2 python3 bench/restore_headroom.py --limit 150 [--model FILE]

Val photos at 128 px, damaged by the realistic mix (the seeds of ``bench/restore.py``), restored by the whole flow
(``tinct.restore.restore_luminance``). Then two oracles that see the clean truth, which no restorer can:

- tone oracle: the best degree-5 polynomial of the restored L fitted to the truth (a global tone curve);
- exposure oracle: the best fit of the truth by the restored L, its square and L times a quadratic of the
  position (a smooth gain and offset field on top of a curve).

The gap between the flow and an oracle is what a better estimate of that kind could gain at most. Also the share
of the squared error inside the true damage mask (scratches, dust, cracks) and the spread of the per-photo gains.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from restore import VAL, damaged, gray_L  # noqa: E402

from tinct.data import find_images  # noqa: E402
from tinct.restore.metrics import psnr_l  # noqa: E402
from tinct.restore.run import RestoreOptions, load_restorer, restore_luminance  # noqa: E402


def tone_oracle(out: np.ndarray, truth: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        c = np.polyfit(out.ravel(), truth.ravel(), 5)
    return np.clip(np.polyval(c, out), 0, 100)


def exposure_oracle(out: np.ndarray, truth: np.ndarray) -> np.ndarray:
    H, W = out.shape
    v, u = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None] - 0.5
    field = [np.ones_like(out), u, v, u * u, v * v, u * v]
    A = np.stack([b.ravel() for b in field] + [(out * b).ravel() for b in field] + [(out * out).ravel()], 1)
    c, *_ = np.linalg.lstsq(A, truth.ravel(), rcond=None)
    return np.clip(A @ c, 0, 100).reshape(out.shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--model", default=None, help="restoration model file (default: the shipped one)")
    args = ap.parse_args()
    net = load_restorer(args.model)
    rows = []
    for i, f in enumerate(tqdm(sorted(find_images(VAL))[:args.limit], unit="img", mininterval=30)):
        L = gray_L(f, args.size)
        d = damaged(L, "mix", i)
        out, _ = restore_luminance(d.L, RestoreOptions(), net)
        err = (out - L) ** 2
        rows.append([psnr_l(d.L, L), psnr_l(out, L), psnr_l(tone_oracle(out, L), L),
                     psnr_l(exposure_oracle(out, L), L), err[d.mask].sum(), err.sum()])
    r = np.array(rows)
    print(f"| {len(r)} photos, mix | input | whole flow | tone oracle | exposure oracle |")
    print("|---|---|---|---|---|")
    print("| mean PSNR dB | " + " | ".join(f"{v:.2f}" for v in r[:, :4].mean(0)) + " |")
    print(f"\nsquared error inside the true damage mask: {r[:, 4].sum() / r[:, 5].sum():.1%} of the whole")
    q = np.percentile(r[:, 1] - r[:, 0], [10, 25, 50, 75, 90])
    print("per-photo gain, percentiles 10/25/50/75/90: " + " / ".join(f"{v:+.2f}" for v in q) + " dB")


if __name__ == "__main__":
    main()
