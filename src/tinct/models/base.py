"""What every colorization network shares: the forward contract, the heads, the losses.

Contract: ``forward(L, hints=None) -> {"ab": (B, 2, H, W) in Lab units, ...}``
with ``L`` ``(B, 1, H, W)`` in [0, 100] and H, W multiples of ``model.stride``.
A classification head adds ``"logits"`` ``(B, Q, h, w)``.

A family only builds a trunk that maps normalised L to features; the head
(regression or classification over quantized ab) and the losses live here, so
every family can be trained either way by the same loop.

Training protocol (the trainer knows no family; every model answers the same calls):

- ``check_schedule(schedule)``: refuse a schedule the family cannot run (only GANs run ``nogan``);
- ``data_options(options, ab_hist)`` / ``fit_data(ab_hist)``: what the training photos decide, before and
  after the network is built (a classification head's classes and rebalancing weights; eccv16 keeps its own);
- ``optimizers(cfg, total_steps) -> {name: Optimizer}``: one Adam over ``parameter_groups()`` here; the GANs
  (``adversarial.py``) have a generator's and a critic's;
- ``train_step((L, ab, hints), step, optimizers, compute_losses) -> {"loss": ..., other named losses}``: one
  update. Here: the losses ``compute_losses`` names, backward, clipped gradients, Adam; the GANs order their
  own updates. The trainer sets learning rates (each group's ``lr_scale`` times the schedule), checkpoints every
  optimizer, and logs ``"loss"`` and the names in ``loss_names``;
- ``snapshot_due(step)``: whether to keep a copy of the weights now (NoGAN's GAN phase).

Models with noise inputs set ``stochastic = True``; their ``forward`` takes a ``seed`` (sample k of
``tinct colorize --samples``), so sampling never changes the model.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import bins
from ..color import AB_SCALE
from ..errors import TinctError
from .layers import resized


@dataclasses.dataclass
class BaseConfig:
    head: str = "regression"     # "regression" (ab directly) or "classification" (Zhang et al.)
    loss: str = "l1"             # regression loss: "l1", "l2" or "huber"
    num_bins: int = 0            # classification: number of in-gamut ab cells (set from the data)
    temperature: float = bins.TEMPERATURE  # classification decoding: annealed mean, 1 = the mean, toward 0 = the mode
    # classification decoding: 0 keeps the rebalanced distribution (vivid); 1 divides the rebalancing
    # weights back out (the unbiased posterior: closer colors, less vivid). Tuned on validation data.
    prior_correction: float = 0.0
    hint_channels: int = 0       # 0, or 3 for user color points (ab + mask)
    # training only: weight of a feature loss judged by a frozen ImageNet EfficientNet-Lite0 (feature_loss.py;
    # needs tinct[pretrained]), added to the head's loss; 0 = none
    feature_loss: float = 0.0
    # training only: weight of the same judge's KL divergence between its ImageNet class distributions on the
    # true and the predicted colors (Zhang et al.'s semantic test as a loss; feature_loss.py); 0 = none
    class_loss: float = 0.0
    # training only, classification: weight of an L1 on the *decoded* ab (the annealed mean at this file's
    # temperature and prior correction, each pixel weighted by its true color's rarity), added to the
    # cross-entropy: regression and classification together, the colors users see trained directly; 0 = none
    decoded_loss: float = 0.0
    # training only, classification: weight of the decoded colors' Euclidean ab error, clipped at 150, / 150, on
    # average: 1 - AuC of ab error over thresholds 0..150 (metrics.auc), the measure itself as a loss; 0 = none
    auc_loss: float = 0.0


# the training-only loss weights above: each a weight >= 0, 0 = off, and 0 in a shipped file (ship_default.py)
LOSS_WEIGHTS = ("feature_loss", "class_loss", "decoded_loss", "auc_loss")


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How a classification head's bins become ab for one call; None keeps the model's own setting.

    ``temperature``: annealed mean, 1 = the mean, toward 0 = the mode. ``prior_correction`` in [0, 1]:
    divides the bin probabilities by the training rebalancing weights to this power (0 = vivid as
    trained, 1 = calibrated and grayer).
    """
    temperature: float | None = None
    prior_correction: float | None = None


class Trainable:
    """The training protocol ``tinct train`` speaks to every registered family (colorizers and the restoration
    network alike): parameter groups, optimizers, one update step, data-dependent options, snapshots.
    Mixed into an ``nn.Module`` with ``config`` (a dataclass with ``head``) and ``compute_losses``."""
    loss_names: tuple[str, ...] = ()  # named losses besides "loss" that train_step reports (metrics.csv columns)
    data_parallel = True  # train_step's gradients can be synchronised by DistributedDataParallel (--distributed)

    def parameter_groups(self) -> list[dict]:
        """The optimizer's parameter groups; each ``lr_scale`` multiplies the scheduled learning rate."""
        return self.scaled_groups([])

    def scaled_groups(self, scaled: list[tuple[list, float]]) -> list[dict]:
        """Groups for parts trained at their own rate: each ``(parameters, lr_scale)`` of ``scaled`` is a group of
        its trainable parameters (none: no group), after one group of all other trainable parameters at 1x."""
        taken = {id(p) for params, _ in scaled for p in params}
        groups = [{"params": [p for p in self.parameters() if p.requires_grad and id(p) not in taken], "lr_scale": 1.0}]
        for params, lr_scale in scaled:
            trainable = [p for p in params if p.requires_grad]
            if trainable:
                groups.append({"params": trainable, "lr_scale": lr_scale})
        return groups

    @classmethod
    def check_schedule(cls, schedule: str) -> None:
        """Refuse a training schedule this family cannot run (one-line ``TinctError``)."""
        if schedule != "standard":
            raise TinctError(f"--schedule {schedule} needs a GAN model (pix2pix, dcgan), not {cls.name}")

    @classmethod
    def data_options(cls, options: dict, ab_hist) -> dict:
        """``options`` plus what the training photos' ab histogram ``ab_hist`` (23x23) decides before the network
        is built: a classification head gets one class per ab cell the photos use."""
        if options.get("head", cls.Config.head) == "classification":
            centers, _ = bins.bins_from_histogram(ab_hist)
            return {**options, "num_bins": len(centers)}
        return options

    def fit_data(self, ab_hist) -> None:
        """Take the training photos' ab histogram: a classification head's class centres and rebalancing weights."""
        if self.config.head == "classification":
            centers, _ = bins.bins_from_histogram(ab_hist)
            self.set_bins(centers, bins.rebalance_weights(ab_hist))

    def load_backbone(self, path) -> tuple[int, int]:
        """Pretrained encoder weights (``--backbone-weights``); only families with a classification backbone have one."""
        raise TinctError(f"--backbone-weights: model {self.name!r} has no pretrained backbone (use encoder-decoder)")

    def optimizers(self, cfg, total_steps: int) -> dict[str, torch.optim.Optimizer]:
        """One Adam over ``parameter_groups()``. ``cfg``: a ``TrainConfig`` (lr, weight_decay, schedule).

        Its name ``""`` makes its checkpoint keys ``optim.{i}.*``.
        """
        self.check_schedule(cfg.schedule)
        return {"": torch.optim.Adam(self.parameter_groups(), lr=cfg.lr, weight_decay=cfg.weight_decay)}

    def train_step(self, batch, step: int, optimizers: dict, compute_losses=None) -> dict:
        """One update on ``batch`` = (L, ab, hints); returns the named losses, ``"loss"`` the one minimised.

        ``compute_losses(L, ab, hints)``: ``self.compute_losses``, or the trainer's wrapper of it that
        synchronises gradients between processes (DistributedDataParallel).
        """
        (optim,) = optimizers.values()
        losses = (compute_losses or self.compute_losses)(*batch)
        optim.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.parameters() if p.requires_grad], 5.0)
        optim.step()
        return {k: v.detach() for k, v in losses.items()}

    def snapshot_due(self, done: int) -> bool:
        """After ``done`` steps: keep a copy of the weights now? (NoGAN's GAN phase does.)"""
        return False


class ColorModel(Trainable, nn.Module):
    name = "base"
    stride = 1
    Config = BaseConfig
    stochastic = False  # True: forward(L, hints, seed=k) draws its noise from seed k (``tinct colorize --samples``)

    def __init__(self, config: BaseConfig, trunk_channels: int, head_scale: int = 1):
        super().__init__()
        self.config = config
        if config.head == "classification":
            if config.num_bins <= 0:
                raise ValueError("a classification head needs num_bins > 0")
            self.head = nn.Conv2d(trunk_channels, config.num_bins, 1)
            self.register_buffer("bin_centers", torch.zeros(config.num_bins, 2))
            self.register_buffer("bin_weights", torch.ones(config.num_bins))
        elif config.head == "regression":
            self.head = nn.Conv2d(trunk_channels, 2, 1)
        else:
            raise ValueError(f"unknown head {config.head!r}")
        self.head_scale = head_scale  # trunk features are at 1/head_scale of the input size
        for name in LOSS_WEIGHTS:
            if getattr(config, name) < 0:
                raise TinctError(f"{name} is a weight >= 0, not {getattr(config, name)}")
        if config.head != "classification" and (config.decoded_loss or config.auc_loss):
            raise TinctError("decoded_loss and auc_loss weigh the decoded colors of a classification head "
                             f"(--head classification), not a {config.head} head")
        self._judge = None  # built on the first training step with feature_loss or class_loss > 0

    def frozen_modules(self) -> list[nn.Module]:
        """Pretrained parts (an encoder, or its frozen levels) that ``train()`` keeps in eval mode, so their
        batch-norm statistics stay the pretrained ones (whether or not their weights train)."""
        return []

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()
        return self

    @property
    def in_channels(self) -> int:
        return 1 + self.config.hint_channels

    @property
    def hint_channels(self) -> int:
        """Channels of the hint input (0: the model takes no color points; 3: a, b and a mask)."""
        return self.config.hint_channels

    def set_bins(self, centers, weights) -> None:
        self.bin_centers.copy_(torch.as_tensor(centers))
        self.bin_weights.copy_(torch.as_tensor(weights))

    def decode_logits(self, logits: torch.Tensor, decoding: Decoding | None = None,
                      log_prior: torch.Tensor | None = None) -> torch.Tensor:
        """Classification logits ``(B, Q, h, w)`` -> ab ``(B, 2, h, w)``: prior correction, then annealed mean.

        ``decoding`` overrides the config's temperature and prior correction for this call only (a model
        shared by server threads is never mutated). ``log_prior`` ``(Q,)`` or ``(B, Q)``: a log prior over
        the bins multiplied into the annealed distribution, after the temperature (a reference photo's
        prior fitted to that distribution, ``guided/palette.matched_prior``).
        """
        return torch.einsum("bqhw,qc->bchw", self.annealed_distribution(logits, decoding, log_prior),
                            self.bin_centers)

    def annealed_distribution(self, logits: torch.Tensor, decoding: Decoding | None = None,
                              log_prior: torch.Tensor | None = None) -> torch.Tensor:
        """The distribution over bins that ``decode_logits`` averages: ``(B, Q, h, w)``, summing to 1 over Q."""
        decoding = decoding or Decoding()
        correction = self.config.prior_correction if decoding.prior_correction is None else decoding.prior_correction
        temperature = self.config.temperature if decoding.temperature is None else decoding.temperature
        if correction:
            logits = logits - correction * torch.log(self.bin_weights)[None, :, None, None]
        if log_prior is not None:
            prior = log_prior.to(logits.device, logits.dtype)
            # softmax((logits + T log pi) / T) = softmax(logits / T + log pi)
            logits = logits + temperature * prior.reshape(-1, prior.shape[-1])[:, :, None, None]
        return torch.softmax(logits / temperature, dim=1)

    def decode(self, logits: torch.Tensor, size, decoding: Decoding | None = None,
               log_prior: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, Q, h, w)`` -> ab ``(B, 2, *size)``: ``decode_logits``, then bilinear up to the input size."""
        return resized(self.decode_logits(logits, decoding, log_prior), size)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---------------------------------------------------------------------- inference ---
    def forward(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> dict:
        return self.head_outputs(self.trunk(self.network_input(L, hints)), L)

    def network_input(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised L, and the hint channels (zeros when ``hints`` is None) for a model that takes them."""
        x = L / 50.0 - 1.0
        if self.config.hint_channels:
            if hints is None:
                hints = torch.zeros(L.shape[0], self.config.hint_channels, *L.shape[-2:], dtype=L.dtype, device=L.device)
            x = torch.cat([x, hints[:, :2] / AB_SCALE, hints[:, 2:]], dim=1)
        return x

    def head_outputs(self, feats: torch.Tensor, L: torch.Tensor) -> dict:
        """The trunk's features -> ``{"ab", and "logits" for a classification head}`` at ``L``'s size."""
        out = {}
        if self.config.head == "classification":
            logits = self.head(feats)
            out["logits"] = logits
            out["ab"] = self.decode(logits, L.shape[-2:])
        else:
            out["ab"] = resized(torch.tanh(self.head(feats)) * AB_SCALE, L.shape[-2:])
        return out

    @property
    def loss_names(self) -> tuple[str, ...]:
        return (("feature",) if self.config.feature_loss else ()) + \
            (("class",) if self.config.class_loss else ()) + \
            (("decoded",) if self.config.decoded_loss else ()) + (("auc_loss",) if self.config.auc_loss else ())

    def compute_losses(self, L: torch.Tensor, ab_true: torch.Tensor, hints: torch.Tensor | None = None) -> dict:
        """Named losses for one batch; ``"loss"`` is the one to minimise (the head's, plus the judge's)."""
        out = self(L, hints)
        losses = self.losses(out, ab_true)
        weights = {"feature": self.config.feature_loss, "class": self.config.class_loss}
        if any(weights.values()):
            if self._judge is None:
                from .feature_loss import ImageNetJudge
                # not a submodule: the judge stays out of the state dict and the model file
                self._judge = [ImageNetJudge()]
            judged = self._judge[0](L, out["ab"], ab_true)
            for name, weight in weights.items():
                if weight:
                    losses[name] = judged[name].detach()
                    losses["loss"] = losses["loss"] + weight * judged[name]
        return losses

    def losses(self, out: dict, ab_true: torch.Tensor) -> dict:
        """Named losses of a forward's output ``out`` against the true ab ``(B, 2, H, W)``."""
        if self.config.head == "classification":
            ce = bins.rebalanced_cross_entropy(out["logits"], ab_true, self.bin_centers, self.bin_weights)
            losses = {"loss": ce, "ce": ce.detach()}
            if self.config.decoded_loss or self.config.auc_loss:
                decoded = self.decode_logits(out["logits"])
                truth = F.interpolate(ab_true, size=decoded.shape[-2:], mode="area")
            if self.config.decoded_loss:
                rarity = self.bin_weights[bins.nearest_bin(truth, self.bin_centers)]
                l1 = ((decoded - truth).abs().sum(1) / AB_SCALE * rarity).mean()
                losses["decoded"] = l1.detach()
                losses["loss"] = losses["loss"] + self.config.decoded_loss * l1
            if self.config.auc_loss:
                # the mean over thresholds t in [0, T] of P(err <= t) is 1 - E[min(err, T)] / T; the epsilon keeps
                # the norm's gradient finite where a pixel is exactly right
                err = ((decoded - truth).pow(2).sum(1) + 1e-6).sqrt().clamp(max=bins.AUC_MAX_ERROR)
                auc_loss = (err / bins.AUC_MAX_ERROR).mean()
                losses["auc_loss"] = auc_loss.detach()
                losses["loss"] = losses["loss"] + self.config.auc_loss * auc_loss
            return losses
        return {"loss": regression_loss(out["ab"], ab_true, self.config.loss)}


def regression_loss(ab_pred: torch.Tensor, ab_true: torch.Tensor, kind: str) -> torch.Tensor:
    """Pixel loss on ab normalised to about [-1, 1]."""
    p, t = ab_pred / AB_SCALE, ab_true / AB_SCALE
    if kind == "l1":
        return F.l1_loss(p, t)
    if kind == "l2":
        return F.mse_loss(p, t)
    if kind == "huber":
        return F.smooth_l1_loss(p, t, beta=0.1)
    raise ValueError(f"unknown loss {kind!r}")


def conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )
