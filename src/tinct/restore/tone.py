"""The restoration network's tone stage: a faded print's lost tonal range back, from the photo's own quantiles.

Fading is global (contrast lost, blacks lifted, highlights clipped, a gamma shift), so a monotone curve of L
undoes it. How far to stretch is the hard part: a narrow tonal range may be a faded print or a foggy,
low-contrast scene, and auto levels, which always stretch, take a clean photo to 18.8 dB. ``ToneCurve`` learns
it: a small MLP maps 35 quantiles of the damaged luminance to the coefficients of a Legendre polynomial in L,
applied on top of the input (zero coefficients: the identity).

Why a stage fitted apart (``fit_tone_curve``) and not just the U-Net's own global curve: the trainer shows the
network 8 crops a step, so its curve sees a handful of fades a step, and after 4,100 steps it still stretched
a faded print only part of the way (+2.6 dB on fading alone, where auto levels gain +6.0). Fitted alone on tens
of thousands of (photo, damage) pairs, each scored on a sample of its pixels, the curve learns in minutes on one
core what the whole network had not (``bench/results/restore.md``).

Shapes: ``x`` is the luminance rescaled to [-1, 1] (``L / 50 - 1``), ``(B, 1, H, W)`` float32.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

# dense in the middle, and the extremes where a fade shows (lifted blacks, clipped whites)
TONE_QUANTILES = (0.002, 0.01) + tuple(i / 32 for i in range(1, 32)) + (0.99, 0.998)
_QUANTILE_PIXELS = 65536  # quantiles of a large scan from a regular subsample of about this many pixels


def quantiles(x: torch.Tensor, levels) -> torch.Tensor:
    """``x`` ``(B, 1, H, W)`` -> its quantiles at ``levels`` ``(B, len(levels))`` (the image's tonal range)."""
    step = max(1, int((x.shape[-2] * x.shape[-1] / _QUANTILE_PIXELS) ** 0.5))
    flat = x[..., ::step, ::step].flatten(1)
    q = torch.tensor(levels, dtype=x.dtype, device=x.device)
    return torch.quantile(flat, q, dim=1).T


def legendre(x: torch.Tensor, n: int) -> torch.Tensor:
    """Legendre polynomials P_0 .. P_{n-1} of ``x`` (B, 1, H, W) in [-1, 1] -> (B, n, H, W): a well-conditioned
    basis for a tone curve (its coefficients stay of the same size whatever the degree)."""
    ps = [torch.ones_like(x), x]
    for k in range(1, n - 1):
        ps.append(((2 * k + 1) * x * ps[k] - k * ps[k - 1]) / (k + 1))
    return torch.cat(ps[:n], 1)


def polynomial_curve(x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, 1, ...)`` plus the polynomial with Legendre coefficients ``coef`` ``(B, n)``, as it is (it may
    turn down; ``apply_curve`` is what the stages use)."""
    coef = coef.reshape(*coef.shape, *([1] * (x.dim() - 2)))
    return x + (coef * legendre(x, coef.shape[1])).sum(1, keepdim=True)


# The curve is drawn on this many points of [-1, 1] and read by linear interpolation (0.4 L apart: far finer than
# a degree-5 polynomial bends, and a lookup costs less than the polynomial's basis on every pixel of a scan).
CURVE_POINTS = 257
# No part of the tonal range is squeezed to less than this fraction of its width. Undoing a fade stretches
# (slope > 1); a polynomial left to itself can turn down where it saw few pixels, and did on real prints: the
# white border of scratch_d went from L 99 to 74, and scratch_a's highlights from L 80-90 all to 81-82.
MIN_SLOPE = 0.5


def apply_curve(x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, 1, H, W)`` under the tone curve ``x + sum(coef_k P_k(x))``, ``coef`` ``(B, n)`` Legendre
    coefficients, made monotone: its slope is held at ``MIN_SLOPE`` or more, keeping its value at mid-gray
    (x = 0), so it never darkens a brighter tone below a darker one. Beyond [-1, 1] it shifts like its ends.
    Zero coefficients give ``x`` exactly."""
    grid = torch.linspace(-1.0, 1.0, CURVE_POINTS, dtype=x.dtype, device=x.device)
    step = 2.0 / (CURVE_POINTS - 1)
    curve = polynomial_curve(grid.view(1, 1, -1), coef)[:, 0]
    rise = torch.diff(curve, dim=1).clamp_min(MIN_SLOPE * step)
    mid = CURVE_POINTS // 2
    walked = torch.cat([curve.new_zeros(curve.shape[0], 1), rise.cumsum(1)], 1)
    shift = walked - walked[:, mid:mid + 1] + curve[:, mid:mid + 1] - grid  # the monotone curve minus the identity
    pos = ((x.clamp(-1.0, 1.0) + 1.0) / step).flatten(1)
    lo = pos.floor().clamp(max=CURVE_POINTS - 2)
    frac, lo = pos - lo, lo.long()
    near, far = shift.gather(1, lo), shift.gather(1, lo + 1)
    return x + (near + frac * (far - near)).view_as(x)


class ToneCurve(nn.Module):
    """``forward(x)``: ``x`` ``(B, 1, H, W)`` in [-1, 1] -> the same under the curve its quantiles call for."""

    def __init__(self, degree: int = 5, hidden: int = 128):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(len(TONE_QUANTILES), hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, degree + 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)  # starts as the identity

    def coefficients(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_curve(x, self.coefficients(quantiles(x, TONE_QUANTILES)))


def damaged_samples(L: np.ndarray, rng: np.random.Generator, per_photo: int = 4, pixels: int = 512,
                    clean: float = 0.1, single: float = 0.3, config=None) -> tuple[np.ndarray, ...]:
    """What the curve learns from: ``L`` ``(N, H, W)`` clean luminances in [0, 100], each damaged ``per_photo``
    times (``degrade.training_sample``: clean, one kind alone, or the realistic mix).

    Returns (features ``(M, 35)`` of each damaged photo, ``pixels`` of its values ``(M, pixels)`` and the clean
    values there ``(M, pixels)``), all in [-1, 1] units, M = N x ``per_photo``.
    """
    from .degrade import training_sample  # OpenCV: only when fitting
    feats, xs, ys = [], [], []
    for clean_L in tqdm(L, desc="damaging", unit="img", mininterval=5):
        flat = clean_L.ravel()
        for _ in range(per_photo):
            d = training_sample(clean_L, rng, config, clean, single).L
            idx = rng.integers(0, flat.size, pixels)
            # the features the stage computes when it runs (``ToneCurve.forward``), in [-1, 1] units
            feats.append(quantiles(torch.from_numpy(d)[None, None] / 50.0 - 1.0, TONE_QUANTILES)[0].numpy())
            xs.append(d.ravel()[idx])
            ys.append(flat[idx])
    to_unit = lambda a: np.stack(a).astype(np.float32) / 50.0 - 1.0  # noqa: E731
    return np.stack(feats), to_unit(xs), to_unit(ys)


def fit_tone_curve(curve: ToneCurve, features: np.ndarray, x: np.ndarray, y: np.ndarray, steps: int = 6000,
                   batch: int = 256, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Fit ``curve`` so that its curve takes the damaged pixels ``x`` to the clean ``y`` (L1), the curve chosen
    from ``features`` (``damaged_samples``'s three arrays). Adam, cosine decay. Returns the loss every 100 steps."""
    g = torch.Generator().manual_seed(seed)
    feats, xs, ys = (torch.from_numpy(a) for a in (features, x, y))
    opt = torch.optim.Adam(curve.parameters(), lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    curve.train()
    history, running = [], 0.0
    bar = tqdm(range(steps), desc="fitting the tone curve", unit="step", mininterval=5)
    for step in bar:
        i = torch.randint(0, len(feats), (batch,), generator=g)
        pred = apply_curve(xs[i][:, None, None, :], curve.coefficients(feats[i]))[:, 0, 0]
        loss = (pred - ys[i]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running += float(loss.detach())
        if (step + 1) % 100 == 0:
            history.append(running / 100)
            bar.set_postfix(l1=f"{history[-1] * 50:.2f} L")
            running = 0.0
    curve.eval()
    return history
