"""Several colorizations of one photo from a model with noise inputs (dcgan).

``tinct colorize --samples K`` writes ``NAME_0 .. NAME_{K-1}`` beside where
``NAME`` would go, sample k drawn with the model's noise seed k (so a rerun
gives the same K images and skips finished ones).
"""
from __future__ import annotations

import numpy as np
import torch

from .batch import Job, colorize_paths
from .errors import TinctError
from .pipeline import ColorizeOptions, predict_ab


def require_stochastic(model) -> None:
    if not getattr(model, "stochastic", False):
        raise TinctError(f"--samples needs a model with noise inputs (dcgan); {model.name} gives one answer")


def sample_jobs(jobs: list[Job], k: int) -> list[list[Job]]:
    """For each sample index, the jobs with ``_k`` added to every output name."""
    return [[Job(j.src, j.dest.with_name(f"{j.dest.stem}_{i}{j.dest.suffix}")) for j in jobs] for i in range(k)]


def colorize_samples(model, jobs: list[Job], options: ColorizeOptions, k: int, overwrite: bool = False) -> int:
    """Write ``k`` colorizations of every job; returns the number of failed outputs."""
    require_stochastic(model)
    failed = 0
    for i, batch in enumerate(sample_jobs(jobs, k)):
        model.sample_seed = i
        failed += colorize_paths(model, batch, options, overwrite=overwrite)
    model.sample_seed = 0
    return failed


def sample_ab(model, L: np.ndarray, k: int, render_factor: int) -> list[torch.Tensor]:
    """``k`` chroma predictions ``(1, 2, h, w)`` of one ``L`` ``(H, W)``, seeds 0..k-1."""
    require_stochastic(model)
    out = []
    for i in range(k):
        model.sample_seed = i
        out.append(predict_ab(model, L, render_factor))
    model.sample_seed = 0
    return out


def mean_pairwise_distance(abs_: list[torch.Tensor]) -> float:
    """Diversity of samples: mean over pairs of the mean per-pixel Euclidean ab distance (Lab units)."""
    if len(abs_) < 2:
        raise ValueError("need at least two samples")
    d = [float(torch.linalg.vector_norm(a - b, dim=1).mean()) for i, a in enumerate(abs_) for b in abs_[i + 1:]]
    return float(np.mean(d))
