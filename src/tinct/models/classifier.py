"""Colorization as classification (Zhang, Isola & Efros 2016): the ``cnn`` trunk with a 313-style head.

The network is the paper's (the ``cnn`` family's 8 conv blocks, ``width`` 1.0
being the paper's channel counts); what makes it Zhang et al. is the head and
the loss, both shared with every family in ``base.py`` / ``bins.py``: ab cut into
cells of 10 and the cells the *training photos* use kept as classes
(``num_bins``, computed by the trainer from the training set's ab histogram and
stored with the weights), truth soft-encoded over its 5 nearest cells (sigma 5),
a cross-entropy weighted by class rebalancing (smoothed prior mixed with
uniform, lambda 0.5), and the annealed mean with temperature T (0.38; ``tinct
colorize --temperature``) to decode. Logits at 1/4 resolution. Stride: 8.
"""
from __future__ import annotations

import dataclasses

from .cnn import CNN, CNNConfig
from .registry import register


@dataclasses.dataclass
class ClassifierConfig(CNNConfig):
    head: str = "classification"


@register("classifier")
class Classifier(CNN):
    Config = ClassifierConfig
