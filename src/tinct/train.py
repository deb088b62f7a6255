"""The training loop. It knows no model: a model names its losses, the loop minimises ``"loss"``.

Determinism makes resume exact without pickling anything: the photos of step
``s`` come from a permutation seeded by (seed, epoch) and its crops from a
generator seeded by (seed, s). A checkpoint is one safetensors file with the
weights, the Adam moments and the step; ``--resume`` continues from it and ends
with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from . import bins
from .color import lab_to_rgb_t
from .data import (ImageCache, build_cache, center_resize, find_images, random_crops, split_files,
                   to_lab_batch)
from .errors import TinctError
from .io import atomic_path
from .metrics import score_image
from .models import create_model
from .weights import load_model, save_model


def default_cache_dir() -> Path:
    return Path(os.environ.get("TINCT_CACHE", Path.home() / ".cache" / "tinct"))


@dataclass
class TrainConfig:
    model: str = "unet"
    model_options: dict = field(default_factory=dict)  # fills the family's Config dataclass
    data: list[str] = field(default_factory=list)
    val: str | None = None
    out: str = "run"
    steps: int | None = None
    epochs: float | None = None
    size: int = 128
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 200
    seed: int = 0
    val_fraction: float = 0.2
    val_images: int = 100
    val_every: int = 500
    checkpoint_every: int = 250
    cache_size: int = 160
    min_colorfulness: float = 5.0
    augment_luminance: bool = True
    hint_probability: float = 0.5     # models with hint inputs: share of photos given simulated color points
    max_hints: int = 24
    init: str | None = None           # start from these weights (fine-tune / continue a shipped model)
    resume: bool = False
    threads: int | None = None
    workers: int = 2
    cache_dir: str | None = None


def ab_histogram_of(cache: ImageCache, max_images: int = 4000) -> np.ndarray:
    """The training set's ab histogram on the 23x23 grid, from photos downsampled to 32 px."""
    step = max(1, len(cache) // max_images)
    hist = np.zeros((23, 23))
    for i in range(0, len(cache), 256 * step):
        rgb = torch.from_numpy(np.ascontiguousarray(cache.images[i:i + 256 * step:step]))
        _, ab = to_lab_batch(center_resize(rgb, 32))
        hist += bins.ab_histogram(ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy())
    return hist


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5% of ``base`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def augment_luminance(L: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Old prints are faded, contrasty or grainy: jitter the input L's gamma and add grain."""
    B = L.shape[0]
    gamma = torch.exp(torch.empty(B, 1, 1, 1).uniform_(-0.25, 0.25, generator=g))
    L = 100.0 * (L / 100.0).clamp(0, 1) ** gamma
    noisy = (torch.rand(B, 1, 1, 1, generator=g) < 0.3).float()
    sigma = torch.empty(B, 1, 1, 1).uniform_(0, 3, generator=g) * noisy
    return (L + sigma * torch.randn(L.shape, generator=g)).clamp(0, 100)


def simulate_hints(ab: torch.Tensor, g: torch.Generator, probability: float, max_points: int) -> torch.Tensor:
    """User color points drawn from the truth (Zhang et al. 2017): ``(B, 2, H, W)`` -> hints ``(B, 3, H, W)``.

    Channels: a, b (Lab units) and a 0/1 mask. A photo gets points with ``probability``;
    their count is log-uniform in 1..max_points, each a square of 1 to 7 px holding
    the mean true ab under it. Photos without points keep the model good at automatic work.
    """
    B, _, H, W = ab.shape
    hints = torch.zeros(B, 3, H, W)
    for i in range(B):
        if float(torch.rand(1, generator=g)) >= probability:
            continue
        n = int(torch.exp(torch.empty(1).uniform_(0, math.log(max_points + 1), generator=g)))
        for _ in range(max(1, n)):
            r = int(torch.randint(0, 4, (1,), generator=g))
            y = int(torch.randint(0, H, (1,), generator=g))
            x = int(torch.randint(0, W, (1,), generator=g))
            y0, y1, x0, x1 = max(0, y - r), min(H, y + r + 1), max(0, x - r), min(W, x + r + 1)
            hints[i, :2, y0:y1, x0:x1] = ab[i, :, y0:y1, x0:x1].mean(dim=(1, 2))[:, None, None]
            hints[i, 2, y0:y1, x0:x1] = 1.0
    return hints


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.ckpt_path = self.out / "checkpoint.safetensors"
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if self.ckpt_path.exists() and not cfg.resume:
            raise TinctError(f"{self.out} already holds a training run; pass --resume to continue it or pick another --out")
        self._prepare_data()
        self._prepare_model()

    # ------------------------------------------------------------ set-up ---
    def _prepare_data(self):
        cfg = self.cfg
        if not cfg.data:
            raise TinctError("no training data: pass --data DIR")
        files = find_images(*cfg.data)
        if cfg.val:
            train_files, val_files = files, find_images(cfg.val)
        else:
            train_files, val_files = split_files(files, cfg.val_fraction, cfg.seed)
        if not train_files:
            raise TinctError("no images found in the training folders")
        cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
        self.train_data = build_cache(train_files, cfg.cache_size, cache_dir, cfg.min_colorfulness, cfg.workers,
                                      desc="caching training photos")
        val_files = val_files[:: max(1, len(val_files) // cfg.val_images)][: cfg.val_images]
        self.val_data = build_cache(val_files, cfg.cache_size, cache_dir, cfg.min_colorfulness, cfg.workers,
                                    desc="caching validation photos") if val_files else None
        self.per_epoch = max(1, len(self.train_data) // cfg.batch)
        if cfg.steps is None and cfg.epochs is None:
            raise TinctError("say how long to train: --steps N or --epochs N")
        self.total_steps = cfg.steps if cfg.steps is not None else max(1, round(cfg.epochs * self.per_epoch))
        self.ab_hist = ab_histogram_of(self.train_data)

    def _prepare_model(self):
        cfg = self.cfg
        self.step = 0
        if cfg.resume and self.ckpt_path.exists():
            self.model, self.step, optim_state = self._read_checkpoint()
        else:
            optim_state = None
            if cfg.init:
                self.model = load_model(cfg.init).train()
            else:
                opts = dict(cfg.model_options)
                if opts.get("head") == "classification":
                    centers, _ = bins.bins_from_histogram(self.ab_hist)
                    opts["num_bins"] = len(centers)
                torch.manual_seed(cfg.seed)
                self.model = create_model(cfg.model, **opts)
                if self.model.config.head == "classification":
                    centers, _ = bins.bins_from_histogram(self.ab_hist)
                    self.model.set_bins(centers, bins.rebalance_weights(self.ab_hist))
        self.model.train()
        self.optim = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if optim_state:
            self._load_optim(optim_state)
        self._epoch_cache = (-1, None)

    # ------------------------------------------------------------- batches ---
    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The (L, ab, hints) batch of ``step``: a pure function of (seed, step)."""
        cfg = self.cfg
        epoch, k = divmod(step, self.per_epoch)
        if self._epoch_cache[0] != epoch:
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            self._epoch_cache = (epoch, torch.randperm(len(self.train_data), generator=g))
        idx = np.sort(self._epoch_cache[1][k * cfg.batch:(k + 1) * cfg.batch].numpy())
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7919 * step + 1)
        rgb = random_crops(torch.from_numpy(np.ascontiguousarray(self.train_data.images[idx])), cfg.size, g)
        L, ab = to_lab_batch(rgb)
        if cfg.augment_luminance:
            L = augment_luminance(L, g)
        hints = None
        if self.model.config.hint_channels:
            hints = simulate_hints(ab, g, cfg.hint_probability, cfg.max_hints)
        return L, ab, hints

    # ---------------------------------------------------------------- loop ---
    def run(self, stop_at: int | None = None) -> Path:
        """Train to the end (or only up to step ``stop_at``, as an interrupted run would)."""
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        self._truncate_metrics(self.step)
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f"train {self.model.name}", unit="step",
                   dynamic_ncols=True, mininterval=1 if sys.stderr.isatty() else 30)
        running, t0, seen = None, time.time(), 0
        while self.step < min(self.total_steps, stop_at or self.total_steps):
            for group in self.optim.param_groups:
                group["lr"] = lr_at(self.step, self.total_steps, cfg.lr, cfg.warmup)
            L, ab, hints = self.batch(self.step)
            losses = self.model.compute_losses(L, ab, hints)
            self.optim.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optim.step()
            self.step += 1
            seen += L.shape[0]
            loss = float(losses["loss"].detach())
            running = loss if running is None else 0.98 * running + 0.02 * loss
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}", img_s=f"{seen / (time.time() - t0):.1f}")
            row = {"step": self.step, "loss": loss, "lr": self.optim.param_groups[0]["lr"]}
            last = self.step == self.total_steps
            if self.val_data is not None and (self.step % cfg.val_every == 0 or last):
                row.update(self.validate())
            self._append_metrics(row)
            if self.step % cfg.checkpoint_every == 0 or last:
                self.save()
        bar.close()
        if self.step < self.total_steps:
            return self.out / "model.safetensors"
        self.save()
        self.plot()
        return self.out / "model.safetensors"

    # ---------------------------------------------------------- validation ---
    @torch.no_grad()
    def validate(self) -> dict:
        self.model.eval()
        rgb = center_resize(torch.from_numpy(np.ascontiguousarray(self.val_data.images[:])), self.cfg.size)
        scores, preds = [], []
        for i in range(0, len(rgb), 32):
            L, ab = to_lab_batch(rgb[i:i + 32])
            out = self.model(L)
            losses = self.model.compute_losses(L, ab)
            pred = lab_to_rgb_t(torch.cat([L, out["ab"]], 1))
            pred_u8 = (pred * 255).round().byte().permute(0, 2, 3, 1).numpy()
            preds.append(pred_u8)
            for j in range(len(L)):
                true_lab = torch.cat([L[j], ab[j]]).permute(1, 2, 0).numpy()
                pred_lab = torch.cat([L[j], out["ab"][j]]).permute(1, 2, 0).numpy()
                s = score_image(pred_lab, true_lab, pred_u8[j], rgb[i + j].numpy(), true_lab[..., 0], self.ab_hist)
                s["val_loss"] = float(losses["loss"])
                scores.append(s)
        self.model.train()
        mean = {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}
        self._save_grid(rgb[:8].numpy(), np.concatenate(preds)[:8])
        return {"val_loss": mean["val_loss"], "val_auc": mean["auc"], "val_auc_rebal": mean["auc_rebal"],
                "val_psnr": mean["psnr"],
                "val_colorfulness_ratio": mean["colorfulness"] / max(mean["colorfulness_true"], 1e-6)}

    def _save_grid(self, truth: np.ndarray, pred: np.ndarray):
        from .report import image_grid
        gray = np.repeat(np.asarray(truth, np.float64) @ np.array([0.299, 0.587, 0.114]), 3).reshape(truth.shape)
        image_grid([gray.round().astype(np.uint8), truth, pred], ["gray", "truth", f"step {self.step}"],
                   self.out / "val_grid.png")

    # ------------------------------------------------------------- records ---
    _FIELDS = ["step", "loss", "lr", "val_loss", "val_auc", "val_auc_rebal", "val_psnr", "val_colorfulness_ratio"]

    def _append_metrics(self, row: dict):
        path = self.out / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._FIELDS)
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def _truncate_metrics(self, step: int):
        """On resume, drop rows logged after the checkpoint: they will be logged again."""
        path = self.out / "metrics.csv"
        if not path.exists():
            return
        rows = list(csv.DictReader(open(path)))
        keep = [r for r in rows if int(r["step"]) <= step]
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self._FIELDS)
                w.writeheader()
                w.writerows(keep)

    def plot(self):
        from .report import plot_curves
        if (self.out / "metrics.csv").exists():
            plot_curves(self.out / "metrics.csv", self.out / "curves.png")

    # --------------------------------------------------------- checkpoints ---
    def _trained_on(self) -> str:
        return ", ".join(str(d) for d in self.cfg.data)

    def save(self):
        """Write the checkpoint (weights + Adam state + step) and the usable model file, atomically."""
        tensors = {f"model.{k}": v.detach().contiguous() for k, v in self.model.state_dict().items()}
        params = [p for g in self.optim.param_groups for p in g["params"]]
        for i, p in enumerate(params):
            st = self.optim.state.get(p)
            if st:
                tensors[f"optim.{i}.exp_avg"] = st["exp_avg"].contiguous()
                tensors[f"optim.{i}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
                tensors[f"optim.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
        cfg_json = dataclasses.asdict(self.cfg)
        meta = {"tinct_format": "1", "model": self.model.name,
                "config": json.dumps(dataclasses.asdict(self.model.config)),
                "step": str(self.step), "train_config": json.dumps(cfg_json)}
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.ckpt_path) as tmp:
            save_file(tensors, tmp, metadata=meta)
        save_model(self.model, self.out / "model.safetensors", trained_on=self._trained_on(), steps=self.step,
                   extra={"ab_hist": json.dumps(self.ab_hist.astype(int).tolist())})

    def _read_checkpoint(self):
        with safe_open(str(self.ckpt_path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        model = create_model(meta["model"], **json.loads(meta["config"]))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        optim_state = {k: v for k, v in tensors.items() if k.startswith("optim.")}
        return model, int(meta["step"]), optim_state

    def _load_optim(self, flat: dict):
        params = [p for g in self.optim.param_groups for p in g["params"]]
        for i, p in enumerate(params):
            if f"optim.{i}.exp_avg" in flat:
                self.optim.state[p] = {"step": flat[f"optim.{i}.step"][0].clone(),
                                       "exp_avg": flat[f"optim.{i}.exp_avg"].clone(),
                                       "exp_avg_sq": flat[f"optim.{i}.exp_avg_sq"].clone()}


def train(cfg: TrainConfig) -> Path:
    return Trainer(cfg).run()
