"""What the GAN families share: a critic beside the generator, two optimizers, and the training schedules.

These models override the training protocol of ``base.ColorModel``: two
optimizers (``optimizers``) and their own updates (``train_step``); the trainer
only feeds batches, sets the learning rate, saves every optimizer's state and
logs the named losses it gets back. The generator is the model's ``forward`` (the colorization contract of
``base.ColorModel``); the critic is the submodule ``critic`` and is ignored at
inference.

Schedules (``TrainConfig.schedule``):

- ``standard``: every step one critic update on (real, generated) then one
  generator update with ``l1_weight`` x pixel loss + ``adv_weight`` x adversarial loss
  (pix2pix: lambda 100).
- ``nogan`` (DeOldify's NoGAN, adapted to what we can have offline). DeOldify's
  feature loss uses ImageNet VGG16 features; those need a download (and
  torchvision), so ours come from **the critic itself**, warmed up first on a task
  that needs no generator: telling real colors from the same photos with colors
  desaturated, hue-rotated or blurred (the typical failures of a colorizer).
  Its features are then sensitive to exactly the color cues we want, on our own
  photos. Phases (fractions of the steps): critic warm-up 10 %, generator alone
  with pixel + feature loss (critic frozen) 50 %, critic pretrain on generated vs
  real 25 % (DeOldify's second step), then a short GAN phase 15 % with a model
  snapshot every 1/10 of it (``RUN/snapshots``), so the last one before
  artefacts can be kept.

Every random draw of a step comes from a generator seeded by (seed, step), so a
resumed run is identical to an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import bins
from ..color import AB_SCALE
from ..errors import TinctError
from ..gan_losses import check_kind, critic_loss, generator_loss, gradient_penalty
from .base import BaseConfig, ColorModel, regression_loss
from .critics import GlobalCritic, PatchGAN

SCHEDULES = ("standard", "nogan")
NOGAN_PHASES = (("critic-warmup", 0.10), ("generator", 0.50), ("critic", 0.25), ("gan", 0.15))
GAN_SNAPSHOTS = 10


@dataclasses.dataclass
class AdversarialConfig(BaseConfig):
    gan_loss: str = "vanilla"      # vanilla | lsgan | hinge | wgan-gp
    l1_weight: float = 100.0       # pixel term (pix2pix's lambda)
    adv_weight: float = 1.0        # adversarial term of the generator loss
    feature_weight: float = 10.0   # nogan: L1 between critic features of generated and real
    gp_weight: float = 10.0        # wgan-gp penalty
    critic: str = "patch"          # "patch" (70x70 PatchGAN) or "global" (DCGAN, one score per image)
    critic_channels: int = 64      # critic width at its first layer
    spectral_norm: bool = False    # in the critic (and its attention)
    self_attention: bool = False   # SAGAN block in generator and critic


@dataclasses.dataclass
class Plan:
    """Which phase each step belongs to. ``total``: steps of the run; ``seed``: the run's seed."""
    schedule: str
    total: int
    seed: int = 0

    def __post_init__(self):
        AdversarialModel.check_schedule(self.schedule)
        self.phases: list[tuple[str, int, int]] = []
        if self.schedule == "nogan":
            n = len(NOGAN_PHASES)
            ends, acc = [], 0.0
            for i, (_, frac) in enumerate(NOGAN_PHASES):
                acc += frac
                end = round(acc * self.total)
                # every phase gets a step when there are enough, so a short run still walks them all
                lo = (ends[-1] if ends else 0) + (1 if self.total >= n else 0)
                hi = self.total - (n - 1 - i if self.total >= n else 0)
                ends.append(min(max(end, lo), hi))
            ends[-1] = self.total
            start = 0
            for (name, _), end in zip(NOGAN_PHASES, ends):
                self.phases.append((name, start, end))
                start = end

    def phase(self, step: int) -> str:
        """Phase of the update that runs at ``step`` (0-based)."""
        for name, start, end in self.phases:
            if start <= step < end:
                return name
        return "standard" if self.schedule == "standard" else self.phases[-1][0]

    def snapshot_due(self, done: int) -> bool:
        """After ``done`` steps: save a GAN-phase snapshot now?"""
        if self.schedule != "nogan":
            return False
        _, start, end = self.phases[-1]
        every = max(1, (end - start) // GAN_SNAPSHOTS)
        return start < done <= end and (done - start) % every == 0


def corrupt_colors(ab: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Fake colors made from real ones, for the critic warm-up: ``(B, 2, H, W) -> (B, 2, H, W)``.

    Each photo gets one of: desaturation (x0..0.5), a hue rotation of 45..180 degrees
    either way, or blurred and muted chroma (what an L2 regressor produces).
    """
    B, _, H, W = ab.shape
    # drawn on the CPU (the generator lives there, so a GPU run draws the same numbers), then moved
    kind = torch.randint(0, 3, (B,), generator=g).view(B, 1, 1, 1).to(ab.device)
    s = torch.empty(B).uniform_(0.0, 0.5, generator=g).view(B, 1, 1, 1).to(ab)
    sign = torch.where(torch.rand(B, generator=g) < 0.5, -1.0, 1.0)
    theta = (torch.empty(B).uniform_(math.pi / 4, math.pi, generator=g) * sign).view(B, 1, 1).to(ab)
    a, b = ab[:, 0], ab[:, 1]
    rot = torch.stack([torch.cos(theta) * a - torch.sin(theta) * b, torch.sin(theta) * a + torch.cos(theta) * b], 1)
    coarse = F.adaptive_avg_pool2d(ab, (max(1, H // 8), max(1, W // 8)))
    blur = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False) * (0.3 + s)
    return torch.where(kind == 0, ab * s, torch.where(kind == 1, rot, blur))


class AdversarialModel(ColorModel):
    """A generator (this model's ``forward``) and its critic, trained by ``train_step``."""
    loss_names = ("g_rec", "g_adv", "g_feat", "g_div", "d_loss", "d_gp", "phase")
    data_parallel = False  # two optimizers and its own update order: --distributed does not wrap it (yet)

    def __init__(self, config: AdversarialConfig, trunk_channels: int, head_scale: int = 1):
        super().__init__(config, trunk_channels, head_scale)
        if config.feature_loss or config.class_loss:
            raise TinctError("feature_loss, class_loss: the GAN families have their own feature loss "
                             "(feature_weight, the critic's features)")
        try:
            check_kind(config.gan_loss)
        except ValueError as e:
            raise TinctError(str(e)) from None
        critics = {"patch": PatchGAN, "global": GlobalCritic}
        if config.critic not in critics:
            raise TinctError(f"unknown critic {config.critic!r}; known: {', '.join(critics)}")
        self.critic = critics[config.critic](3, config.critic_channels, spectral=config.spectral_norm,
                                             attention=config.self_attention)
        self.plan: Plan | None = None

    # ----------------------------------------------------------- pieces ---
    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("critic.")]

    @staticmethod
    def critic_input(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return torch.cat([L / 50.0 - 1.0, ab / AB_SCALE], 1)

    def sample(self, L, hints, g: torch.Generator) -> torch.Tensor:
        """One generated ab ``(B, 2, H, W)`` for the critic's fake batch."""
        return self(L, hints)["ab"]

    def reconstruction(self, out: dict, ab_true: torch.Tensor) -> torch.Tensor:
        """The pixel term: ``l1_weight`` x regression loss, or the rebalanced cross-entropy for a classification head."""
        if self.config.head == "classification":
            return bins.rebalanced_cross_entropy(out["logits"], ab_true, self.bin_centers, self.bin_weights)
        return self.config.l1_weight * regression_loss(out["ab"], ab_true, self.config.loss)

    def generator_terms(self, L, ab, hints, g) -> tuple[list[torch.Tensor], dict]:
        """Generated ab tensors the critic should judge, and the generator's non-adversarial loss terms."""
        out = self(L, hints)
        return [out["ab"]], {"g_rec": self.reconstruction(out, ab)}

    # --------------------------------------------------------- training ---
    @classmethod
    def check_schedule(cls, schedule: str) -> None:
        if schedule not in SCHEDULES:
            raise TinctError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")

    def optimizers(self, cfg, total_steps: int) -> dict[str, torch.optim.Optimizer]:
        """Adam for generator and critic, beta1 0.5 as in pix2pix/DCGAN. ``cfg``: a ``TrainConfig``."""
        self.plan = Plan(cfg.schedule, total_steps, cfg.seed)
        return {"generator": torch.optim.Adam(self.generator_parameters(), lr=cfg.lr, betas=(0.5, 0.999),
                                              weight_decay=cfg.weight_decay),
                "critic": torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, betas=(0.5, 0.999))}

    def snapshot_due(self, done: int) -> bool:
        return self.plan is not None and self.plan.snapshot_due(done)

    def train_step(self, batch, step: int, optimizers: dict, compute_losses=None) -> dict:
        """One update (or two) of the phase ``step`` belongs to; returns named, detached losses (``"loss"`` first).

        ``compute_losses`` is not used: the phases decide which losses a step computes.
        """
        if self.plan is None:
            raise RuntimeError("call optimizers() before train_step()")
        L, ab, hints = batch
        phase = self.plan.phase(step)
        g = torch.Generator().manual_seed(self.plan.seed * 1_000_003 + 7919 * step + 2)
        real_in = self.critic_input(L, ab)
        log = {}
        if phase in ("critic-warmup", "critic", "gan", "standard"):
            if phase == "critic-warmup":
                fake_ab = corrupt_colors(ab, g)
            else:
                with torch.no_grad():
                    fake_ab = self.sample(L, hints, g)
            log.update(self._critic_step(real_in, self.critic_input(L, fake_ab), optimizers["critic"], g))
        if phase in ("generator", "gan", "standard"):
            log.update(self._generator_step(L, ab, hints, real_in, phase, optimizers["generator"], g))
        loss = log.pop("g_total") if "g_total" in log else log["d_loss"]
        return {"loss": loss, **log, "phase": phase}

    def _critic_step(self, real_in, fake_in, optim, g) -> dict:
        kind = self.config.gan_loss
        optim.zero_grad(set_to_none=True)
        loss = critic_loss(kind, self.critic(real_in), self.critic(fake_in))
        out = {"d_loss": loss.detach()}
        if kind == "wgan-gp":
            gp = gradient_penalty(self.critic, real_in, fake_in, g)
            loss = loss + self.config.gp_weight * gp
            out["d_gp"] = gp.detach()
        loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), 5.0)
        optim.step()
        return out

    def _generator_step(self, L, ab, hints, real_in, phase, optim, g) -> dict:
        cfg = self.config
        self.critic.requires_grad_(False)  # its gradients are not wanted here, only through it
        try:
            optim.zero_grad(set_to_none=True)
            fakes, terms = self.generator_terms(L, ab, hints, g)
            if phase in ("gan", "standard") and cfg.adv_weight > 0:
                adv = sum(generator_loss(cfg.gan_loss, self.critic(self.critic_input(L, f))) for f in fakes)
                terms["g_adv"] = cfg.adv_weight * adv / len(fakes)
            if self.plan.schedule == "nogan" and cfg.feature_weight > 0:
                with torch.no_grad():
                    real_feats = self.critic.features(real_in)[:-1]
                fake_feats = self.critic.features(self.critic_input(L, fakes[0]))[:-1]
                feat = sum(F.l1_loss(f, r) for f, r in zip(fake_feats, real_feats)) / len(real_feats)
                terms["g_feat"] = cfg.feature_weight * feat
            total = sum(terms.values())
            total.backward()
            nn.utils.clip_grad_norm_(self.generator_parameters(), 5.0)
            optim.step()
        finally:
            self.critic.requires_grad_(True)
        return {"g_total": total.detach(), **{k: v.detach() for k, v in terms.items()}}
