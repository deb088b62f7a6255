"""ONNX: export a model (``tinct export --format onnx``) and run it through onnxruntime (``--backend onnx``).

The exported graph is the whole network up to ab: ``L`` ``(B, 1, H, W)`` float32
in [0, 100] (plus ``hints`` ``(B, 3, H, W)`` for models with hint inputs) ->
``ab`` ``(B, 2, H, W)`` in Lab units; a classification head's annealed mean and
the final bilinear upsampling are inside the graph. B, H and W are dynamic (H
and W multiples of the model's stride, as for torch). The file's metadata holds
the tinct header (model name, config, stride), so the runtime needs nothing else.

Needs the ``onnx`` extra (``pip install tinct[onnx]``): ``onnx`` to write the
metadata, ``onnxruntime`` to run and to check the export.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import TinctError
from .io import atomic_path
from .models.base import ColorModel

OPSET = 17
EXPORT_TOLERANCE = 1e-3  # max |ab_onnx - ab_torch| in Lab units accepted by the export check


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise TinctError(f"the ONNX backend needs the '{module}' package: pip install 'tinct[onnx]'") from None


class _ABOnly(torch.nn.Module):
    """The model with one output, ``ab``: what the exported graph computes."""

    def __init__(self, model: ColorModel):
        super().__init__()
        self.model = model

    def forward(self, L, hints=None):
        return self.model(L, hints)["ab"]


def _sample(model: ColorModel, h: int, w: int, seed: int = 0):
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
        torch.onnx.export(_ABOnly(model).eval(), args, tmp, dynamo=False, input_names=names, output_names=["ab"],
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

    ``pipeline.predict_ab`` and ``batch.colorize_paths`` take it as they take a torch model.
    """

    device = torch.device("cpu")

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        ort = _need("onnxruntime")
        path = Path(path)
        if not path.is_file():
            raise TinctError(f"{path}: no such ONNX file")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.log_severity_level = 3  # errors only: a run prints nothing of onnxruntime's
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

    def eval(self) -> OnnxModel:
        return self

    def __call__(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> dict:
        feed = {"L": np.ascontiguousarray(L.detach().cpu().numpy(), dtype=np.float32)}
        if "hints" in self._inputs:
            if hints is None:
                hints = torch.zeros(L.shape[0], 3, *L.shape[-2:])
            feed["hints"] = np.ascontiguousarray(hints.detach().cpu().numpy(), dtype=np.float32)
        (ab,) = self.session.run(["ab"], feed)
        return {"ab": torch.from_numpy(ab)}


def load_backend(backend: str, model: str | os.PathLike | None, trust_pickle: bool = False,
                 device: str | torch.device = "cpu"):
    """The network ``tinct colorize`` runs: a torch ``ColorModel`` or an ``OnnxModel`` (``backend="onnx"``)."""
    is_onnx = model is not None and Path(model).suffix.lower() == ".onnx"
    if backend == "onnx":
        if not is_onnx:
            raise TinctError("--backend onnx runs an exported file: --model FILE.onnx (make one with `tinct export`)")
        return OnnxModel(model)
    if is_onnx:
        raise TinctError(f"{model}: an ONNX file runs with --backend onnx")
    from .weights import load_model
    return load_model(model, trust_pickle=trust_pickle, device=device)
