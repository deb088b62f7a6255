"""Turn ``tinct train`` flags into model options: ``--option KEY=VALUE`` parsing and schedule checks."""
from __future__ import annotations

import json

from .errors import TinctError
from .models import model_class


def parse_value(text: str):
    """``"true"`` -> True, ``"4"`` -> 4, ``"0.5"`` -> 0.5, ``"null"`` -> None; anything else stays a string."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(items) -> dict:
    """``["backbone=xception", "depth=4"]`` -> ``{"backbone": "xception", "depth": 4}``; bad items are a TinctError."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise TinctError(f"--option {item!r}: expected KEY=VALUE")
        out[key] = parse_value(value)
    return out


def check_schedule(model_name: str, schedule: str) -> None:
    """``--schedule nogan`` needs a model that runs its own (GAN) updates."""
    if schedule != "standard" and not hasattr(model_class(model_name), "train_step"):
        raise TinctError(f"--schedule {schedule} needs a GAN model (pix2pix, dcgan), not {model_name}")
