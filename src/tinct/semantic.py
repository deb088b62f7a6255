"""Semantic measures: does an ImageNet classifier still see what the photo shows, once colorized?

Two measures with the EfficientNet-Lite2 ImageNet classifier of the ``tinct[pretrained]``
extra (a network tinct's models were not trained against, so it judges them fairly):

- **top-1 accuracy** on the truths, the gray inputs and each model's colorizations, for the
  photos whose ImageNet class is known from a synset id (``n01440764``) in their folder or
  file name: Zhang et al. 2016's semantic interpretability test (their VGG went from 52.7 %
  on gray to 56.0 % on their colorizations, 68.3 % on the truths). Wrong colors can push a
  colorization below gray.
- **FD-Lite2**: the Frechet distance between Gaussians fitted to the classifier's pooled
  features (1280-d, the mean of its head's output) of the truths and of a model's outputs
  (or of the gray inputs, the floor), as FID does with Inception features. It is *not* FID
  and must not be called that: the features are Lite2's. With fewer photos than 1280 the
  covariances are rank-deficient and the value is biased upwards by the small sample, so
  FD-Lite2 values are comparable only between sets of the same photos (same count).

Preprocessing is the classifier's own (TensorFlow's EfficientNet evaluation): bicubic resize
of the short side to ``resolution + 32``, center crop ``resolution`` (260 for Lite2), RGB
scaled as ``(x * 255 - 127) / 128``.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import linalg

from .errors import TinctError

SEMANTIC_VARIANT = "efficientnet-lite2"
FD_NAME = "FD-Lite2"
WNIDS_FILE = Path(__file__).parent / "weights" / "imagenet_wnids.txt"
_SYNSET = re.compile(r"(?<![0-9A-Za-z])n\d{8}(?![0-9])")


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k synset ids in class-index order (sorted), shipped as package data."""
    wnids = tuple(WNIDS_FILE.read_text().split())
    if len(wnids) != 1000:
        raise TinctError(f"{WNIDS_FILE}: expected 1000 ImageNet synset ids, found {len(wnids)}")
    return wnids


def imagenet_class(path: str | Path) -> int | None:
    """ImageNet class index of a photo from a synset id in its file or folder names (nearest first); else None.

    ``val/n01440764/ILSVRC2012_val_00009111.JPEG`` -> 0 (tench); ``n02102040_1160.JPEG`` -> 217.
    Ids that are not among the 1000 ImageNet-1k classes are ignored.
    """
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    for part in reversed(Path(path).parts):
        for wnid in _SYNSET.findall(part):
            if wnid in index:
                return index[wnid]
    return None


def load_classifier(variant: str = SEMANTIC_VARIANT):
    """The ImageNet ``EfficientNetLite`` classifier (eval mode, CPU); a one-line TinctError names the extra if absent.
    """
    from .pretrained import imagenet_classifier
    return imagenet_classifier(variant)


def classifier_input(rgb: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 sRGB ``(H, W, 3)`` -> float32 ``(3, resolution, resolution)`` in [0, 1]: short side to
    ``resolution + 32`` (bicubic), then the center crop the classifier was evaluated on."""
    im = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    w, h = im.size
    scale = (resolution + 32) / min(w, h)
    w2, h2 = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    im = im.resize((w2, h2), Image.Resampling.BICUBIC)
    left, top = (w2 - resolution) // 2, (h2 - resolution) // 2
    crop = np.asarray(im.crop((left, top, left + resolution, top + resolution)), dtype=np.float32) / 255.0
    return torch.from_numpy(crop).permute(2, 0, 1).contiguous()


@torch.no_grad()
def features_and_logits(net, rgbs: list[np.ndarray], batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features ``(N, 1280)`` float64 and ImageNet logits ``(N, 1000)`` float32 of uint8 RGB photos."""
    from .models.backbones import LITE_RESOLUTION
    resolution = LITE_RESOLUTION[net.variant]
    feats, logits = [], []
    for i in range(0, len(rgbs), batch):
        x = torch.stack([classifier_input(rgb, resolution) for rgb in rgbs[i:i + batch]])
        pooled = net(net.rgb_input(x))[-1].mean(dim=(2, 3))  # what net.classify feeds its _fc
        feats.append(pooled.double().numpy())
        logits.append(net._fc(pooled).numpy())
    if not feats:
        return np.zeros((0, 1280)), np.zeros((0, 1000), np.float32)
    return np.concatenate(feats), np.concatenate(logits)


def top1_accuracy(net, rgbs: np.ndarray | list[np.ndarray], labels: np.ndarray) -> float:
    """% of uint8 RGB photos ``(N, H, W, 3)`` whose top ImageNet class is ``labels`` ``(N,)`` int (class indices)."""
    _, logits = features_and_logits(net, list(rgbs))
    return 100.0 * float(np.mean(logits.argmax(1) == np.asarray(labels))) if len(logits) else float("nan")


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                                eps: float = 1e-6) -> float:
    """Frechet distance of N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))``.

    ``sqrtm`` of the product of two PSD matrices has real, non-negative eigenvalues; round-off
    gives it tiny imaginary parts (dropped: the real part is taken). If it fails (near-singular
    covariances can give inf/nan or a root whose square is off by more than 1e-4 relative),
    ``eps * I`` is added to both covariances and it is retried.
    Round-off can leave the result a hair below zero; it is clamped at 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if covmean is None:
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset), tolerance=np.inf)
    if covmean is None:
        raise TinctError("Frechet distance: the covariance product has no finite square root")
    covmean = np.real(covmean)
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def _sqrtm(product: np.ndarray, tolerance: float = 1e-4) -> np.ndarray | None:
    """``scipy.linalg.sqrtm(product)`` if finite and ``|X X - A|_F / |A|_F <= tolerance``, else None."""
    with warnings.catch_warnings():
        # rank-deficient covariances (fewer photos than dimensions) are the normal case here: scipy
        # warns that the matrix is singular; the residual below says whether the root is usable
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(product)
    if not np.isfinite(root).all():
        return None
    norm = np.linalg.norm(product)
    if norm > 0 and np.linalg.norm(root @ root - product) / norm > tolerance:
        return None
    return root


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``a (N, D)`` and ``b (M, D)``; nan if N or M < 2.

    When N + M < D both covariances live in the span of the two centered sets, a subspace of
    at most N + M dimensions: they are expressed in an orthonormal basis of it first. The
    distance is unchanged (traces and the square root's trace are invariant under that change
    of basis; the covariances are zero outside it), and ``sqrtm`` works on (N + M)^2 instead of
    D^2 entries (1280-d: about a minute of CPU per call in full, under a second reduced).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise TinctError(f"Frechet distance: feature sets of shapes {a.shape} and {b.shape} do not match")
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu1, mu2 = a.mean(0), b.mean(0)
    ca, cb = a - mu1, b - mu2
    if len(a) + len(b) < a.shape[1]:
        basis, _ = np.linalg.qr(np.concatenate([ca, cb]).T)  # (D, N + M), orthonormal columns
        ca, cb = ca @ basis, cb @ basis
    sigma1 = ca.T @ ca / (len(a) - 1)
    sigma2 = cb.T @ cb / (len(b) - 1)
    mean_term = float((mu1 - mu2) @ (mu1 - mu2))
    # the means' term in full D; the covariance terms in the (possibly reduced) basis
    zero = np.zeros(sigma1.shape[0])
    return mean_term + frechet_distance_from_stats(zero, sigma1, zero, sigma2, eps)


@dataclass
class SemanticTally:
    """Accumulates, photo by photo, what ``tinct evaluate`` needs for the semantic measures.

    ``add(path, {"truth": rgb, name: rgb, ...})`` classifies the photo's versions in one batch;
    ``summary()`` gives per version ``top1`` (% of the photos whose class is known),
    ``top1_images`` (how many those are) and ``fd_lite2`` (against the truths).
    """
    net: object
    reference: str = "truth"
    features: dict[str, list[np.ndarray]] = field(default_factory=dict)
    correct: dict[str, list[bool]] = field(default_factory=dict)

    def add(self, path: str | Path, versions: dict[str, np.ndarray]) -> dict[str, float]:
        """Classify one photo's versions (uint8 RGB each); returns name -> 1.0/0.0 top-1 hit, nan if class unknown."""
        label = imagenet_class(path)
        names = list(versions)
        feats, logits = features_and_logits(self.net, [versions[n] for n in names])
        hits = {}
        for name, f, lg in zip(names, feats, logits):
            self.features.setdefault(name, []).append(f)
            if label is None:
                hits[name] = float("nan")
            else:
                hit = bool(int(np.argmax(lg)) == label)
                self.correct.setdefault(name, []).append(hit)
                hits[name] = float(hit)
        return hits

    def summary(self) -> dict[str, dict[str, float]]:
        ref = np.stack(self.features[self.reference]) if self.reference in self.features else None
        out = {}
        for name, feats in self.features.items():
            hits = self.correct.get(name, [])
            fd = 0.0 if name == self.reference or ref is None else frechet_distance(ref, np.stack(feats))
            out[name] = {"top1": 100.0 * float(np.mean(hits)) if hits else float("nan"),
                         "top1_images": len(hits), "fd_lite2": fd if ref is not None else float("nan")}
        return out
