"""What a user can choose from: the shipped models (from their file headers) and the trainable families.

``tinct models`` prints both; ``tinct models FAMILY`` prints a family's ``--option`` keys; the server's
``GET /api/models`` describes its models with the same functions. Nothing here loads weights.

Two optional header keys describe a model file to people (``save_model(..., extra={...})`` writes them):
``description`` (one line: what the model is and is for) and ``datasets`` (the names of the data it was
trained on, no paths). Files without them get a description built from their config, and their
``trained_on`` (which holds the folders given to ``tinct train``) with every path cut to its last folder name,
so no filesystem path of the machine that trained the model is shown.
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import json
import os
import re
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from .errors import TinctError
from .models import model_class


@dataclass
class ModelFileInfo:
    """One model file, as its header describes it."""
    name: str
    family: str
    head: str
    hints: bool           # takes user color points (--hints)
    parameters: int
    size_bytes: int
    description: str
    datasets: str         # training data, names only
    steps: int
    prior_correction: float | None = None  # classification heads: the model's own (0 bold .. 1 safe)


def model_file_info(name: str, path: str | os.PathLike) -> ModelFileInfo:
    """Read ``path``'s header (and its tensors' shapes, not their data) into a ``ModelFileInfo``."""
    from .weights import read_header
    meta = read_header(path)
    try:
        config = json.loads(meta.get("config", "{}"))
    except json.JSONDecodeError:
        raise TinctError(f"{path}: model header 'config' is not valid JSON") from None
    if not isinstance(config, dict):
        raise TinctError(f"{path}: model header 'config' is not an object")
    try:
        steps = int(meta.get("steps") or 0)
    except ValueError:
        steps = 0
    family = meta.get("model", "?")
    head = str(config.get("head", "regression"))
    hints = bool(config.get("hint_channels", 0))
    description = meta.get("description", "").strip() or _described_by_config(family, head, hints)
    return ModelFileInfo(name=name, family=family, head=head, hints=hints, parameters=_parameter_count(path),
                         size_bytes=Path(path).stat().st_size, description=description,
                         datasets=meta.get("datasets", "").strip() or without_paths(meta.get("trained_on", "")),
                         steps=steps, prior_correction=(float(config.get("prior_correction") or 0.0)
                                                        if head == "classification" else None))


def _described_by_config(family: str, head: str, hints: bool) -> str:
    what = "classifies each pixel's color (Zhang et al.)" if head == "classification" else "predicts colors directly"
    return f"a {family} network that {what}" + ("; takes color points (--hints)" if hints else "")


def _parameter_count(path) -> int:
    with safe_open(str(path), framework="pt") as f:
        total = 0
        for k in f.keys():
            n = 1
            for d in f.get_slice(k).get_shape():
                n *= d
            total += n
    return total


_PATH = re.compile(r"[^\s,;()]*[/\\][^\s,;()]*")


def without_paths(text: str) -> str:
    """``"../shared/data/train (imagenette), /home/me/x/"`` -> ``"train (imagenette), x"``: folder names only."""
    return _PATH.sub(lambda m: re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1], text).strip()


def shipped_model_infos() -> list[ModelFileInfo]:
    from .weights import DEFAULT_MODEL, WEIGHTS_DIR, shipped_models
    names = sorted(shipped_models(), key=lambda n: (n != DEFAULT_MODEL, n))
    return [model_file_info(n, WEIGHTS_DIR / f"{n}.safetensors") for n in names]


# ------------------------------------------------------------------ families ---
def family_summary(family: str) -> str:
    """The first line of the family's module docstring: what the network is."""
    doc = inspect.getdoc(sys.modules[model_class(family).__module__]) or ""
    return doc.splitlines()[0].replace("``", "") if doc else ""


@dataclass
class FamilyOption:
    key: str
    default: object
    meaning: str

    @property
    def default_text(self) -> str:
        """The default as ``--option KEY=VALUE`` spells it."""
        if isinstance(self.default, bool):
            return str(self.default).lower()
        return "null" if self.default is None else str(self.default)


def family_options(family: str) -> list[FamilyOption]:
    """Every ``--option`` key of ``family`` (its Config dataclass fields) with default and meaning.

    The meaning is the field's ``metadata["help"]``, else its comment in the source (on its line, or a
    comment block above it that covers the fields that follow without one of their own).
    """
    config = model_class(family).Config
    comments = _field_comments(config)
    out = []
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append(FamilyOption(f.name, default, f.metadata.get("help") or comments.get(f.name, "")))
    return out


def _field_comments(config: type) -> dict[str, str]:
    out: dict[str, str] = {}
    for klass in reversed(config.__mro__):  # bases first: a subclass's own comment wins, its silence does not
        if dataclasses.is_dataclass(klass) and klass is not object:
            out.update({k: v for k, v in _class_comments(klass).items() if v})
    return out


def _class_comments(klass: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    trailing: dict[int, str] = {}
    fields: dict[int, str] = {}
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, t in enumerate(tokens):
        if t.type == tokenize.COMMENT:
            trailing[t.start[0]] = t.string.lstrip("#").strip()
        elif (t.type == tokenize.NAME and t.start[1] == 4 and i + 1 < len(tokens)
              and tokens[i + 1].string == ":"):  # ``name: type = default`` in the class body
            fields[t.start[0]] = t.string
    out, block = {}, ""
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            block = ""
        elif text.startswith("#"):
            block = (block + " " if block else "") + trailing.get(n, "")
        elif n in fields:
            own = trailing.get(n, "")
            out[fields[n]] = own or block
            if own:
                block = ""
    return out
