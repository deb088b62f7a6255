"""Writing film: encoded segments, their concatenation with the source's audio, or numbered frames.

A long film is encoded as segments (each a small file of the final codec in
the final container, starting on a key frame), so an interrupted run loses at
most one segment. When every segment is done they are joined by remuxing
packets (no re-encoding) into the output, together with the audio streams of
the source copied packet for packet (never decoded). Packets of the two
sources are interleaved by time, so memory stays bounded however long the film.

Frames are converted with the BT.709 matrix, limited range, and the stream is
tagged so: the primaries of sRGB are those of BT.709, and players that read the
tag show the colors we computed.
"""
from __future__ import annotations

import heapq
import io as _io
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import TinctError
from ..io import SAVE_FORMATS, atomic_path, save_image
from .options import EncodeOptions

# output suffix -> (FFmpeg muxer, default codec)
CONTAINERS = {".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"), ".mov": ("mov", "libx264"),
              ".mkv": ("matroska", "libx264"), ".webm": ("webm", "libvpx-vp9")}
CRF_CODECS = {"libx264", "libx265", "libvpx-vp9", "libsvtav1"}
_BT709 = 1          # AVCOL_SPC_BT709 / AVCOL_PRI_BT709 / AVCOL_TRC_BT709
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG


def is_video_output(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in CONTAINERS


def pick_codec(dest: Path, options: EncodeOptions, width: int, height: int) -> tuple[str, str]:
    """Check the encoder early (before hours of work) -> (codec name, pixel format)."""
    fmt, default = CONTAINERS[dest.suffix.lower()]
    name = options.codec or default
    try:
        codec = av.codec.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        raise TinctError(f"unknown video encoder {name!r} (try libx264, libx265, libvpx-vp9, mpeg4, ffv1)") from None
    if codec.type != "video":
        raise TinctError(f"{name!r} is not a video encoder")
    formats = [f.name for f in codec.video_formats or []]
    # 4:2:0 plays everywhere but needs even sides; odd sizes keep full chroma instead of cropping a pixel
    wanted = ["yuv420p"] if width % 2 == 0 and height % 2 == 0 else ["yuv444p"]
    wanted += ["yuv444p", "yuv420p", "yuv422p"]
    for pix in wanted:
        if pix in formats and (pix != "yuv420p" or (width % 2 == 0 and height % 2 == 0)):
            return name, pix
    raise TinctError(f"encoder {name} cannot write a {width}x{height} frame in 8-bit YUV "
                     f"(it takes {', '.join(formats[:6]) or 'no listed format'})")


class SegmentWriter:
    """Encode RGB frames ``(H, W, 3)`` uint8 into one segment file, atomically: it exists only when finished."""

    def __init__(self, dest: Path, width: int, height: int, fps: Fraction, options: EncodeOptions):
        self.dest = dest
        self.fps = fps
        codec, self.pix_fmt = pick_codec(dest, options, width, height)
        self._atomic = atomic_path(dest)
        self._tmp = self._atomic.__enter__()
        try:
            self._out = av.open(self._tmp, "w", format=CONTAINERS[dest.suffix.lower()][0])
            s = self._out.add_stream(codec, rate=fps)
            s.width, s.height, s.pix_fmt = width, height, self.pix_fmt
            # frames are numbered in 1/fps units; kept apart because the muxer changes the stream's time base
            self._frame_tb = Fraction(1) / fps
            s.time_base = s.codec_context.time_base = self._frame_tb
            cc = s.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = _BT709, _BT709, _BT709, _LIMITED_RANGE
            opts = {}
            if codec in CRF_CODECS:
                opts["crf"] = str(options.crf)
            if codec in ("libx264", "libx265"):
                opts["preset"] = options.preset
            if codec == "libvpx-vp9":
                opts["b"] = "0"  # constant quality mode
            s.options = opts
            self._stream = s
        except BaseException:
            self._atomic.__exit__(TinctError, TinctError("aborted"), None)
            raise
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format=self.pix_fmt, dst_colorspace=_BT709, dst_color_range=_LIMITED_RANGE)
        frame.pts = self.count
        frame.time_base = self._frame_tb
        self.count += 1
        self._mux(self._stream.encode(frame))

    def _mux(self, packets) -> None:
        try:
            self._out.mux(packets)
        except av.error.FFmpegError as e:
            raise TinctError(f"{self.dest}: cannot encode ({e})") from None

    def finish(self) -> None:
        try:
            self._mux(self._stream.encode(None))
            self._out.close()
        except BaseException as e:
            self.abort(e)
            raise
        self._atomic.__exit__(None, None, None)

    def abort(self, exc: BaseException | None = None) -> None:
        try:
            self._out.close()
        except Exception:  # closing a half-written file may fail; it is deleted next anyway
            pass
        exc = exc or TinctError("aborted")
        self._atomic.__exit__(type(exc), exc, None)


class FrameWriter:
    """Write frames as numbered images: ``pattern`` like ``out/%05d.png``; each file atomic."""

    def __init__(self, pattern: Path, first_index: int, quality: int = 95):
        if pattern.suffix.lower() not in SAVE_FORMATS:
            raise TinctError(f"{pattern}: frames are written as {', '.join(sorted(SAVE_FORMATS))}")
        self.pattern, self.index, self.quality = pattern, first_index, quality
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        name = self.pattern.name % self.index
        save_image(rgb, self.pattern.parent / name, quality=self.quality)
        self.index += 1
        self.count += 1

    def finish(self) -> None:
        pass

    def abort(self, exc: BaseException | None = None) -> None:
        pass


def check_audio_copy(source: Path | None, dest: Path) -> None:
    """Fail now, not after the film is colorized, if the source's audio cannot go into ``dest``'s container."""
    if source is None:
        return
    fmt = CONTAINERS[dest.suffix.lower()][0]
    with av.open(str(source)) as src, av.open(_io.BytesIO(), "w", format=fmt) as probe:
        try:
            for a in src.streams.audio:
                probe.add_stream_from_template(a)
            if src.streams.audio:
                probe.start_encoding()
        except (av.error.FFmpegError, ValueError) as e:
            codecs = ", ".join(a.codec_context.name for a in src.streams.audio)
            raise TinctError(f"{dest}: the audio ({codecs}) cannot be copied into {dest.suffix} ({e}); "
                             "write .mkv instead") from None


def concat_segments(segments: list[tuple[int, Path]], dest: Path, fps: Fraction, audio_from: Path | None) -> None:
    """Join segments ``[(first frame index, file)]`` and the audio of ``audio_from`` into ``dest`` (atomic)."""
    fmt = CONTAINERS[dest.suffix.lower()][0]
    try:
        with atomic_path(dest) as tmp:
            with av.open(str(segments[0][1])) as first, av.open(tmp, "w", format=fmt) as out:
                vout = out.add_stream_from_template(first.streams.video[0])
                src = av.open(str(audio_from)) if audio_from is not None else None
                try:
                    streams = []
                    if src is not None:
                        amap = {a.index: out.add_stream_from_template(a) for a in src.streams.audio}
                        if amap:
                            streams.append(_audio_packets(src, amap))
                    streams.append(_video_packets(segments, fps, vout))
                    for _, _, packet in heapq.merge(*streams, key=lambda t: (t[0], t[1])):
                        out.mux(packet)
                finally:
                    if src is not None:
                        src.close()
    except av.error.FFmpegError as e:
        raise TinctError(f"{dest}: cannot write the film ({e})") from None


def _first_dts(path: Path) -> Fraction:
    """Seconds before zero at which a segment's decoding starts (its B-frame reordering delay), as a negative."""
    with av.open(str(path)) as seg:
        stream = seg.streams.video[0]
        for p in seg.demux(stream):
            if p.dts is not None:
                return Fraction(p.dts) * stream.time_base
    return Fraction(0)


def _video_packets(segments, fps: Fraction, vout) -> Iterator[tuple[float, int, av.Packet]]:
    """Packets of all segments in order, shifted to their place in the film.

    A segment's decode times start at minus its reordering delay, and that delay
    varies (a short last segment may have no B-frames), so decode times are
    shifted by the largest delay of all: then they increase across joins and
    never pass the presentation times.
    """
    starts = [_first_dts(path) for _, path in segments]
    delay = -min(starts + [Fraction(0)])
    last_dts = None
    for (first_index, path), start in zip(segments, starts):
        with av.open(str(path)) as seg:
            stream = seg.streams.video[0]
            tb = stream.time_base
            shift = Fraction(first_index) / fps
            pts_shift = round(shift / tb)
            dts_shift = round((shift - (delay + start)) / tb)
            for p in seg.demux(stream):
                if p.dts is None:  # the demuxer's end-of-stream marker
                    continue
                p.pts = None if p.pts is None else p.pts + pts_shift
                p.dts = p.dts + dts_shift
                if last_dts is not None and p.dts <= last_dts:
                    p.dts = last_dts + 1
                last_dts = p.dts
                p.stream = vout
                yield float(p.dts * tb), 0, p


def _audio_packets(src, amap) -> Iterator[tuple[float, int, av.Packet]]:
    for p in src.demux(*[src.streams.audio[i] for i in range(len(src.streams.audio))]):
        if p.dts is None:
            continue
        out_stream = amap[p.stream.index]
        t = float(p.dts * p.time_base)
        p.stream = out_stream
        yield t, 1, p
