"""Growing a trained network wider without changing what it computes.

Net2WiderNet (Chen et al. 2016) widens a layer by copying its units; here the new channels start random and
every old channel's weights on them start at zero, so the wide network computes exactly what the narrow one
did and training opens the new channels from where the narrow one stands. Session 20 grew the shipped
restorer 16 -> 32 channels this way (trained from scratch, the wide network lagged 13,100 steps behind).

A family that can be widened has a ``base_channels`` option, and two things to say:

- ``widen_input_parts(name)``: the lengths of the parts a weight's input is concatenated from (a U-Net's
  decoder block reads the upsampled map and the skip), or None for one part; each part's old channels keep
  their place at the start of that part;
- ``WIDEN_ZERO_OUTPUTS``: prefixes of weights whose new output channels must start at zero too (an attention
  query: a random new query dimension would change every attention logit).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from ..errors import TinctError


def widened(net: nn.Module, base_channels: int, seed: int = 0) -> nn.Module:
    """``net`` rebuilt with ``base_channels`` (more channels at every level), computing what ``net`` computes.

    Its weights and batch-norm statistics fill the first channels of each layer; the new channels are drawn
    from ``seed`` (the caller's random state is left as it was). Refuses a family without ``base_channels``
    and a narrowing (one-line ``TinctError``).
    """
    old_width = getattr(net.config, "base_channels", None)
    if old_width is None or not hasattr(net, "widen_input_parts"):
        raise TinctError(f"a {net.name} model cannot be widened (it has no base_channels to grow)")
    if base_channels < old_width:
        raise TinctError(f"cannot narrow a {net.name} network ({old_width} -> {base_channels} channels)")
    config = dataclasses.replace(net.config, base_channels=base_channels)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        wide = type(net)(config)
    old_state = net.state_dict()
    state = {}
    for name, w in wide.state_dict().items():
        o = old_state[name]
        if o.shape == w.shape:
            state[name] = o.clone()
            continue
        w = w.clone()
        if name.startswith(type(net).WIDEN_ZERO_OUTPUTS):
            w.zero_()
        if w.dim() >= 2:
            w[:o.shape[0]] = 0
            spans = _spans(net.widen_input_parts(name), wide.widen_input_parts(name), o.shape[1])
            for old_start, new_start, n in spans:
                w[:o.shape[0], new_start:new_start + n] = o[:, old_start:old_start + n]
        else:
            w[:o.shape[0]] = o
        state[name] = w
    wide.load_state_dict(state)
    return wide


def _spans(old_parts: list[int] | None, new_parts: list[int] | None, n_old: int) -> list[tuple[int, int, int]]:
    """``[(old_start, new_start, length)]``: where each part of a narrow input sits in the wide one."""
    if old_parts is None:
        return [(0, 0, n_old)]
    spans, old_start, new_start = [], 0, 0
    for n, m in zip(old_parts, new_parts):
        spans.append((old_start, new_start, n))
        old_start, new_start = old_start + n, new_start + m
    return spans


def unet_decoder_parts(name: str, widths: list[int], depth: int) -> list[int] | None:
    """The input parts of a U-Net's decoder block ``dec.j`` (first conv ``dec.j.0.0``): the upsampled map of
    level ``depth - j`` and the skip of level ``depth - 1 - j`` (``widths`` full resolution first); None for
    any other weight."""
    if name.startswith("dec.") and name.endswith(".0.0.weight"):
        level = depth - 1 - int(name.split(".")[1])
        return [widths[level + 1], widths[level]]
    return None
