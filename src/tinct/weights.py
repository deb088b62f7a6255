"""Model files: safetensors with the model's name and config in the header.

Header metadata (all strings, as safetensors requires):
``{"tinct_format": "1", "model": name, "config": JSON, "trained_on": ..., "steps": ...}``
so ``load_model(path)`` rebuilds the network with nothing else. Pickle files
are never unpickled unless the caller says it trusts them.

Finding a model file and reading its header need no torch (``onnxrt`` runs shipped models without it);
building the network imports torch and the model families.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from .errors import TinctError
from .io import atomic_path

if TYPE_CHECKING:
    import torch

    from .models.base import ColorModel

FORMAT_VERSION = "1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "default"


def shipped_models() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors") if not p.stem.startswith("_"))


def save_model(model: ColorModel, path: str | os.PathLike, trained_on: str = "", steps: int = 0,
               extra: dict | None = None, half: bool = False) -> None:
    """Write ``model`` with its header; ``half`` stores float tensors as float16 (rebuilt as float32 on load)."""
    from safetensors.torch import save_file
    meta = {"tinct_format": FORMAT_VERSION, "model": model.name,
            "config": json.dumps(dataclasses.asdict(model.config)),
            "trained_on": trained_on, "steps": str(steps)}
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def read_header(path: str | os.PathLike) -> dict:
    try:
        with safe_open(str(path), framework="numpy") as f:  # the header only: no tensor, no torch
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
        from .models import list_models
        shipped = ", ".join(shipped_models()) or "none"
        if name_or_path in list_models():  # the most common mix-up: a family is something to train, not weights
            raise TinctError(f"model {name_or_path!r} is a family to train (tinct train --model {name_or_path}), "
                             f"not trained weights; pass a shipped model ({shipped}) or a trained file "
                             "(RUN/model.safetensors); see `tinct models`")
        raise TinctError(f"model {name_or_path!r}: not a shipped model ({shipped}) nor an existing file")
    return path


def load_model(name_or_path: str | os.PathLike | None = None, trust_pickle: bool = False,
               device: str | torch.device = "cpu", overrides: dict | None = None, grow: bool = False) -> ColorModel:
    """Rebuild a model from its file, in eval mode. Safetensors only, unless ``trust_pickle``.

    Everything is checked before weights are read: the header (format, model name,
    config keys and value types) and every tensor's name, shape and dtype, against
    the network the config describes (built on the meta device, so a hostile config
    cannot make us allocate). Any mismatch is a one-line ``TinctError``. ``overrides``
    replaces config options (fine-tuning: freezing, decoding); one that changes a
    tensor's shape is refused by the same checks. ``grow``: options that add modules (a new branch) are
    accepted; the tensors the file lacks keep their initialisation (training only: ``tinct train --init``).
    """
    path = resolve_model_path(name_or_path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise TinctError(f"{path}: pickle model files can run code; convert to safetensors or pass --trust-pickle")
        return _load_pickle(path, device)
    meta = read_header(path)
    if meta.get("tinct_format") != FORMAT_VERSION:
        raise TinctError(f"{path}: not a tinct model file (missing or unknown tinct_format in the header)")
    if "model" not in meta or "config" not in meta:
        raise TinctError(f"{path}: model header lacks {'model' if 'model' not in meta else 'config'!r}")
    try:
        config = json.loads(meta["config"])
    except json.JSONDecodeError:
        raise TinctError(f"{path}: model header 'config' is not valid JSON") from None
    if overrides and isinstance(config, dict):
        config = {**config, **overrides}
    name = meta["model"]
    with safe_open(str(path), framework="pt") as f:
        found = {k: (tuple(f.get_slice(k).get_shape()), _SAFETENSORS_FLOAT.get(f.get_slice(k).get_dtype(), False))
                 for k in f.keys()}
        _check_model(path, name, config, found, allow_missing=grow)
        state = {k: f.get_tensor(k) for k in f.keys()}
    model = _build(path, name, config, state, strict=not grow)
    model.meta = meta
    return model.to(device).eval()


PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")
_SAFETENSORS_FLOAT = {"F64": True, "F32": True, "F16": True, "BF16": True, "F8_E4M3": True, "F8_E5M2": True}


def _check_model(path: Path, name, config, found: dict[str, tuple[tuple[int, ...], bool]],
                 allow_missing: bool = False) -> None:
    """Validate ``name``/``config`` and the tensors ``found`` (name -> (shape, is_float)) for the model they describe."""
    import torch

    from .models import create_model, model_class
    if not isinstance(name, str):
        raise TinctError(f"{path}: model name must be a string, not {type(name).__name__}")
    if not isinstance(config, dict):
        raise TinctError(f"{path}: model header 'config' is not an object")
    try:
        cls = model_class(name)
    except TinctError as e:
        raise TinctError(f"{path}: {e}") from None
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    for key, value in config.items():
        if key not in fields:
            raise TinctError(f"{path}: model {name!r} has no option {key!r}; options: {', '.join(sorted(fields))}")
        want = type(fields[key].default) if fields[key].default is not dataclasses.MISSING else None
        if want in (bool, int, float, str) and not _is_type(value, want):
            raise TinctError(f"{path}: config {key!r} must be {want.__name__}, not {type(value).__name__} ({value!r})")
    try:
        with torch.device("meta"):
            skeleton = create_model(name, **config)
    except TinctError as e:
        raise TinctError(f"{path}: {e}") from None
    except Exception as e:  # the family's own checks (ValueError ...) or a config it cannot build
        raise TinctError(f"{path}: invalid config for model {name!r} ({_first_line(e)})") from None
    expected = {k: (tuple(v.shape), v.is_floating_point()) for k, v in skeleton.state_dict().items()}
    missing = [k for k in expected if k not in found]
    if missing and not allow_missing:
        raise TinctError(f"{path}: {len(missing)} tensors missing for this {name} config (first: {missing[0]})")
    extra = [k for k in found if k not in expected]
    if extra:
        raise TinctError(f"{path}: {len(extra)} tensors this {name} config does not have (first: {extra[0]})")
    for k, (shape, is_float) in expected.items():
        if k not in found:
            continue
        if found[k][0] != shape:
            raise TinctError(f"{path}: tensor {k} has shape {list(found[k][0])}, the config needs {list(shape)}")
        if found[k][1] != is_float:
            raise TinctError(f"{path}: tensor {k} has the wrong dtype (needs {'float' if is_float else 'integer'})")


def _is_type(value, want: type) -> bool:
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, want)


def _build(path: Path, name: str, config: dict, state: dict, strict: bool = True) -> ColorModel:
    from .models import create_model
    model = create_model(name, **config)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as e:  # _check_model should have caught it; keep the message one line anyway
        raise TinctError(f"{path}: weights do not match the {name} config ({_first_line(e)})") from None
    return model


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _load_pickle(path: Path, device) -> ColorModel:
    """A trusted ``torch.save({"model", "config", "state_dict"})`` file, still read with ``weights_only``."""
    import torch
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything but tensors and plain containers
        raise TinctError(f"{path}: cannot load pickle safely ({_first_line(e)})") from None
    if not isinstance(obj, dict) or not {"model", "config", "state_dict"} <= set(obj):
        raise TinctError(f"{path}: pickle must hold a dict with 'model', 'config' and 'state_dict'")
    state = obj["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TinctError(f"{path}: pickle 'state_dict' must map names to tensors")
    _check_model(path, obj["model"], obj["config"],
                 {k: (tuple(v.shape), v.is_floating_point()) for k, v in state.items()})
    model = _build(path, obj["model"], obj["config"], state)
    model.meta = {"model": obj["model"], "config": json.dumps(obj["config"])}
    return model.to(device).eval()
