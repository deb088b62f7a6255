"""Reading film: any container FFmpeg reads (through PyAV), or a folder of numbered frames.

A source yields frames one at a time, as CIE L ``(H, W)`` float32 in [0, 100]
or as sRGB ``(H, W, 3)`` uint8, so a film of any length is read in bounded
memory. Every decoding problem (not a video, no video stream, damaged or
truncated data) becomes a one-line ``TinctError``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from ..color import rgb_to_luminance
from ..errors import TinctError
from ..io import IMAGE_EXTENSIONS, load_image

# Suffixes we read as film without looking inside (content sniffing catches the rest).
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2v", ".ts", ".m2ts",
                  ".mts", ".flv", ".wmv", ".asf", ".ogv", ".3gp", ".mxf", ".dv", ".vob", ".y4m"}
VIDEO_OUTPUT_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm"}  # containers we write (sink.CONTAINERS)
DEFAULT_FPS = Fraction(25)
_PATTERN = re.compile(r"%0?(\d*)d")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


@dataclass
class VideoInfo:
    """What a source is: ``frames`` is the count the container declares (None when it does not say)."""
    width: int
    height: int
    fps: Fraction
    frames: int | None
    audio_streams: int
    description: str
    estimated_frames: int | None = None   # from the duration when the container does not count frames

    @property
    def expected_frames(self) -> int | None:
        return self.frames or self.estimated_frames


def sniff_video(path: Path) -> bool:
    """True when ``path`` looks like a film, by its first bytes (ISO-BMFF, Matroska, AVI, MPEG, FLV, ASF, Y4M)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if len(head) < 12:
        return False
    return (head[4:8] == b"ftyp" and head[8:11] != b"avi" and head[8:12] not in (b"heic", b"heix", b"mif1")
            or head[:4] == b"\x1aE\xdf\xa3"
            or head[:4] == b"RIFF" and head[8:12] == b"AVI "
            or head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")
            or head[:3] == b"FLV"
            or head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
            or head[:9] == b"YUV4MPEG2"
            or len(head) > 376 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47)


def is_video_file(path: str | Path) -> bool:
    """A file we should treat as film: a known film suffix, or film content under another name."""
    path = Path(path)
    suffix = path.suffix.lower()
    return path.is_file() and (suffix in VIDEO_SUFFIXES or suffix not in IMAGE_EXTENSIONS and sniff_video(path))


def is_frame_pattern(path: str | Path) -> bool:
    """``frames/%05d.png``-style paths (FFmpeg's convention) name a numbered frame sequence."""
    return bool(_PATTERN.search(Path(path).name))


def frame_files(path: Path) -> list[Path]:
    """The numbered images of a folder (or matching a ``%05d`` pattern), in frame order."""
    if is_frame_pattern(path):
        folder, name = path.parent, path.name
        m = _PATTERN.search(name)
        width = m.group(1)
        digits = rf"\d{{{int(width)}}}" if width else r"\d+"
        regex = re.compile(re.escape(name[:m.start()]) + f"({digits})" + re.escape(name[m.end():]) + "$")
        if not folder.is_dir():
            raise TinctError(f"{folder}: no such folder")
        found = [(int(r.group(1)), p) for p in folder.iterdir() if (r := regex.match(p.name)) and p.is_file()]
    else:
        if not path.is_dir():
            raise TinctError(f"{path}: no such folder")
        found = []
        for p in path.iterdir():
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and (m := _LAST_NUMBER.search(p.stem)):
                found.append((int(m.group(1)), p))
    if not found:
        raise TinctError(f"{path}: no numbered frames found")
    return [p for _, p in sorted(found, key=lambda t: (t[0], t[1].name))]


class VideoSource:
    """Base: ``info`` describes the film; ``frames(start, rgb)`` yields frames from index ``start``."""
    info: VideoInfo
    path: Path

    def identity(self) -> dict:
        """What tells this input from an edited one (for resuming)."""
        st = self.path.stat()
        return {"input": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def frames(self, start: int = 0, rgb: bool = False) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_luminance(rgb.astype(np.float32) * np.float32(1 / 255))


class ContainerSource(VideoSource):
    """A film file read through PyAV: the first video stream; frame timing taken as constant at its mean rate.

    Frames come upright: a display rotation (phones store portrait film as
    landscape pixels plus a rotation) is applied to the pixels, as players
    and FFmpeg's own autorotate do, so the output needs no rotation tag.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _check_file(self.path)
        with self._open() as container:
            if not container.streams.video:
                raise TinctError(f"{self.path}: has no video stream")
            v = container.streams.video[0]
            width, height = v.codec_context.width, v.codec_context.height
            if not width or not height:
                raise TinctError(f"{self.path}: video stream has no frame size (damaged header?)")
            fps = v.average_rate or v.guessed_rate or v.base_rate
            if not fps or fps <= 0:
                fps = DEFAULT_FPS
            seconds = (float(v.duration * v.time_base) if v.duration and v.time_base else
                       container.duration / 1e6 if container.duration else None)
            self.coded_size = (width, height)
            self.quarter_turns = _quarter_turns(container, v)
            if self.quarter_turns % 2:
                width, height = height, width
            turned = f", shown turned {90 * self.quarter_turns} deg" if self.quarter_turns else ""
            self.info = VideoInfo(width=width, height=height, fps=Fraction(fps), frames=v.frames or None,
                                  audio_streams=len(container.streams.audio),
                                  description=f"{v.codec_context.name} {width}x{height} {float(fps):.4g} fps{turned}",
                                  estimated_frames=round(seconds * fps) if seconds else None)

    def _open(self):
        import av
        try:
            return av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise TinctError(f"{self.path}: not a video, or a format FFmpeg cannot read ({_why(e)})") from None

    def frames(self, start: int = 0, rgb: bool = False) -> Iterator[np.ndarray]:
        """Decode from the beginning (exact frame counting beats seeking on damaged or VFR files)."""
        import av
        W, H = self.coded_size
        n = 0
        with self._open() as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    if n >= start:
                        if frame.width != W or frame.height != H:  # a mid-film size change: keep the first size
                            frame = frame.reformat(width=W, height=H)
                        arr = frame.to_ndarray(format="rgb24")
                        if self.quarter_turns:
                            arr = np.ascontiguousarray(np.rot90(arr, self.quarter_turns))
                        yield arr if rgb else _luminance(arr)
                    n += 1
            except av.error.FFmpegError as e:
                raise TinctError(f"{self.path}: damaged video: decoding stopped at frame {n} ({_why(e)})") from None
        declared = self.info.frames
        if declared and n < declared:
            raise TinctError(f"{self.path}: truncated or damaged video: decoded {n} of {declared} frames")
        if n == 0:
            raise TinctError(f"{self.path}: no frame could be decoded")


def _quarter_turns(container, stream) -> int:
    """Counter-clockwise quarter turns (0-3) the first frame's display matrix asks for; 0 when it cannot be read."""
    import av
    try:
        frame = next(container.decode(stream), None)
    except av.error.FFmpegError:
        return 0  # frames() reports the damage
    degrees = (getattr(frame, "rotation", 0) or 0) if frame is not None else 0
    return round(degrees / 90) % 4


class FrameFolderSource(VideoSource):
    """Numbered images (a folder, or a ``%05d`` pattern) played at ``fps``."""

    def __init__(self, path: str | Path, fps: Fraction | float | None = None, max_pixels: int | None = None):
        self.path = Path(path)
        self.files = frame_files(self.path)
        self.max_pixels = max_pixels
        with Image.open(self.files[0]) as im:
            width, height = im.size
        self.info = VideoInfo(width=width, height=height, fps=Fraction(fps or DEFAULT_FPS).limit_denominator(1001),
                              frames=len(self.files), audio_streams=0,
                              description=f"{len(self.files)} frames {width}x{height}")

    def identity(self) -> dict:
        last = self.files[-1].stat()
        return {"input": str(self.files[0].resolve().parent), "files": len(self.files),
                "names": hashlib.sha1("\n".join(f.name for f in self.files).encode()).hexdigest(),
                "last_mtime_ns": last.st_mtime_ns}

    def frames(self, start: int = 0, rgb: bool = False) -> Iterator[np.ndarray]:
        kw = {"max_pixels": self.max_pixels} if self.max_pixels else {}
        for f in self.files[start:]:
            if rgb:
                try:
                    with Image.open(f) as im:
                        arr = np.asarray(im.convert("RGB"))
                except OSError as e:
                    raise TinctError(f"{f}: cannot decode frame ({e})") from None
            else:
                arr = load_image(f, **kw).L
            if arr.shape[:2] != (self.info.height, self.info.width):
                raise TinctError(f"{f}: frame is {arr.shape[1]}x{arr.shape[0]}, the first frame is "
                                 f"{self.info.width}x{self.info.height}")
            yield arr


def open_source(path: str | Path, fps: Fraction | float | None = None, max_pixels: int | None = None) -> VideoSource:
    """A film file, a folder of numbered frames, or a ``frames/%05d.png`` pattern."""
    path = Path(path)
    if path.is_dir() or is_frame_pattern(path) and not path.exists():
        return FrameFolderSource(path, fps, max_pixels)
    return ContainerSource(path)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise TinctError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise TinctError(f"{path}: empty file")


def _why(e: Exception) -> str:
    """FFmpeg's reason without the errno and file name noise PyAV adds."""
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).splitlines()[0] if msg else type(e).__name__
