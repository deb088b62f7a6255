"""Model registry: ``@register`` a family, ``create_model(name, **kw)`` builds it.

A family is a ``ColorModel`` subclass with a ``Config`` dataclass; keyword
arguments to ``create_model`` fill that dataclass, so an unknown option is an
error rather than silently ignored.
"""
from __future__ import annotations

import dataclasses

from ..errors import TinctError

_REGISTRY: dict[str, type] = {}


def register(name: str):
    def add(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return add


def list_models(task: str = "colorize") -> list[str]:
    """Registered families of ``task``: "colorize" (the forward contract of ``base.py``) or "restore"."""
    return [name for name, cls in _REGISTRY.items() if getattr(cls, "task", "colorize") == task]


def model_class(name: str) -> type:
    if name not in _REGISTRY:
        raise TinctError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def create_model(name: str, **kw):
    cls = model_class(name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(kw) - fields)
    if unknown:
        raise TinctError(f"model {name!r} has no option {', '.join(unknown)}; options: {', '.join(sorted(fields))}")
    return cls(cls.Config(**kw))
