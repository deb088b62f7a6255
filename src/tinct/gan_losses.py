"""Adversarial losses: the critic's and the generator's side of vanilla, LSGAN, hinge and WGAN-GP.

Critic outputs are raw scores of any shape (a PatchGAN gives ``(B, 1, h, w)``, one
per patch; a global critic ``(B, 1, 1, 1)``); every loss is a mean over them.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

GAN_LOSSES = ("vanilla", "lsgan", "hinge", "wgan-gp")


def check_kind(kind: str) -> str:
    if kind not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {kind!r}; known: {', '.join(GAN_LOSSES)}")
    return kind


def critic_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Loss the critic minimises, from its scores on real and on generated images."""
    if kind == "vanilla":  # Goodfellow et al. 2014, as binary cross-entropy on logits
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))) / 2
    if kind == "lsgan":  # Mao et al. 2017: targets 1 and 0, squared error
        return (F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))) / 2
    if kind == "hinge":  # Lim & Ye 2017, as in SAGAN/BigGAN
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wgan-gp":  # Gulrajani et al. 2017; the penalty is added by the caller (it needs the critic)
        return fake.mean() - real.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Adversarial loss the generator minimises, from the critic's scores on its output."""
    if kind == "vanilla":  # the non-saturating form: -log D(G(x))
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP penalty: ``E[(||grad critic(x_hat)||_2 - 1)^2]`` on random mixes of real and fake.

    ``real``, ``fake``: critic inputs ``(B, C, H, W)``; ``generator`` makes the mix
    weights reproducible (exact resume).
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real)
    mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    grad, = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
