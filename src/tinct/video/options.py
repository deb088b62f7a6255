"""Settings of a film run, as plain dataclasses (light: no FFmpeg or OpenCV import, so the CLI can build them)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_RENDER_FACTOR

if TYPE_CHECKING:
    from ..models.base import Decoding

DEFAULT_TEMPORAL = 0.8  # weight of colors carried along the flow: an average over about 1 / (1 - 0.8) = 5 frames


@dataclass
class TemporalOptions:
    strength: float = DEFAULT_TEMPORAL    # weight of the propagated colors; 0 = frame by frame
    flow: str = "dis"                     # "dis" (OpenCV DIS, medium preset) or "farneback"
    cut_threshold: float = 0.4            # luminance-histogram distance (0..1) above which a new shot starts
    min_tracked: float = 0.3              # below this trackable fraction of the frame, a new shot too
    photometric_tolerance: float = 8.0    # max |L_t - warped L_t-1| (L units) for a pixel to be propagated


@dataclass
class EncodeOptions:
    codec: str | None = None   # FFmpeg encoder name; None: the container's default (H.264 for MP4)
    crf: int = 18              # constant quality for x264/x265/VP9/SVT-AV1: lower is better and larger
    preset: str = "medium"     # x264/x265 speed preset


@dataclass
class VideoOptions:
    render_factor: int = DEFAULT_RENDER_FACTOR
    decoding: Decoding | None = None     # classification models: temperature / prior correction for this run
    temporal: float = DEFAULT_TEMPORAL   # 0 = frame by frame
    flow: str = "dis"
    batch: int = 4                 # frames per network call (the classifier head's logits dominate memory)
    codec: str | None = None       # None: H.264 for .mp4/.mov/.mkv, VP9 for .webm
    crf: int = 18
    preset: str = "medium"
    fps: float | None = None       # frame rate of a folder of frames (default 25)
    segment_frames: int = 300      # resume granularity: at most this many frames are redone after a crash
    max_pixels: int = DEFAULT_MAX_PIXELS
    progress: bool = True
    # guidance (video/guide.py): a hints file (JSON points with "frame"/"time", or for every frame),
    # a color photo or "#rrggbb,..." palette for every shot, or a folder of one photo per shot
    hints: str | None = None
    reference: str | None = None
    palette: str | None = None
    reference_per_shot: str | None = None
    hint_reach: float = 8.0        # L units of geodesic distance where a point's effect halves; 0 = the model's own

    def temporal_options(self) -> TemporalOptions:
        return TemporalOptions(strength=self.temporal, flow=self.flow)

    def encode_options(self) -> EncodeOptions:
        return EncodeOptions(codec=self.codec, crf=self.crf, preset=self.preset)
