"""Turn ``tinct train`` flags into model options: ``--option KEY=VALUE`` parsing."""
from __future__ import annotations

import json

from .errors import TinctError


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
