"""The restoration network: damaged luminance in, clean luminance and a damage mask out.

A small U-Net on L (Bringing Old Photos Back to Life at our scale: one network, two heads, learned
from synthetic damage, ``degrade.py``). Registered as the model family ``restore`` so the same
``tinct train`` loop trains it (``tinct train --model restore ...``): the loop hands it clean crops
(``training_batch`` damages them, seeded by the step, so resume stays exact) and asks it for its own
validation scores (``validation_scores``); it knows nothing else about it.

Contract: ``forward(L)`` with ``L`` ``(B, 1, H, W)`` in [0, 100], H and W multiples of ``stride``
-> ``{"L": (B, 1, H, W) restored, "mask_logits": (B, 1, H, W)}`` (sigmoid > 0.5: scratch, dust, crack).
The restored L is the input under a global tone curve (fading, lifted blacks and gamma are global) plus a local
residual: a correction on top of the input, never a re-synthesis of it. Both start at zero (the untrained
network returns its input), and the training mix has clean and singly damaged crops, so what is not damaged is
left alone (the first, 300-step network was a gain and offset with a randomly initialised residual, trained on
the heavy mix only: it lowered an undamaged photo to 29.6 dB).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import TinctError
from ..models.base import Trainable, conv_bn_relu
from ..models.registry import register
from ..models.widen import unet_decoder_parts
from .tone import ToneCurve, apply_curve, quantiles


@dataclasses.dataclass
class RestoreConfig:
    base_channels: int = 16
    depth: int = 3
    mask_weight: float = 0.5        # weight of the mask's cross-entropy (+ Dice) beside the loss on L
    # the loss on L: "l1", or "rmse", the root of the batch's mean squared error, whose minimum is the MSE's (what
    # PSNR measures: the conditional mean where the clean photo is uncertain, not the median) at an L1's scale
    pixel_loss: str = "l1"
    # weight of a second loss on L: the root mean square of the error averaged over TONE_BLOCK-px blocks, i.e. of
    # the photo's tones (fading, vignetting) and not its detail. How far to stretch a faded print is uncertain, and
    # there PSNR wants the mean of the possible tones where the L1 gives their median; the detail keeps the L1
    tone_loss: float = 0.0
    mask_pos_weight: float = 4.0    # damage is a few % of the pixels: positives count this much more
    degradation_scale: float = 1.0  # widths of the training scratches / dust (degrade.DegradeConfig.scale)
    clean_fraction: float = 0.1     # training crops left undamaged (degrade.training_sample)
    single_fraction: float = 0.3    # training crops with one kind of damage alone
    aged_kinds: bool = False        # those single kinds also stains and craquelure (degrade.KINDS), not only the mix's
    tone_degree: int = 3            # global tone curve: a polynomial of this degree in the input L
    tone_stage: bool = False        # a tone.ToneCurve, fitted apart (fit_tone_curve), undoes fading before the U-Net
    # read by the trainer, which asks every family; not options (no hint inputs, no ab head)
    head = "restore"
    hint_channels = 0


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


PIXEL_LOSSES = ("l1", "rmse")
TONE_BLOCK = 8  # px: the tone loss compares the restored and clean L averaged over blocks this size


def level_widths(config: RestoreConfig) -> list[int]:
    """Channels at each level of the U-Net, full resolution first: 16, 32, 64, 64 for 16 base channels."""
    return [config.base_channels * 2 ** min(i, 2) for i in range(config.depth + 1)]


_QUANTILES = (0.005, 0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98, 0.995)  # what the U-Net's own global curve reads


@register("restore")
class RestoreNet(Trainable, nn.Module):
    Config = RestoreConfig
    task = "restore"  # not a colorization family: `list_models()` leaves it out, `list_models("restore")` has it

    def __init__(self, config: RestoreConfig):
        super().__init__()
        if config.pixel_loss not in PIXEL_LOSSES:
            raise TinctError(f"unknown pixel_loss {config.pixel_loss!r}; known: {', '.join(PIXEL_LOSSES)}")
        self.config = config
        widths = level_widths(config)
        self.stride = 2 ** config.depth
        self.enc = nn.ModuleList()
        cin = 1
        for w in widths:
            self.enc.append(_Block(cin, w))
            cin = w
        self.dec = nn.ModuleList(_Block(widths[i + 1] + widths[i], widths[i]) for i in range(config.depth - 1, -1, -1))
        top = widths[-1]
        self.n_tone = config.tone_degree + 1
        # pooled features and the input's own quantiles -> a global tone curve of the input (undoing a fade is
        # a monotone map of L: the quantiles say how far the blacks are lifted and the contrast lost)
        self.global_mlp = nn.Sequential(nn.Linear(2 * top + len(_QUANTILES), top), nn.ReLU(inplace=True),
                                        nn.Linear(top, top + self.n_tone))
        self.head = nn.Conv2d(widths[0], 2, 1)  # residual on L, mask logit
        self.tone = ToneCurve() if config.tone_stage else None
        if self.tone is not None:
            # fitted apart on tens of thousands of damaged photos (tone.fit_tone_curve); the trainer's 8 crops a
            # step would only blur it, so the U-Net trains around it
            self.tone.requires_grad_(False)
        nn.init.zeros_(self.global_mlp[-1].weight)
        nn.init.zeros_(self.global_mlp[-1].bias)  # the tone curve starts as the identity
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([0.0, -3.0]))  # no correction, and damage is rare (p = 0.05)

    def forward(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> dict:
        x = L / 50.0 - 1.0
        if self.tone is not None:
            x = self.tone(x)
        skips = []
        h = x
        for i, block in enumerate(self.enc):
            if i > 0:
                h = F.max_pool2d(h, 2)
            h = block(h)
            skips.append(h)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3)), quantiles(x, _QUANTILES)], 1)
        g = self.global_mlp(pooled)
        coef, ctx = g[:, :self.n_tone], g[:, self.n_tone:, None, None]
        h = h + ctx
        for j, block in enumerate(self.dec):
            skip = skips[len(skips) - 2 - j]
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], 1))
        out = self.head(h)
        restored = apply_curve(x, coef) + out[:, :1]
        return {"L": (restored + 1.0) * 50.0, "mask_logits": out[:, 1:]}

    # ------------------------------------------------------------------------ training ---
    def training_batch(self, rgb_uint8: torch.Tensor, g: torch.Generator):
        """Clean crops ``(B, S, S, 3)`` uint8 -> (damaged L ``(B, 1, S, S)``, target ``(B, 2, S, S)``, None).

        The target stacks the clean L and the damage mask (0/1). The damage is drawn from a NumPy
        generator seeded by ``g`` (itself seeded by the step): the same step gives the same batch.
        """
        from ..data import to_lab_batch
        from .degrade import KINDS, MIX_KINDS, DegradeConfig, training_sample  # OpenCV: only when training
        L, _ = to_lab_batch(rgb_uint8)
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=g)))
        cfg = DegradeConfig(scale=self.config.degradation_scale)
        damaged, masks = [], []
        for i in range(L.shape[0]):
            d = training_sample(L[i, 0].numpy(), rng, cfg, self.config.clean_fraction, self.config.single_fraction,
                                KINDS if self.config.aged_kinds else MIX_KINDS)
            damaged.append(d.L)
            masks.append(d.mask)
        damaged = torch.from_numpy(np.stack(damaged))[:, None]
        target = torch.cat([L, torch.from_numpy(np.stack(masks)).float()[:, None]], 1)
        return damaged, target, None

    # ------------------------------------------------------------------------ widening (models.widen) ---
    WIDEN_ZERO_OUTPUTS = ("global_mlp.2.",)  # the new channels' context starts at zero, as a new network's does

    def widen_input_parts(self, name: str) -> list[int] | None:
        """A decoder block reads the upsampled map and the skip; the global MLP the pooled mean, maximum and the
        input's quantiles."""
        widths = level_widths(self.config)
        if name == "global_mlp.0.weight":
            return [widths[-1], widths[-1], len(_QUANTILES)]
        return unet_decoder_parts(name, widths, self.config.depth)

    @property
    def loss_names(self) -> tuple[str, ...]:
        tone = ("tone_rmse",) if self.config.tone_loss else ()
        return (self.config.pixel_loss, *tone, "mask_bce", "val_mask_f1", "val_psnr_input")

    def compute_losses(self, L: torch.Tensor, target: torch.Tensor, hints=None) -> dict:
        return self.losses(self(L), target)

    def losses(self, out: dict, target: torch.Tensor) -> dict:
        """``pixel_loss`` on L (in units of 100) [+ ``tone_loss`` x the RMS of the block-averaged error] +
        ``mask_weight`` x (weighted cross-entropy + soft Dice) on the mask."""
        clean, mask = target[:, :1], target[:, 1:]
        err = (out["L"] - clean) / 100.0
        pixel = err.abs().mean() if self.config.pixel_loss == "l1" else (err.pow(2).mean() + 1e-12).sqrt()
        logits = out["mask_logits"]
        pos = torch.tensor(self.config.mask_pos_weight, device=logits.device)
        bce = F.binary_cross_entropy_with_logits(logits, mask, pos_weight=pos)
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * mask).sum() + 1) / (p.sum() + mask.sum() + 1)
        loss = pixel + self.config.mask_weight * (bce + dice)
        named = {self.config.pixel_loss: pixel.detach(), "mask_bce": bce.detach()}
        if self.config.tone_loss:
            tone = (F.avg_pool2d(err, TONE_BLOCK, ceil_mode=True).pow(2).mean() + 1e-12).sqrt()
            loss = loss + self.config.tone_loss * tone
            named["tone_rmse"] = tone.detach()
        return {"loss": loss, **named}

    @torch.no_grad()
    def validation_scores(self, rgb_uint8: torch.Tensor) -> dict:
        """Damage the validation photos ``(N, S, S, 3)`` uint8 the same way every time; score the restoration.

        Returns ``val_loss``, ``val_psnr`` (restored L against clean, dB), ``val_psnr_input`` (the damaged
        input's) and ``val_mask_f1`` (pixels, predicted mask vs true).
        """
        from ..data import to_lab_batch
        from .degrade import DegradeConfig, degrade
        from .metrics import mask_scores, psnr_l
        L, _ = to_lab_batch(rgb_uint8)
        rng = np.random.default_rng(20261129)
        cfg = DegradeConfig(scale=self.config.degradation_scale)
        degs = [degrade(L[i, 0].numpy(), rng, cfg) for i in range(len(L))]
        x = torch.from_numpy(np.stack([d.L for d in degs]))[:, None]
        truth_mask = np.stack([d.mask for d in degs])
        dev = next(self.parameters()).device
        losses, outs, probs = [], [], []
        for i in range(0, len(x), 32):
            out = self(x[i:i + 32].to(dev))
            target = torch.cat([L[i:i + 32], torch.from_numpy(truth_mask[i:i + 32]).float()[:, None]], 1)
            losses.append(float(self.losses(out, target.to(dev))["loss"]))
            outs.append(out["L"].clamp(0, 100).cpu())
            probs.append(torch.sigmoid(out["mask_logits"]).cpu())
        pred = torch.cat(outs)[:, 0].numpy()
        mask = torch.cat(probs)[:, 0].numpy() > 0.5
        clean = L[:, 0].numpy()
        return {"val_loss": float(np.mean(losses)),
                "val_psnr": float(np.mean([psnr_l(p, t) for p, t in zip(pred, clean)])),
                "val_psnr_input": float(np.mean([psnr_l(d.L, t) for d, t in zip(degs, clean)])),
                "val_mask_f1": mask_scores(mask, truth_mask)["f1"]}
