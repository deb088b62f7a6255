"""Where a restored photo's remaining error lies: in its tones, its uneven exposure, or the local damage.

    OMP_NUM_THREADS=2 python3 bench/restore_headroom.py --limit 150 [--model FILE] [--semantic]

Val photos at 128 px, damaged by the realistic mix (the seeds of ``bench/restore.py``), restored by the whole flow
(``tinct.restore.restore_luminance``). Then two oracles that see the clean truth, which no restorer can:

- tone oracle: the best degree-5 polynomial of the restored L fitted to the truth (a global tone curve);
- exposure oracle: the best fit of the truth by the restored L, its square and L times a quadratic of the
  position (a smooth gain and offset field on top of a curve).

The gap between the flow and an oracle is what a better estimate of that kind could gain at most. Then how much of
it the photo itself tells: a gain and offset on the restored L, predicted by a ridge regression from the quantiles
and spread of the damaged and the restored L (5-fold cross-validated, fitted to the truth-fitted gain and offset):
a tone stage after the network could gain at least that (applied in full, and half-way: a noisy prediction
gains most when shrunk toward the network's own tones). With ``--semantic``, the same fit also from what the
photo shows: the leading principal components of the EfficientNet-Lite2 ImageNet features of the restored photo
(needs ``tinct[pretrained]``), to ask whether knowing the scene tells how far to stretch its tones. Also the share
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

from tinct.color import gray_rgb  # noqa: E402
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


_QUANTILES = (0.5, 2, 5, 10, 25, 50, 75, 90, 95, 98, 99.5)


def tone_features(damaged_L: np.ndarray, out: np.ndarray) -> np.ndarray:
    """What a photo says about its lost tones: quantiles and spread of the damaged and the restored L."""
    return np.concatenate([np.percentile(out, _QUANTILES), np.percentile(damaged_L, _QUANTILES),
                           [out.std(), damaged_L.std()]])


def predicted_tone(features: np.ndarray, outs: list, truths: list, ridge: float = 10.0, folds: int = 5,
                   share: float = 1.0) -> list:
    """Each photo's restored L under a gain and offset predicted from ``features`` (one row per photo) by a ridge
    regression fitted on the other folds' truth-fitted gains and offsets; ``share`` < 1 moves each photo only that
    part of the way from the restored L to its prediction."""
    target = np.array([np.polyfit(o.ravel(), t.ravel(), 1) for o, t in zip(outs, truths)])
    X = (features - features.mean(0)) / (features.std(0) + 1e-9)
    X = np.c_[X, np.ones(len(X))]
    penalty = ridge * np.eye(X.shape[1])
    penalty[-1, -1] = 0  # the mean gain and offset are not shrunk
    fold = np.arange(len(X)) % folds
    pred = np.zeros_like(target)
    for k in range(folds):
        fit = fold != k
        w = np.linalg.solve(X[fit].T @ X[fit] + penalty, X[fit].T @ target[fit])
        pred[~fit] = X[~fit] @ w
    return [np.clip(o + share * (a * o + b - o), 0, 100) for (a, b), o in zip(pred, outs)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--model", default=None, help="restoration model file (default: the shipped one)")
    ap.add_argument("--semantic", action="store_true", help="also predict the tone from ImageNet features")
    args = ap.parse_args()
    net = load_restorer(args.model)
    rows, features, outs, truths = [], [], [], []
    for i, f in enumerate(tqdm(sorted(find_images(VAL))[:args.limit], unit="img", mininterval=30)):
        L = gray_L(f, args.size)
        d = damaged(L, "mix", i)
        out, _ = restore_luminance(d.L, RestoreOptions(), net)
        err = (out - L) ** 2
        rows.append([psnr_l(d.L, L), psnr_l(out, L), psnr_l(tone_oracle(out, L), L),
                     psnr_l(exposure_oracle(out, L), L), err[d.mask].sum(), err.sum()])
        features.append(tone_features(d.L, out))
        outs.append(out)
        truths.append(L)
    r = np.array(rows)
    predicted = [np.mean([psnr_l(p, t) for p, t in zip(predicted_tone(np.array(features), outs, truths, share=s),
                                                        truths)]) for s in (1.0, 0.5)]
    print(f"| {len(r)} photos, mix | input | whole flow | tone oracle | exposure oracle | tone predicted (CV) "
          "| half of it |")
    print("|---|---|---|---|---|---|---|")
    print("| mean PSNR dB | " + " | ".join(f"{v:.2f}" for v in [*r[:, :4].mean(0), *predicted]) + " |")
    print(f"\nsquared error inside the true damage mask: {r[:, 4].sum() / r[:, 5].sum():.1%} of the whole")
    q = np.percentile(r[:, 1] - r[:, 0], [10, 25, 50, 75, 90])
    print("per-photo gain, percentiles 10/25/50/75/90: " + " / ".join(f"{v:+.2f}" for v in q) + " dB")
    if args.semantic:
        print_semantic_tone(np.array(features), outs, truths)


def print_semantic_tone(tone: np.ndarray, outs: list, truths: list) -> None:
    """The tone predicted (CV) from the quantiles alone, from the ImageNet features' leading principal components
    alone, and from both, at three ridge strengths."""
    from tinct.semantic import features_and_logits, load_classifier
    content, _ = features_and_logits(load_classifier(), [gray_rgb(o) for o in outs])
    content -= content.mean(0)
    U, S, _ = np.linalg.svd(content, full_matrices=False)
    print("\n| tone predicted (CV) from | ridge 10 | ridge 100 | ridge 1000 |\n|---|---|---|---|")
    for name, X in [("quantiles", tone), *[(f"ImageNet features, {k} components", U[:, :k] * S[:k]) for k in (8, 32)],
                    *[(f"quantiles + {k} components", np.c_[tone, U[:, :k] * S[:k]]) for k in (8, 32)]]:
        cells = [np.mean([psnr_l(p, t) for p, t in zip(predicted_tone(X, outs, truths, ridge=r), truths)])
                 for r in (10, 100, 1000)]
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")


if __name__ == "__main__":
    main()
