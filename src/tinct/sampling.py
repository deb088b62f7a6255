"""Several colorizations of one photo from a model with noise inputs (dcgan).

``tinct colorize --samples K`` writes ``NAME_0 .. NAME_{K-1}`` beside where
``NAME`` would go, sample k drawn with noise seed k (so a rerun gives the same K
images and skips finished ones). The seed is passed with each call
(``ColorizeOptions.sample``), never stored in the model, so a model shared by
threads can be sampled by all of them at once.
"""
from __future__ import annotations

import numpy as np
import torch

from .batch import Job
from .errors import TinctError
from .pipeline import predict_ab


def require_stochastic(model) -> None:
    if not getattr(model, "stochastic", False):
        raise TinctError(f"--samples needs a model with noise inputs (dcgan); {model.name} gives one answer")


def sample_jobs(jobs: list[Job], k: int) -> list[Job]:
    """Each job ``k`` times, sample ``i`` written to the output name with ``_i`` added (samples of a photo together)."""
    return [Job(j.src, j.dest.with_name(f"{j.dest.stem}_{i}{j.dest.suffix}"), sample=i) for j in jobs for i in range(k)]


def sample_ab(model, L: np.ndarray, k: int, render_factor: int) -> list[torch.Tensor]:
    """``k`` chroma predictions ``(1, 2, h, w)`` of one ``L`` ``(H, W)``, seeds 0..k-1."""
    require_stochastic(model)
    return [predict_ab(model, L, render_factor, sample=i) for i in range(k)]


def mean_pairwise_distance(abs_: list[torch.Tensor]) -> float:
    """Diversity of samples: mean over pairs of the mean per-pixel Euclidean ab distance (Lab units)."""
    if len(abs_) < 2:
        raise ValueError("need at least two samples")
    d = [float(torch.linalg.vector_norm(a - b, dim=1).mean()) for i, a in enumerate(abs_) for b in abs_[i + 1:]]
    return float(np.mean(d))
