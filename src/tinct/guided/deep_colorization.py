"""Deep Colorization (Cheng, Yang & Sheng, ICCV 2015) at small scale.

Per pixel, a descriptor of its neighbourhood's luminance; a small fully
connected network maps it to chroma; a joint bilateral filter guided by the
luminance then cleans the per-pixel noise while keeping chroma edges on
luminance edges (the paper's refinement step).

Descriptor (``FEATURE_DIMS`` = 103 numbers, from L/100 at the working size):
- low level: the 7x7 patch of luminance around the pixel (49), as in the paper;
- mid level: DAISY (Tola et al.; scikit-image, radius 8, 2 rings x 4
  histograms x 4 orientations = 36) on a 2-px grid, bilinearly upsampled;
  Gabor magnitudes at 2 frequencies x 4 orientations (8); local mean and std
  over 5, 11 and 21 px windows (6);
- a stand-in for the paper's semantic labels, which need a scene parser we do
  not have: the photo's mean and std luminance and the pixel's relative
  position (4).
The network (103 -> 128 -> 128 -> 128 -> 2, ReLU, L2 loss on ab/110, as the
paper's three hidden layers) is trained by ``train_deep_colorization`` on
pixels sampled from the shared training photos; the shipped weights are
``weights/_deep_colorization.safetensors`` (the leading underscore keeps it out
of the colorization model list: it is not a ``ColorModel``).

Everything runs at a working size of about ``work_side``^2 pixels (features
are scale-dependent, so it is the training size, not the render factor); the
chroma is upsampled to the photo by the pipeline's ``recombine``.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..color import AB_SCALE
from ..errors import TinctError
from ..io import atomic_path

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "_deep_colorization.safetensors"
KIND = "tinct-deep-colorization"
PATCH = 7
DAISY = dict(step=2, radius=8, rings=2, histograms=4, orientations=4)
GABOR_FREQUENCIES = (0.25, 0.1)
GABOR_ORIENTATIONS = 4
STAT_WINDOWS = (5, 11, 21)
FEATURE_DIMS = PATCH * PATCH + 36 + len(GABOR_FREQUENCIES) * GABOR_ORIENTATIONS + 2 * len(STAT_WINDOWS) + 4


@dataclass
class DeepColorizationConfig:
    work_side: int = 256          # working size: about work_side^2 pixels
    hidden: int = 128
    layers: int = 3               # hidden layers
    bilateral_radius: int = 5     # joint bilateral refinement: window radius in px
    bilateral_sigma_space: float = 3.0
    bilateral_sigma_range: float = 6.0   # in L units


def work_shape(H: int, W: int, side: int) -> tuple[int, int]:
    """(h, w) with the photo's aspect and about side^2 pixels (never larger than the photo, >= 16 px)."""
    s = min(1.0, side / math.sqrt(H * W))
    return max(16, int(round(H * s))), max(16, int(round(W * s)))


def resize_L(L: np.ndarray, h: int, w: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(L, np.float32))[None, None]
    shrink = h < L.shape[0] or w < L.shape[1]
    return F.interpolate(t, size=(h, w), mode="bilinear", antialias=shrink, align_corners=False)[0, 0].numpy()


def _gabor_bank() -> torch.Tensor:
    from skimage.filters import gabor_kernel
    kernels = [gabor_kernel(f, theta=np.pi * i / GABOR_ORIENTATIONS)
               for f in GABOR_FREQUENCIES for i in range(GABOR_ORIENTATIONS)]
    size = max(k.shape[0] for k in kernels)
    bank = np.zeros((2 * len(kernels), 1, size, size), np.float32)
    for i, k in enumerate(kernels):
        o = (size - k.shape[0]) // 2
        bank[2 * i, 0, o:o + k.shape[0], o:o + k.shape[1]] = k.real
        bank[2 * i + 1, 0, o:o + k.shape[0], o:o + k.shape[1]] = k.imag
    return torch.from_numpy(bank)


def pixel_features(L: np.ndarray) -> np.ndarray:
    """Descriptors of every pixel: ``L`` ``(h, w)`` in [0, 100] -> ``(h, w, FEATURE_DIMS)`` float32."""
    from skimage.feature import daisy
    h, w = L.shape
    y = torch.from_numpy(np.ascontiguousarray(L, np.float32) / 100.0)[None, None]
    r = PATCH // 2
    patch = F.unfold(F.pad(y, (r, r, r, r), mode="replicate"), PATCH)[0].T.reshape(h, w, -1)
    feats = [patch]
    for win in STAT_WINDOWS:
        p = win // 2
        yp = F.pad(y, (p, p, p, p), mode="replicate")
        m = F.avg_pool2d(yp, win, stride=1)
        s = (F.avg_pool2d(yp * yp, win, stride=1) - m * m).clamp_min(0).sqrt()
        feats += [m[0, 0, ..., None], s[0, 0, ..., None]]
    bank = _gabor_bank()
    p = bank.shape[-1] // 2
    resp = F.conv2d(F.pad(y, (p, p, p, p), mode="replicate"), bank)[0]
    feats.append(torch.sqrt(resp[0::2] ** 2 + resp[1::2] ** 2).permute(1, 2, 0))
    rad = DAISY["radius"]
    padded = np.pad(L.astype(np.float64) / 100.0, rad, mode="reflect" if min(h, w) > rad else "edge")
    d = daisy(padded, **DAISY)  # (ceil(h / step), ceil(w / step), 36): one per grid point, from (0, 0)
    dt = torch.from_numpy(np.ascontiguousarray(d.transpose(2, 0, 1), np.float32))[None]
    # grid point i sits at pixel i*step: align_corners over the covered span, then crop
    gh, gw = d.shape[:2]
    up = F.interpolate(dt, size=((gh - 1) * DAISY["step"] + 1, (gw - 1) * DAISY["step"] + 1), mode="bilinear",
                       align_corners=True)[0, :, :h, :w]
    if up.shape[1:] != (h, w):
        up = F.pad(up[None], (0, w - up.shape[2], 0, h - up.shape[1]), mode="replicate")[0]
    feats.append(up.permute(1, 2, 0))
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    feats += [torch.full((h, w, 1), float(y.mean())), torch.full((h, w, 1), float(y.std())),
              yy[..., None], xx[..., None]]
    out = torch.cat([f.float() for f in feats], -1).numpy()
    assert out.shape[-1] == FEATURE_DIMS
    return out


class PixelNet(nn.Module):
    """Fully connected: standardised descriptor ``(N, FEATURE_DIMS)`` -> ab ``(N, 2)`` in Lab units."""

    def __init__(self, config: DeepColorizationConfig):
        super().__init__()
        dims = [FEATURE_DIMS] + [config.hidden] * config.layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(dims[-1], 2))
        self.net = nn.Sequential(*layers)
        self.register_buffer("feature_mean", torch.zeros(FEATURE_DIMS))
        self.register_buffer("feature_std", torch.ones(FEATURE_DIMS))
        self.config = config

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net((feats - self.feature_mean) / self.feature_std) * AB_SCALE


def joint_bilateral(ab: np.ndarray, L: np.ndarray, radius: int, sigma_space: float, sigma_range: float) -> np.ndarray:
    """Filter ``ab`` ``(h, w, 2)`` with weights from space and from the guide ``L`` ``(h, w)`` in [0, 100]."""
    g = torch.from_numpy(np.ascontiguousarray(L, np.float32))[None, None]
    x = torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1), np.float32))[None]
    r = radius
    gp = F.pad(g, (r, r, r, r), mode="replicate")
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    h, w = L.shape
    acc = torch.zeros_like(x)
    norm = torch.zeros_like(g)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            ws = math.exp(-(dy * dy + dx * dx) / (2 * sigma_space ** 2))
            gs = gp[..., r + dy:r + dy + h, r + dx:r + dx + w]
            wgt = ws * torch.exp(-((gs - g) ** 2) / (2 * sigma_range ** 2))
            acc += wgt * xp[..., r + dy:r + dy + h, r + dx:r + dx + w]
            norm += wgt
    return (acc / norm)[0].permute(1, 2, 0).numpy()


@torch.no_grad()
def deep_colorization_ab(net: PixelNet, L: np.ndarray, refine: bool = True) -> torch.Tensor:
    """``L`` ``(H, W)`` in [0, 100] -> ab at the working size ``(1, 2, h, w)`` (for ``pipeline.recombine``)."""
    c = net.config
    h, w = work_shape(*L.shape, c.work_side)
    Ls = resize_L(L, h, w)
    feats = torch.from_numpy(pixel_features(Ls).reshape(-1, FEATURE_DIMS))
    ab = torch.cat([net(chunk) for chunk in feats.split(65536)]).reshape(h, w, 2).numpy()
    if refine:
        ab = joint_bilateral(ab, Ls, c.bilateral_radius, c.bilateral_sigma_space, c.bilateral_sigma_range)
    return torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1)))[None]


def save_net(net: PixelNet, path: str | os.PathLike, meta: dict) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    header = {"kind": KIND, "config": json.dumps(asdict(net.config)), **{k: str(v) for k, v in meta.items()}}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=header)


def load_net(path: str | os.PathLike | None = None) -> PixelNet:
    """The Deep Colorization network from its safetensors file (default: the shipped one)."""
    path = Path(path or WEIGHTS)
    if not path.is_file():
        raise TinctError(f"{path}: no Deep Colorization weights; train them with "
                         "`python -m tinct.guided.deep_colorization --out FILE`")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise TinctError(f"{path}: not a safetensors file ({str(e).splitlines()[0]})") from None
    if meta.get("kind") != KIND:
        raise TinctError(f"{path}: not a Deep Colorization weights file")
    try:
        net = PixelNet(DeepColorizationConfig(**json.loads(meta["config"])))
        net.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise TinctError(f"{path}: weights do not match the network ({str(e).splitlines()[0]})") from None
    net.meta = meta
    return net.eval()


# ------------------------------------------------------------------ training ---
@dataclass
class DeepColorizationTrainConfig:
    data: list[str] = field(default_factory=lambda: ["/work/shared/data/train"])
    out: str = "deep_colorization.safetensors"
    photos: int = 600              # an even sample of this many photos
    pixels_per_photo: int = 1000
    min_colorfulness: float = 15.0  # BigColor: near-gray photos teach gray
    val_fraction: float = 0.1
    epochs: int = 8
    batch: int = 2048
    lr: float = 1e-3
    seed: int = 0
    net: DeepColorizationConfig = field(default_factory=DeepColorizationConfig)


def _photo_samples(path: Path, cfg: DeepColorizationTrainConfig, rng: np.random.Generator):
    from PIL import Image, ImageOps
    from ..color import rgb_to_lab
    from ..data import colorfulness
    with Image.open(path) as im:
        rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    if colorfulness(rgb) < cfg.min_colorfulness:
        return None
    h, w = work_shape(*rgb.shape[:2], cfg.net.work_side)
    small = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR, reducing_gap=None)) / 255.0
    lab = rgb_to_lab(small)
    feats = pixel_features(lab[..., 0]).reshape(-1, FEATURE_DIMS)
    pick = rng.choice(h * w, size=min(cfg.pixels_per_photo, h * w), replace=False)
    return feats[pick], lab[..., 1:].reshape(-1, 2)[pick]


def train_deep_colorization(cfg: DeepColorizationTrainConfig) -> dict:
    """Sample pixels from ``cfg.data``, fit the network, save it to ``cfg.out``; returns the final scores."""
    from tqdm import tqdm
    from ..data import find_images, split_files
    files = find_images(*cfg.data)
    files = files[:: max(1, len(files) // cfg.photos)][: cfg.photos]
    train_files, val_files = split_files(files, cfg.val_fraction, cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    def gather(fs, desc):
        X, Y = [], []
        for f in tqdm(fs, desc=desc, unit="photo"):
            s = _photo_samples(f, cfg, rng)
            if s is not None:
                X.append(s[0])
                Y.append(s[1])
        return torch.from_numpy(np.concatenate(X)), torch.from_numpy(np.concatenate(Y))

    t0 = time.time()
    Xt, Yt = gather(train_files, "features (train)")
    Xv, Yv = gather(val_files, "features (val)")
    torch.manual_seed(cfg.seed)
    net = PixelNet(cfg.net)
    net.feature_mean.copy_(Xt.mean(0))
    net.feature_std.copy_(Xt.std(0).clamp_min(1e-4))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(len(Xt) / cfg.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(cfg.seed)
    step = 0
    for epoch in range(cfg.epochs):
        net.train()
        for idx in torch.randperm(len(Xt), generator=g).split(cfg.batch):
            loss = F.mse_loss(net(Xt[idx]) / AB_SCALE, Yt[idx] / AB_SCALE)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        scores = _val_scores(net, Xv, Yv)
        print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {loss.item():.5f}, val {scores}", flush=True)
    net.eval()
    scores = _val_scores(net, Xv, Yv)
    save_net(net, cfg.out, {"trained_on": ",".join(cfg.data), "photos": len(train_files), "samples": len(Xt),
                            "steps": step, "val": json.dumps(scores), "seconds": round(time.time() - t0)})
    return scores


@torch.no_grad()
def _val_scores(net: PixelNet, X: torch.Tensor, Y: torch.Tensor) -> dict:
    from ..metrics import auc
    net.eval()
    pred = torch.cat([net(c) for c in X.split(65536)])
    err = (pred - Y).norm(dim=1).numpy()
    return {"mse": round(float(F.mse_loss(pred / AB_SCALE, Y / AB_SCALE)), 5), "pixel_auc": round(auc(err), 2),
            "gray_pixel_auc": round(auc(Y.norm(dim=1).numpy()), 2)}


def main(argv=None) -> None:
    import argparse
    p = argparse.ArgumentParser(description="Train the Deep Colorization pixel network (Cheng et al. 2015).")
    p.add_argument("--data", nargs="+", default=DeepColorizationTrainConfig().data)
    p.add_argument("--out", required=True)
    p.add_argument("--photos", type=int, default=600)
    p.add_argument("--pixels-per-photo", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = DeepColorizationTrainConfig(data=a.data, out=a.out, photos=a.photos, pixels_per_photo=a.pixels_per_photo,
                                      epochs=a.epochs)
    print(train_deep_colorization(cfg))


if __name__ == "__main__":
    main()
