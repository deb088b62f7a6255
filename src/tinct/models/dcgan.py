"""Conditional DCGAN colorizer with noise, built to give *different* plausible colorings.

The survey's DCGAN put a noise channel beside L (``noise="input"``) and its
"advanced" generator copies and concatenates encoder maps into the decoder;
the noise changed nothing, because the L1 term pulls every sample to the same
average. Here:

- a latent ``z`` (``z_dim`` numbers per image, drawn from N(0, 1)) enters at the
  input *and*, tiled, at every decoder level (``noise="all"``, as BicycleGAN's
  "add to all"), so it cannot be washed out by depth;
- a diversity-sensitive term (Yang et al. 2019, DSGAN; Mao et al. 2019, mode
  seeking): two samples per photo, the generator is rewarded by
  ``diversity_weight`` x min(|G(z1) - G(z2)| / |z1 - z2|, ``diversity_cap``);
- the pixel term is the *smaller* L1 of the two samples (best-of-two, as in
  multiple-choice learning), so one sample may match the truth while the other
  explores.

``diversity_weight=0`` with ``noise="input"`` is the survey's baseline. At
inference ``z`` is drawn from ``forward``'s ``seed`` (sample k of ``tinct colorize
--samples``; default 0), per call: colorization is repeatable and never changes the model. Critic: the DCGAN discriminator (one score per
image) by default. Stride: ``2**depth``.
"""
from __future__ import annotations

import dataclasses

import torch

from ..color import AB_SCALE
from ..errors import TinctError
from .adversarial import AdversarialConfig, AdversarialModel
from .pix2pix import UNetGenerator
from .registry import register

NOISE_MODES = ("input", "all")


@dataclasses.dataclass
class DCGANConfig(AdversarialConfig):
    base_channels: int = 32        # generator width at its first layer
    depth: int = 4                 # stride-2 levels of the generator
    z_dim: int = 8                 # noise numbers per image (tinct colorize --samples draws new ones)
    noise: str = "all"             # "input": beside L only (the survey); "all": also at every decoder level
    diversity_weight: float = 5.0  # reward for samples that differ (0: the survey's baseline)
    diversity_cap: float = 0.1     # ab spread (/110) per unit of |z1 - z2| worth rewarding: ~12 Lab units
    critic: str = "global"


@register("dcgan")
class DCGAN(AdversarialModel):
    Config = DCGANConfig
    stochastic = True

    def __init__(self, config: DCGANConfig):
        if config.noise not in NOISE_MODES:
            raise TinctError(f"unknown noise mode {config.noise!r}; known: {', '.join(NOISE_MODES)}")
        super().__init__(config, config.base_channels)
        self.stride = 2 ** config.depth
        extra = config.z_dim if config.noise == "all" else 0
        self.generator = UNetGenerator(self.in_channels + config.z_dim, config.base_channels, config.depth,
                                       config.self_attention, extra=extra)

    def draw_z(self, batch: int, generator: torch.Generator, device=None) -> torch.Tensor:
        """``(batch, z_dim)`` from N(0, 1), drawn on the CPU generator (same numbers on any device)."""
        return torch.randn(batch, self.config.z_dim, generator=generator).to(device or "cpu")

    def forward(self, L: torch.Tensor, hints: torch.Tensor | None = None, z: torch.Tensor | None = None,
                seed: int = 0) -> dict:
        """As ``ColorModel.forward``; ``z`` ``(B, z_dim)``, or drawn from ``seed`` (sample ``seed`` of a photo).

        ``z`` travels as an argument, never as state, so threads sharing the model can sample at once.
        """
        if z is None:
            z = self.draw_z(L.shape[0], torch.Generator().manual_seed(int(seed)))
        z = z.to(L)

        def tiled(h: int, w: int) -> torch.Tensor:
            return z[:, :, None, None].expand(-1, -1, h, w)

        x = self.network_input(L, hints)
        x = torch.cat([x, tiled(*x.shape[-2:])], 1)
        return self.head_outputs(self.generator(x, tiled if self.config.noise == "all" else None), L)

    # --------------------------------------------------------- training ---
    def sample(self, L, hints, g):
        return self(L, hints, z=self.draw_z(L.shape[0], g, L.device))["ab"]

    def generator_terms(self, L, ab, hints, g):
        cfg = self.config
        z1 = self.draw_z(L.shape[0], g, L.device)
        out1 = self(L, hints, z=z1)
        if cfg.diversity_weight <= 0:
            return [out1["ab"]], {"g_rec": self.reconstruction(out1, ab)}
        z2 = self.draw_z(L.shape[0], g, L.device)
        out2 = self(L, hints, z=z2)
        if cfg.head == "classification":
            rec = (self.reconstruction(out1, ab) + self.reconstruction(out2, ab)) / 2
        else:  # best of two, per photo
            e1 = (out1["ab"] - ab).abs().mean(dim=(1, 2, 3)) / AB_SCALE
            e2 = (out2["ab"] - ab).abs().mean(dim=(1, 2, 3)) / AB_SCALE
            rec = cfg.l1_weight * torch.minimum(e1, e2).mean()
        spread = (out1["ab"] - out2["ab"]).abs().mean(dim=(1, 2, 3)) / AB_SCALE
        div = (spread / (z1 - z2).abs().mean(dim=1).clamp_min(1e-6)).clamp(max=cfg.diversity_cap).mean()
        return [out1["ab"], out2["ab"]], {"g_rec": rec, "g_div": -cfg.diversity_weight * div}
