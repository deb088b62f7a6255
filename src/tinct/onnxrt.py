"""ONNX: export a model (``tinct export --format onnx``) and run it through onnxruntime (``--backend onnx``).

The exported graph is the whole network up to ab: ``L`` ``(B, 1, H, W)`` float32
in [0, 100] (plus ``hints`` ``(B, 3, H, W)`` for models with hint inputs) ->
``ab`` ``(B, 2, H, W)`` in Lab units; a classification head's annealed mean and
the final bilinear upsampling are inside the graph. B, H and W are dynamic (H
and W multiples of the model's stride, as for torch). The file's metadata holds
the tinct header (model name, config, stride), so the runtime needs nothing else.

Needs ``onnx`` to write the metadata and ``onnxruntime`` to run and to check the export (both installed
with tinct; ``pip install tinct[onnx]`` names them).

``tinct colorize`` runs a shipped model through onnxruntime by itself (``--backend auto``, the default): its
export is made once, on first use, into the cache (``cached_export``), and from then on a photo goes from
file to file without importing torch (whose import alone takes 2 s). This module imports torch only to
export and to check.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import TinctError
from .fullres import default_workers
from .io import atomic_path, default_cache_dir

if TYPE_CHECKING:
    import torch

    from .models.base import ColorModel

_log = logging.getLogger("tinct")

OPSET = 17
EXPORT_TOLERANCE = 1e-3  # max |ab_onnx - ab_torch| in Lab units accepted by the export check


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise TinctError(f"the ONNX backend needs the '{module}' package: pip install 'tinct[onnx]'") from None


def _ab_only(model: ColorModel) -> torch.nn.Module:
    """The model with one output, ``ab``: what the exported graph computes."""
    import torch

    class ABOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, L, hints=None):
            return self.model(L, hints)["ab"]
    return ABOnly()


def _sample(model: ColorModel, h: int, w: int, seed: int = 0):
    import torch
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(1, 1, h, w, generator=g) * 100
    if not model.config.hint_channels:
        return (L,)
    hints = torch.zeros(1, 3, h, w)
    hints[:, :2, h // 3, w // 3] = torch.tensor([30.0, -20.0])
    hints[:, 2, h // 3, w // 3] = 1.0
    return (L, hints)


def export_onnx(model: ColorModel, dest: str | os.PathLike, opset: int = OPSET) -> float:
    """Write ``model`` as an ONNX file at ``dest`` (atomically) and check it against torch.

    Returns the largest |ab| difference between onnxruntime and torch on a test
    input of another size than the traced one (that is the dynamic-shape check);
    a difference above ``EXPORT_TOLERANCE`` is an error and nothing is written.
    """
    import torch
    onnx = _need("onnx")
    dest = Path(dest)
    model = model.cpu().eval()
    s = model.stride
    trace_hw = (max(2, 128 // s) * s, max(3, 192 // s) * s)
    args = _sample(model, *trace_hw)
    names = ["L", "hints"][:len(args)]
    axes = {n: {0: "batch", 2: "height", 3: "width"} for n in names + ["ab"]}
    meta = {"tinct_format": "1", "model": model.name, "stride": str(s),
            "config": json.dumps(_config_dict(model)), "hint_channels": str(model.config.hint_channels)}
    meta.update({k: str(v) for k, v in (getattr(model, "meta", None) or {}).items()
                 if k in ("trained_on", "steps")})
    with atomic_path(dest) as tmp, warnings.catch_warnings():
        # the TorchScript exporter: it needs no extra package and handles our dynamic H/W in one trace;
        # the tracer warns about the Python size checks in forward, which are the same for every input
        warnings.simplefilter("ignore")
        # eval() on the wrapper too: the exporter restores the wrapper's mode recursively afterwards
        torch.onnx.export(_ab_only(model).eval(), args, tmp, dynamo=False, input_names=names, output_names=["ab"],
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
        proto = onnx.load(tmp)
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.save(proto, tmp)
        diff = _check(model, tmp)
    return diff


def _config_dict(model: ColorModel) -> dict:
    import dataclasses
    return dataclasses.asdict(model.config)


def _check(model: ColorModel, path: str) -> float:
    import torch
    s = model.stride
    args = _sample(model, max(2, 96 // s) * s, max(4, 160 // s) * s, seed=1)  # not the traced size
    with torch.no_grad():
        want = model(*args)["ab"].numpy()
    got = OnnxModel(path)(*args)["ab"].numpy()
    diff = float(np.abs(got - want).max())
    if not diff <= EXPORT_TOLERANCE:
        raise TinctError(f"ONNX export differs from torch by {diff:.2g} in ab (> {EXPORT_TOLERANCE}); not written")
    return diff


class OnnxModel:
    """An exported model run by onnxruntime, callable like a ``ColorModel`` (``model(L, hints)["ab"]``).

    ``pipeline.predict_ab`` and ``batch.colorize_paths`` take it as they take a torch model;
    ``predict`` is the same on NumPy arrays, without torch.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        ort = _need("onnxruntime")
        path = Path(path)
        if not path.is_file():
            raise TinctError(f"{path}: no such ONNX file")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_workers()
        opts.log_severity_level = 3  # errors only: a run prints nothing of onnxruntime's
        # its threads sleep when done instead of spinning: the full-resolution work that follows needs the cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for corrupt or foreign files
            raise TinctError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0][:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("tinct_format") != "1" or "stride" not in meta:
            raise TinctError(f"{path}: not an ONNX file written by `tinct export` (no tinct metadata)")
        self.meta = dict(meta)
        self.name = meta.get("model", "onnx")
        self.stride = int(meta["stride"])
        self.hint_channels = int(meta.get("hint_channels", "0"))
        self._inputs = [i.name for i in self.session.get_inputs()]

    @property
    def device(self) -> torch.device:
        import torch
        return torch.device("cpu")

    def eval(self) -> OnnxModel:
        return self

    def predict(self, L: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """``L`` ``(B, 1, h, w)`` in [0, 100] (``hints`` ``(B, 3, h, w)`` or None: no points) -> ab ``(B, 2, h, w)``."""
        feed = {"L": np.ascontiguousarray(L, dtype=np.float32)}
        if "hints" in self._inputs:
            hints = np.zeros((L.shape[0], 3, *L.shape[-2:]), np.float32) if hints is None else hints
            feed["hints"] = np.ascontiguousarray(hints, dtype=np.float32)
        (ab,) = self.session.run(["ab"], feed)
        return ab

    def __call__(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> dict:
        import torch
        ab = self.predict(L.detach().cpu().numpy(), None if hints is None else hints.detach().cpu().numpy())
        return {"ab": torch.from_numpy(ab)}


def cached_export(path: str | os.PathLike) -> Path | None:
    """The ONNX export of the model file ``path``, made on first use into ``$TINCT_CACHE/onnx/``; None where
    there can be none (onnx or onnxruntime missing, or the model does not export; the reason is logged once
    and remembered beside where the file would be, so later runs do not try again).

    Named by a hash of the model file's bytes: a retrained file gets its own export, and a half-written one
    never exists (``atomic_path``).
    """
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    dest = default_cache_dir() / "onnx" / f"{Path(path).stem}-{digest}.onnx"
    failed = dest.with_suffix(".failed")
    if dest.exists():
        return dest
    if failed.exists():
        return None
    try:
        __import__("onnx"), __import__("onnxruntime")
    except ImportError:
        return None
    from .weights import load_model
    _log.warning("tinct: preparing %s for onnxruntime (once; later runs start in a fraction of the time)", path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(load_model(path), dest)
    except Exception as e:  # any family, any exporter failure, a cache we cannot write: colorize with torch
        _log.warning("tinct: %s does not run in onnxruntime (%s); using torch", path, str(e).splitlines()[0][:200])
        try:
            with atomic_path(failed) as tmp:
                Path(tmp).write_text(f"{type(e).__name__}: {e}\n")
        except OSError:
            pass  # an unwritable cache: the next run tries (and says so) again
        return None
    return dest


def load_backend(backend: str, model: str | os.PathLike | None, trust_pickle: bool = False,
                 device: str | torch.device = "cpu", network_only: bool = False):
    """The network ``tinct colorize`` runs: a torch ``ColorModel`` or an ``OnnxModel``.

    ``backend``: "torch"; "onnx" (``model`` is an exported file); "auto": a shipped model runs from its
    cached ONNX export (``cached_export``) when the run is ``network_only`` (photos, on the CPU, nothing
    asked of the model but its colors: no hints, decoding changes or samples), torch otherwise.
    """
    is_onnx = model is not None and Path(model).suffix.lower() == ".onnx"
    if backend == "onnx":
        if not is_onnx:
            raise TinctError("--backend onnx runs an exported file: --model FILE.onnx (make one with `tinct export`)")
        return OnnxModel(model)
    if is_onnx:
        raise TinctError(f"{model}: an ONNX file runs with --backend onnx")
    from .weights import WEIGHTS_DIR, load_model, resolve_model_path
    if backend == "auto" and network_only and str(device) == "cpu":
        path = resolve_model_path(model)
        if path.parent == WEIGHTS_DIR and path.suffix == ".safetensors":
            exported = cached_export(path)
            if exported is not None:
                return OnnxModel(exported)
    return load_model(model, trust_pickle=trust_pickle, device=device)
