"""tinct: colorize grayscale photographs and film."""
__version__ = "0.1.0"

from .errors import TinctError  # noqa: E402

__all__ = ["ColorizeOptions", "TinctError", "colorize", "load_model", "restore", "suggest_colors"]

# The public names are imported on first use (PEP 562), not with the package: `tinct colorize` through
# onnxruntime never loads torch, whose import alone takes 2 s of a photo's few.
_LAZY = {"ColorizeOptions": "pipeline", "colorize": "pipeline", "load_model": "weights",
         "suggest_colors": "suggest"}


def __getattr__(name: str):
    import importlib
    if name == "restore":  # the subpackage, callable: tinct.restore(image); tinct.restore.degrade, ...
        return importlib.import_module(".restore", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'tinct' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
