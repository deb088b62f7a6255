"""Training data: image folders -> a cached uint8 array -> random Lab crops.

Decoding JPEGs is most of a CPU epoch, so every photo is decoded once,
resized (short side ``cache_size``, centre-cropped square) and kept in a
``.npy`` cache next to the run. Crops are then cut from that array in torch,
in batches. Photos that are already (nearly) gray are skipped: they would teach
the network that gray is a safe answer.
"""
from __future__ import annotations

import hashlib
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from tqdm import tqdm

from .color import rgb_to_lab_t
from .errors import TinctError
from .io import IMAGE_EXTENSIONS, atomic_path, upright

def find_images(*dirs: str | os.PathLike) -> list[Path]:
    """All image files under the given folders (recursive), sorted for determinism."""
    files = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise TinctError(f"not a folder: {d}")
        files += [p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files)


def split_files(files: list[Path], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Deterministic train/val split by a hash of each file name: adding photos never moves old ones."""
    train, val = [], []
    for f in files:
        h = zlib.crc32(f"{seed}:{f.parent.name}/{f.name}".encode()) / 2 ** 32
        (val if h < val_fraction else train).append(f)
    return train, val


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk 2003 colorfulness of an RGB image ``(H, W, 3)`` in 0..255."""
    rgb = rgb.astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _load_square(args) -> np.ndarray | None:
    path, size = args
    try:
        with Image.open(path) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            im = upright(im, str(path)).convert("RGB")
            im = ImageOps.fit(im, (size, size), Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except Exception:  # unreadable files are skipped, not fatal, in a training set
        return None


@dataclass
class ImageCache:
    """``images``: ``(N, S, S, 3)`` uint8 RGB; ``files``: the source of each row."""
    images: np.ndarray
    files: list[str]

    def __len__(self) -> int:
        return len(self.images)


def build_cache(files: list[Path], size: int, cache_dir: str | os.PathLike, min_colorfulness: float = 5.0,
                workers: int = 2, desc: str = "caching") -> ImageCache:
    """Decode ``files`` once into a square uint8 array, skipping near-gray photos; reuse it if cached."""
    key = hashlib.sha1(f"{size}:{min_colorfulness}:".encode() + "\n".join(map(str, files)).encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir)
    arr_path, list_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.txt"
    if arr_path.exists() and list_path.exists():
        return ImageCache(np.load(arr_path, mmap_mode="r", allow_pickle=False), list_path.read_text().splitlines())
    cache_dir.mkdir(parents=True, exist_ok=True)
    keep_imgs, keep_files = [], []
    with ProcessPoolExecutor(max(1, workers)) as pool:
        results = pool.map(_load_square, [(f, size) for f in files], chunksize=32)
        for f, img in tqdm(zip(files, results), total=len(files), desc=desc, unit="img"):
            if img is not None and colorfulness(img) >= min_colorfulness:
                keep_imgs.append(img)
                keep_files.append(str(f))
    if not keep_imgs:
        raise TinctError("no usable color photos found in the training folders")
    images = np.stack(keep_imgs)
    with atomic_path(arr_path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, images, allow_pickle=False)
    with atomic_path(list_path) as tmp:
        Path(tmp).write_text("\n".join(keep_files))
    return ImageCache(images, keep_files)


def to_lab_batch(rgb_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, H, W, 3)`` uint8 -> L ``(B, 1, H, W)`` in [0, 100], ab ``(B, 2, H, W)``."""
    lab = rgb_to_lab_t(rgb_uint8.permute(0, 3, 1, 2).float() / 255.0)
    return lab[:, :1], lab[:, 1:]


def random_crops(rgb_uint8: torch.Tensor, out_size: int, generator: torch.Generator,
                 scale: tuple[float, float] = (0.3, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Random resized crops with horizontal flips, batched through one ``grid_sample``.

    ``(B, S, S, 3)`` uint8 -> ``(B, out_size, out_size, 3)`` uint8.
    """
    B = rgb_uint8.shape[0]
    area = torch.empty(B).uniform_(*scale, generator=generator)
    log_r = torch.empty(B).uniform_(float(np.log(ratio[0])), float(np.log(ratio[1])), generator=generator)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(B, generator=generator) * 2 - 1) * (1 - w)
    cy = (torch.rand(B, generator=generator) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(B, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (B, 3, out_size, out_size), align_corners=False)
    x = rgb_uint8.permute(0, 3, 1, 2).float()
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def center_resize(rgb_uint8: torch.Tensor, out_size: int) -> torch.Tensor:
    """The whole square cached photo resized: ``(B, S, S, 3)`` -> ``(B, out, out, 3)`` uint8."""
    x = rgb_uint8.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(out_size, out_size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
