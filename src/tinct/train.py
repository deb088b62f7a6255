"""The training loop. It knows no model family: every model brings its optimizers and performs its own
update (``ColorModel.optimizers`` / ``train_step``, ``models/base.py``); the loop feeds batches, schedules
the learning rate, logs the losses the model names, validates and checkpoints (``checkpoint.py``).

Determinism makes resume exact without pickling anything: the photos of step
``s`` come from a permutation seeded by (seed, epoch) and its crops from a
generator seeded by (seed, s). A checkpoint is one safetensors file with the
weights, the Adam moments, the step (and with ``--ema`` the weights' average);
``--resume`` continues from it and ends with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import bins, distributed
from .checkpoint import read_checkpoint, restore_average, restore_optimizers, save_checkpoint
from .color import lab_to_rgb_t
from .data import ImageCache, build_cache, center_resize, find_images, random_crops, split_files, to_lab_batch
from .ema import WeightAverage
from .errors import TinctError
from .io import atomic_path, default_cache_dir
from .metrics import mean_scores, score_image
from .models import create_model, model_class
from .weights import load_model, read_header, resolve_model_path, save_model

DEFAULT_FAMILY = "unet"


@dataclass
class TrainConfig:
    model: str | None = None          # family; None: unet, or with ``init`` the file's own family
    model_options: dict = field(default_factory=dict)  # fills the family's Config dataclass (with init: overrides)
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
    val_semantic: bool = True         # validation top-1 of an ImageNet classifier (semantic.py), if tinct[pretrained]
    checkpoint_every: int = 250
    cache_size: int = 160
    min_colorfulness: float = 5.0
    augment_luminance: bool = True
    damage: float = 0.0               # share of photos whose input L is aged like an old print (restore/degrade.py)
    damage_mix: str = "realistic"     # "realistic": tinct restore's mix; "aged": with stains and craquelure too
    hint_probability: float = 0.5     # models with hint inputs: share of photos given simulated color points
    max_hints: int = 24
    init: str | None = None           # start from these weights (fine-tune / continue a shipped model)
    backbone_weights: str | None = None  # encoder-decoder: pretrained backbone state dict (safetensors)
    schedule: str = "standard"        # GAN families: "standard" or "nogan" (models/adversarial.py)
    ema: float = 0.0                  # > 0: validate and save a moving average of the weights with this decay (ema.py)
    resume: bool = False
    distributed: bool = False         # under torchrun: DDP, batches sharded by rank, rank 0 writes
    threads: int | None = None
    workers: int = 2
    cache_dir: str | None = None


def ab_histogram_of(cache: ImageCache, max_images: int = 4000) -> np.ndarray:
    """The training set's ab histogram on the 23x23 grid, from photos downsampled to 32 px."""
    step = max(1, len(cache) // max_images)
    hist = np.zeros((23, 23))
    for i in range(0, len(cache), 256 * step):
        rgb = torch.from_numpy(np.array(cache.images[i:i + 256 * step:step]))  # a copy: the cache is a read-only mmap
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


def damage_luminance(L: torch.Tensor, g: torch.Generator, share: float, mix: str = "realistic") -> torch.Tensor:
    """Age a ``share`` of the batch's inputs like old prints (scratches, dust, fading, grain: the realistic mix of
    ``restore/degrade.py``; ``mix="aged"`` adds its stains and craquelure: ``degrade.MIXES``); the targets stay
    the clean photo's colors.

    Old scans are what users bring, and a network that has only seen clean L reads a scratch or a stain as an
    object with a color of its own (the false blotches on studio backdrops). ``(B, 1, H, W)`` in [0, 100].
    """
    from .restore.degrade import MIXES, degrade
    config = MIXES[mix]
    chosen = torch.rand(L.shape[0], generator=g) < share
    rng = np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=g)))
    if not bool(chosen.any()):
        return L
    L = L.clone()
    for i in torch.nonzero(chosen).flatten().tolist():
        L[i, 0] = torch.from_numpy(degrade(L[i, 0].numpy(), rng, config).L)
    return L


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
        self.family = self._family()
        model_class(self.family).check_schedule(cfg.schedule)  # refused before any photo is read
        if cfg.damage and hasattr(model_class(self.family), "training_batch"):
            raise TinctError("--damage ages a colorizer's gray inputs; the restore family damages its own photos")
        from .restore.degrade import MIXES
        if cfg.damage_mix not in MIXES:
            raise TinctError(f"--damage-mix must be one of {', '.join(MIXES)}, not {cfg.damage_mix!r}")
        self.ctx = distributed.setup(cfg.distributed)
        with distributed.main_first(self.ctx):  # rank 0 decodes the photo cache; the others then read it
            self._prepare_data()
        self._prepare_model()  # not inside: wrapping in DDP is a collective every rank must reach together

    # ------------------------------------------------------------ set-up ---
    def _resuming(self) -> bool:
        return self.cfg.resume and self.ckpt_path.exists()

    def _family(self) -> str:
        """The model family this run trains; ``--model`` and ``--backbone-weights`` that contradict ``--init`` are refused."""
        cfg = self.cfg
        if self._resuming():
            return read_header(self.ckpt_path)["model"]
        if not cfg.init:
            return cfg.model or DEFAULT_FAMILY
        family = read_header(resolve_model_path(cfg.init)).get("model", "")
        if cfg.model and cfg.model != family:
            raise TinctError(f"--model {cfg.model} conflicts with --init {cfg.init}, a {family or 'non-tinct'} model: "
                             "fine-tuning keeps the file's family (drop --model, or train from scratch without --init)")
        if cfg.backbone_weights and not cfg.model_options:
            raise TinctError("--backbone-weights starts an encoder from pretrained weights; with --init the whole "
                             "network comes from the file, unless an --option adds the encoder (unet: semantic=...)")
        return family

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
        self._semantic = None  # (classifier, labels, gray top-1): loaded at the first validation that can use it
        self.per_epoch = max(1, len(self.train_data) // (cfg.batch * self.ctx.world))  # a step uses batch x world
        if cfg.steps is None and cfg.epochs is None:
            raise TinctError("say how long to train: --steps N or --epochs N")
        self.total_steps = cfg.steps if cfg.steps is not None else max(1, round(cfg.epochs * self.per_epoch))
        self.warmup = min(cfg.warmup, self.total_steps // 5)  # a short run still reaches its learning rate
        self.ab_hist = ab_histogram_of(self.train_data)

    def _prepare_model(self):
        cfg = self.cfg
        self.step, saved_state = 0, None
        if self._resuming():
            self.model, self.step, saved_state = read_checkpoint(self.ckpt_path)
        elif cfg.init:
            self.model = self._init_model()
            if cfg.backbone_weights:  # an encoder the options added (grown) starts from pretrained weights
                self.model.load_backbone(cfg.backbone_weights)
        else:
            options = model_class(self.family).data_options(cfg.model_options, self.ab_hist)
            torch.manual_seed(cfg.seed)
            self.model = create_model(self.family, **options)
            self.model.fit_data(self.ab_hist)
            if cfg.backbone_weights:
                self.model.load_backbone(cfg.backbone_weights)
        self.model.train().to(self.ctx.device)
        self.average = WeightAverage(self.model, cfg.ema) if cfg.ema else None  # copied before DDP wraps the model
        if self.average and saved_state:  # a run started without --ema has no average saved: it starts here
            restore_average(self.average.module, saved_state)
        self.loss_fn = distributed.wrap_losses(self.model, self.ctx)
        self.optims = self.model.optimizers(cfg, self.total_steps)
        if saved_state:
            restore_optimizers(self.optims, saved_state)
        self._epoch_cache = (-1, None)
        self._saved_at = None

    def _init_model(self):
        """The ``--init`` file, its config changed by ``--option`` / ``--head`` / ``--loss`` (refused if shapes change)."""
        cfg = self.cfg
        try:  # options may add modules (a new branch): those start from their initialisation
            grow = bool(cfg.model_options)
            return load_model(cfg.init, overrides=cfg.model_options, grow=grow).train()
        except TinctError as e:
            if not cfg.model_options:
                raise
            raise TinctError(f"--init {cfg.init}: the options {', '.join(sorted(cfg.model_options))} do not fit "
                             f"its weights ({e})") from None

    # ------------------------------------------------------------- batches ---
    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The (L, ab, hints) batch of ``step``: a pure function of (seed, step) (and rank)."""
        cfg = self.cfg
        idx = self.photo_indices(step)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7919 * step + 1 + 104_729 * self.ctx.rank)
        rgb = random_crops(torch.from_numpy(np.array(self.train_data.images[idx])), cfg.size, g)  # a writable copy
        if hasattr(self.model, "training_batch"):  # restoration: the model damages the clean crops itself
            return self.model.training_batch(rgb, g)
        L, ab = to_lab_batch(rgb)
        if cfg.augment_luminance:
            L = augment_luminance(L, g)
        if cfg.damage > 0:
            L = damage_luminance(L, g, cfg.damage, cfg.damage_mix)
        hints = None
        if self.model.config.hint_channels:
            hints = simulate_hints(ab, g, cfg.hint_probability, cfg.max_hints)
        return L, ab, hints

    def photo_indices(self, step: int) -> np.ndarray:
        """Rows of the photo cache in the batch of ``step``, sorted.

        Distributed: the step takes ``batch x world`` photos of the epoch's permutation
        and each rank its own slice of ``batch`` (disjoint, as DistributedSampler); rank 0 of 1 is the plain run.
        """
        cfg = self.cfg
        epoch, k = divmod(step, self.per_epoch)
        if self._epoch_cache[0] != epoch:
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            self._epoch_cache = (epoch, torch.randperm(len(self.train_data), generator=g))
        perm = self._epoch_cache[1]
        first = (k * self.ctx.world + self.ctx.rank) * cfg.batch
        if self.ctx.world > 1 and first + cfg.batch > len(perm):  # fewer photos than batch x world: wrap around
            return np.sort(perm[(first + np.arange(cfg.batch)) % len(perm)].numpy())
        return np.sort(perm[first:first + cfg.batch].numpy())

    # ---------------------------------------------------------------- loop ---
    def run(self, stop_at: int | None = None) -> Path:
        """Train to the end (or only up to step ``stop_at``, as an interrupted run would)."""
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        self._truncate_metrics(self.step)
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f"train {self.model.name}", unit="step",
                   dynamic_ncols=True, mininterval=1 if sys.stderr.isatty() else 30, disable=not self.ctx.main)
        running, t0, seen = None, time.time(), 0
        while self.step < min(self.total_steps, stop_at or self.total_steps):
            lr = self.set_learning_rate()
            batch = distributed.to_device(self.batch(self.step), self.ctx.device)
            losses = self.model.train_step(batch, self.step, self.optims, self.loss_fn)
            if self.average:
                self.average.update(self.model, self.step)
            self.step += 1
            seen += batch[0].shape[0] * self.ctx.world
            loss = float(losses["loss"].detach())
            running = loss if running is None else 0.98 * running + 0.02 * loss
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}", img_s=f"{seen / (time.time() - t0):.1f}")
            row = {"step": self.step, "loss": loss, "lr": lr}
            row.update({k: (v if isinstance(v, str) else float(v)) for k, v in losses.items()
                        if k in self._fields[len(self._FIELDS):]})
            last = self.step == self.total_steps
            if self.val_data is not None and (self.step % cfg.val_every == 0 or last):
                row.update(self.validate())
            self._append_metrics(row)
            if self.step % cfg.checkpoint_every == 0 or last:
                self.save()
            if self.model.snapshot_due(self.step):
                save_model(self.result_model, self.out / "snapshots" / f"step_{self.step:06d}.safetensors",
                           trained_on=self._trained_on(), steps=self.step)
        bar.close()
        if self.step >= self.total_steps:
            if self._saved_at != self.step:  # resumed at the end: nothing ran, the files may predate the last step
                self.save()
            self.plot()
        return self.out / "model.safetensors"

    def set_learning_rate(self) -> float:
        """Every optimizer's groups at the schedule's rate for this step times their ``lr_scale``; returns the rate."""
        lr = lr_at(self.step, self.total_steps, self.cfg.lr, self.warmup)
        for optim in self.optims.values():
            for group in optim.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    @property
    def result_model(self):
        """The weights this run delivers (validated, saved, shipped): the moving average with ``--ema``."""
        return self.average.module if self.average else self.model

    # ---------------------------------------------------------- validation ---
    @torch.no_grad()
    def validate(self) -> dict:
        if not self.ctx.main:
            return {}
        model = self.result_model
        model.eval()
        rgb = center_resize(torch.from_numpy(np.array(self.val_data.images)), self.cfg.size)  # a writable copy
        if hasattr(model, "validation_scores"):  # restoration: its own scores, no colors to score
            scores = model.validation_scores(rgb)
            self.model.train()
            return scores
        scores, preds, grays = [], [], []
        for i in range(0, len(rgb), 32):
            L, ab = to_lab_batch(rgb[i:i + 32])
            dev = self.ctx.device
            with torch.no_grad():
                out = model(L.to(dev))
                losses = model.losses(out, ab.to(dev))
            out = {"ab": out["ab"].float().cpu()}
            pred = lab_to_rgb_t(torch.cat([L, out["ab"]], 1))
            pred_u8 = (pred * 255).round().byte().permute(0, 2, 3, 1).numpy()
            preds.append(pred_u8)
            grays.append((lab_to_rgb_t(torch.cat([L, torch.zeros_like(ab)], 1)) * 255).round().byte()
                         .permute(0, 2, 3, 1).numpy())  # what the model was given, as the classifier sees it
            for j in range(len(L)):
                true_lab = torch.cat([L[j], ab[j]]).permute(1, 2, 0).numpy()
                pred_lab = torch.cat([L[j], out["ab"][j]]).permute(1, 2, 0).numpy()
                s = score_image(pred_lab, true_lab, pred_u8[j], rgb[i + j].numpy(), true_lab[..., 0], self.ab_hist)
                s["val_loss"] = float(losses["loss"])
                scores.append(s)
        self.model.train()
        mean = mean_scores(scores)
        preds, grays = np.concatenate(preds), np.concatenate(grays)
        self._save_grid(grays[:8], rgb[:8].numpy(), preds[:8])
        return {"val_loss": mean["val_loss"], "val_auc": mean["auc"], "val_auc_rebal": mean["auc_rebal"],
                "val_psnr": mean["psnr"],
                "val_colorfulness_ratio": mean["colorfulness"] / max(mean["colorfulness_true"], 1e-6),
                **self._semantic_scores(grays, preds)}

    def _semantic_scores(self, grays: np.ndarray, preds: np.ndarray) -> dict:
        """ImageNet top-1 (%) of the colorizations and of the gray inputs, over the validation photos whose class
        a synset id in their path names (Zhang et al.'s semantic test, as ``tinct evaluate`` scores it, but on the
        small validation squares, so lower than its figures). Empty when off, without tinct[pretrained] (said
        once), or when no photo's class is known."""
        from .semantic import SEMANTIC_VARIANT, imagenet_class, load_classifier, top1_accuracy
        if self._semantic is None:
            self._semantic = False
            labels = np.array([c if (c := imagenet_class(f)) is not None else -1 for f in self.val_data.files])
            known = labels >= 0
            if self.cfg.val_semantic and known.any():
                try:
                    net = load_classifier(SEMANTIC_VARIANT)
                    self._semantic = (net, known, labels[known], top1_accuracy(net, grays[known], labels[known]))
                except TinctError as e:  # the extra is optional: the other scores stand without it
                    tqdm.write(f"tinct: validation top-1 skipped: {e}", file=sys.stderr)
        if not self._semantic:
            return {}
        net, known, labels, gray_top1 = self._semantic
        return {"val_top1": top1_accuracy(net, preds[known], labels), "val_top1_gray": gray_top1}

    def _save_grid(self, gray: np.ndarray, truth: np.ndarray, pred: np.ndarray):
        from .report import image_grid
        image_grid([gray, truth, pred], ["gray", "truth", f"step {self.step}"],
                   self.out / "val_grid.png")

    # ------------------------------------------------------------- records ---
    _FIELDS = ["step", "loss", "lr", "val_loss", "val_auc", "val_auc_rebal", "val_psnr", "val_colorfulness_ratio",
               "val_top1", "val_top1_gray"]

    @property
    def _fields(self) -> list[str]:
        """The columns of metrics.csv: the common ones, then the named losses the model reports (GANs)."""
        return self._FIELDS + list(self.model.loss_names)

    def _append_metrics(self, row: dict):
        if not self.ctx.main:
            return
        path = self.out / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields)
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def _truncate_metrics(self, step: int):
        """On resume, drop rows logged after the checkpoint: they will be logged again."""
        path = self.out / "metrics.csv"
        if not path.exists() or not self.ctx.main:
            return
        rows = list(csv.DictReader(open(path)))
        keep = [r for r in rows if int(r["step"]) <= step]
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self._fields)
                w.writeheader()
                w.writerows(keep)

    def plot(self):
        if not self.ctx.main:
            return
        from .report import plot_curves
        if (self.out / "metrics.csv").exists():
            plot_curves(self.out / "metrics.csv", self.out / "curves.png")

    # --------------------------------------------------------- checkpoints ---
    def _trained_on(self) -> str:
        return ", ".join(str(d) for d in self.cfg.data)

    def save(self):
        """Write the checkpoint (``checkpoint.py``) and the usable model file, both atomically."""
        self._saved_at = self.step
        if not self.ctx.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.ckpt_path, self.model, self.optims, self.step, dataclasses.asdict(self.cfg),
                        average=self.average.state_dict() if self.average else None)
        save_model(self.result_model, self.out / "model.safetensors", trained_on=self._trained_on(), steps=self.step,
                   extra={"ab_hist": json.dumps(self.ab_hist.astype(int).tolist())})


def train(cfg: TrainConfig) -> Path:
    trainer = Trainer(cfg)
    try:
        return trainer.run()
    finally:
        distributed.cleanup(trainer.ctx)
