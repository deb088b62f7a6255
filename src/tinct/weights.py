"""Model files: safetensors with the model's name and config in the header.

Header metadata (all strings, as safetensors requires):
``{"tinct_format": "1", "model": name, "config": JSON, "trained_on": ..., "steps": ...}``
so ``load_model(path)`` rebuilds the network with nothing else. Pickle files
are never unpickled unless the caller says it trusts them.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import TinctError
from .io import atomic_path
from .models import create_model
from .models.base import ColorModel

FORMAT_VERSION = "1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "default"


def shipped_models() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors") if not p.stem.startswith("_"))


def save_model(model: ColorModel, path: str | os.PathLike, trained_on: str = "", steps: int = 0,
               extra: dict | None = None) -> None:
    meta = {"tinct_format": FORMAT_VERSION, "model": model.name,
            "config": json.dumps(dataclasses.asdict(model.config)),
            "trained_on": trained_on, "steps": str(steps)}
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def read_header(path: str | os.PathLike) -> dict:
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise TinctError(f"{path}: not a safetensors model file ({str(e).splitlines()[0]})") from None


def resolve_model_path(name_or_path: str | os.PathLike | None) -> Path:
    """A shipped model name ("default", ...) or a path to a ``.safetensors`` file."""
    name_or_path = str(name_or_path or DEFAULT_MODEL)
    if name_or_path in shipped_models():
        return WEIGHTS_DIR / f"{name_or_path}.safetensors"
    path = Path(name_or_path)
    if path.is_dir() and (path / "model.safetensors").exists():
        return path / "model.safetensors"
    if not path.exists():
        raise TinctError(f"model {name_or_path!r}: not a shipped model ({', '.join(shipped_models()) or 'none'}) "
                         "nor an existing file")
    return path


def load_model(name_or_path: str | os.PathLike | None = None, trust_pickle: bool = False,
               device: str | torch.device = "cpu") -> ColorModel:
    """Rebuild a model from its file, in eval mode. Safetensors only, unless ``trust_pickle``."""
    path = resolve_model_path(name_or_path)
    if path.suffix in (".pt", ".pth", ".ckpt", ".bin", ".pkl"):
        if not trust_pickle:
            raise TinctError(f"{path}: pickle model files can run code; convert to safetensors or pass --trust-pickle")
        return _load_pickle(path, device)
    meta = read_header(path)
    if meta.get("tinct_format") != FORMAT_VERSION:
        raise TinctError(f"{path}: not a tinct model file (missing or unknown tinct_format in the header)")
    try:
        config = json.loads(meta["config"])
        name = meta["model"]
    except (KeyError, json.JSONDecodeError):
        raise TinctError(f"{path}: model header lacks a valid 'model' or 'config'") from None
    if not isinstance(config, dict):
        raise TinctError(f"{path}: model header 'config' is not an object")
    model = create_model(name, **config)
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise TinctError(f"{path}: weights do not match the {name} config ({str(e).splitlines()[0]})") from None
    model.meta = meta
    return model.to(device).eval()


def _load_pickle(path: Path, device) -> ColorModel:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything but tensors and plain containers
        raise TinctError(f"{path}: cannot load pickle safely ({str(e).splitlines()[0]})") from None
    if not isinstance(obj, dict) or "model" not in obj or "config" not in obj or "state_dict" not in obj:
        raise TinctError(f"{path}: pickle must hold {{'model', 'config', 'state_dict'}}")
    model = create_model(obj["model"], **obj["config"])
    model.load_state_dict(obj["state_dict"])
    model.meta = {"model": obj["model"]}
    return model.to(device).eval()
