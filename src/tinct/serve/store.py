"""The models a server offers: public names fixed at start-up, files loaded once on first use.

Clients choose a model by one of these names only; a name is looked up in a
dict, never joined to a path, so no request string reaches the filesystem.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from ..catalog import model_file_info
from ..errors import TinctError
from ..models.base import ColorModel
from ..weights import DEFAULT_MODEL, load_model, resolve_model_path, shipped_models


@dataclass
class ModelInfo:
    """What ``/api/models`` tells about a model (read from its file header, without loading it)."""
    name: str
    family: str
    head: str
    hints: bool          # takes user color points
    description: str     # one line: what the model is (its header's ``description``, or built from its config)
    trained_on: str      # the training data's names, never a path of the machine that trained it
    steps: int
    prior_correction: float | None = None  # classification heads: the model's own (0 bold .. 1 safe)


class ModelStore:
    def __init__(self, models: list[str] | None = None):
        """``models``: shipped names or ``.safetensors`` paths; the first is the default.

        None or empty: every shipped model, the shipped default first.
        """
        if not models:
            shipped = shipped_models()
            models = sorted(shipped, key=lambda n: n != DEFAULT_MODEL)
        if not models:
            raise TinctError("no models to serve: none shipped and none given with --model")
        self._paths: dict[str, Path] = {}
        self._info: dict[str, ModelInfo] = {}
        for spec in models:
            path = resolve_model_path(spec)
            name = str(spec) if str(spec) in shipped_models() else _public_name(path)
            if name in self._paths:
                raise TinctError(f"two models are both named {name!r}; rename one file")
            self._paths[name] = path
            self._info[name] = _read_info(name, path)
        self.default = next(iter(self._paths))
        self._loaded: dict[str, ColorModel] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._paths)

    def info(self, name: str) -> ModelInfo:
        return self._info[name]

    def get(self, name: str | None) -> tuple[str, ColorModel]:
        """(name, model) for a public name (None: the default). Unknown names raise ``KeyError``."""
        name = name or self.default
        path = self._paths[name]
        with self._lock:  # one load per model, even when the first requests arrive together
            if name not in self._loaded:
                self._loaded[name] = load_model(path)
            return name, self._loaded[name]

    @property
    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)


def _public_name(path: Path) -> str:
    return path.parent.name if path.name == "model.safetensors" else path.stem


def _read_info(name: str, path: Path) -> ModelInfo:
    f = model_file_info(name, path)
    return ModelInfo(name=name, family=f.family, head=f.head, hints=f.hints, description=f.description,
                     trained_on=f.datasets, steps=f.steps, prior_correction=f.prior_correction)
