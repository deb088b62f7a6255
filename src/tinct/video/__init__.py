"""Film: read (PyAV or numbered frames), colorize in batches, stabilise along optical flow, write, resume.

Modules: ``options`` (settings), ``source`` (decoding), ``temporal`` (flow
propagation, scene cuts), ``sink`` (encoding, segments, audio copy),
``colorize`` (the run), ``evaluate`` (flicker and color scores against a color
clip). Names are imported lazily: photo-only runs never load FFmpeg or OpenCV.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "VideoOptions": "options", "TemporalOptions": "options", "EncodeOptions": "options",
    "VIDEO_SUFFIXES": "source", "is_video_file": "source", "is_frame_pattern": "source", "open_source": "source",
    "Stabilizer": "temporal", "CONTAINERS": "sink",
    "colorize_video": "colorize", "VideoResult": "colorize",
    "evaluate_video": "evaluate", "VideoEvalConfig": "evaluate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
