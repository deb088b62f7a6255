"""Colorize a film: decode -> batches through the network -> stabilise -> recombine -> encode.

Frames are read one at a time and sent to the network ``batch`` at a time at
the working size (same rule as photos: ``render_factor`` x 16 px); the chroma
is stabilised along optical flow (``temporal.py``), upsampled and joined to
each frame's own full-resolution L, then encoded. Memory holds one batch.

Long runs are resumable: frames are written in segments of ``segment_frames``
into a work folder beside the output (``.NAME.tinct-parts``). A finished
segment is a complete file plus the stabiliser's state after its last frame,
so a rerun skips what is done and continues exactly where the colors left off.
When all segments exist they are joined (with the source's audio) into the
output, atomically, and the work folder is removed. A work folder made with
other settings, another model or another input is discarded.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..errors import OptionError, TinctError
from ..guided.palette import matched_prior
from ..io import SAVE_FORMATS, atomic_path, refuse_overwriting_input, remove_stale_parts
from ..models.base import ColorModel, Decoding
from ..pipeline import network_ab, recombine, shrink_luminance, take_points, working_size
from .options import VideoOptions
from .sink import (CONTAINERS, FrameWriter, SegmentWriter, check_audio_copy, concat_segments,
                   pick_codec)
from .source import ContainerSource, VideoSource, is_frame_pattern, open_source
from .guide import FilmGuide
from .locality import gated_ab
from .temporal import Stabilizer, StabilizerState, luminance8
from .tracks import GuidePlan

WORK_FORMAT = 1


@dataclass
class VideoResult:
    dest: Path
    frames: int
    resumed_from: int
    cuts: list[int] = field(default_factory=list)   # frame indices where a new shot was detected
    seconds: float = 0.0


class FrameColorizer:
    """The network part: full-resolution L frames -> working-size L and predicted ab, a batch at a time."""

    def __init__(self, model: ColorModel, height: int, width: int, render_factor: int,
                 decoding: Decoding | None = None):
        self.model = model
        self.decoding = decoding
        self.H, self.W = height, width
        self.h, self.w = working_size(height, width, render_factor, model.stride)
        params = next(model.parameters(), None) if hasattr(model, "parameters") else None
        self.device = params.device if params is not None else getattr(model, "device", torch.device("cpu"))

    def shrink(self, Ls: list[np.ndarray]) -> torch.Tensor:
        """B frames ``(H, W)`` float32 in [0, 100] -> the network's input ``(B, 1, h, w)``."""
        L = torch.from_numpy(np.stack(Ls).astype(np.float32, copy=False))[:, None]
        return shrink_luminance(L, (self.h, self.w))

    @torch.no_grad()
    def predict(self, Ls: list[np.ndarray], hints: torch.Tensor | None = None,
                prior: torch.Tensor | None = None, reach: float = 0.0,
                share: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``Ls``: B frames ``(H, W)`` float32 in [0, 100] -> (L ``(B, h, w)``, ab ``(B, 2, h, w)``) float32.

        ``hints`` ``(B, 3, h, w)``: hint channels; ``prior`` ``(B, Q)``: log prior per ab bin added to a
        classification model's logits before decoding (a palette, ``guided/palette.py``); ``share`` ``(B, Q)``:
        a reference photo's color distribution, each frame's predicted one is moved onto it
        (``palette.matched_prior``). ``reach`` > 0
        keeps the hints' effect on their regions (``locality.py``): the frames also go through without
        hints, in the same batch.
        """
        small = self.shrink(Ls)
        B = len(Ls)
        L_in = small.to(self.device)
        gate = hints is not None and reach > 0
        if gate:
            L_in = torch.cat([L_in, L_in])
            hints = torch.cat([hints, torch.zeros_like(hints)])
            prior = None if prior is None else torch.cat([prior, prior])
            share = None if share is None else torch.cat([share, share])
        hints = None if hints is None else hints.to(self.device)
        if prior is None and share is None:
            ab = network_ab(self.model, L_in, hints, decoding=self.decoding)
        else:
            logits = self.model(L_in, hints)["logits"].float()
            if share is not None:
                ab = self.model.decode(logits, L_in.shape[-2:], self.decoding,
                                       log_prior=matched_prior(self.model, logits, share, self.decoding))
            else:  # a palette: added before the temperature, as for photos (palette.predict_ab_palette)
                ab = self.model.decode(logits + prior.to(self.device).float()[:, :, None, None], L_in.shape[-2:],
                                       self.decoding)
            if hints is not None:  # points kept, as network_ab keeps them
                ab = take_points(L_in, ab, hints)
        ab = ab.float().cpu().numpy()
        L_small = small[:, 0].numpy()
        if gate:
            masks = hints[:B, 2].cpu().numpy() > 0.5
            ab = np.stack([gated_ab(ab[j], ab[B + j], L_small[j], masks[j], reach) for j in range(B)])
        return L_small, ab


def batched(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch = []
    for f in frames:
        batch.append(f)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def stabilised_frames(model: ColorModel, frames: Iterable[np.ndarray], height: int, width: int,
                      render_factor: int, stabilizers: list[Stabilizer], batch: int = 8,
                      decoding: Decoding | None = None, guide: FilmGuide | None = None, start: int = 0):
    """Yield, per frame, ``(L, [ab_small for each stabiliser])``; the network runs once for all stabilisers.

    ``guide``: per-frame hints, palette prior and shot cuts (frames counted from ``start``).
    """
    net = FrameColorizer(model, height, width, render_factor, decoding)
    index = start
    for Ls in batched(frames, max(1, batch)):
        indices = list(range(index, index + len(Ls)))
        hints, prior, share = guide.batch(indices) if guide is not None else (None, None, None)
        small, ab = net.predict(Ls, hints, prior, guide.reach if guide is not None else 0.0, share)
        for j, L in enumerate(Ls):
            cut = guide.cut(indices[j]) if guide is not None else None
            yield L, [s.step(small[j], ab[j], cut) for s in stabilizers]
        index += len(Ls)


def colorize_video(model: ColorModel, src: str | Path, dest: str | Path,
                   options: VideoOptions | None = None) -> VideoResult:
    """Colorize the film (or numbered frames) ``src`` into ``dest``: a film file or a ``%05d.png`` pattern."""
    options = options or VideoOptions()
    src, dest = Path(src), Path(dest)
    if options.batch < 1 or options.segment_frames < 1:
        raise TinctError("batch and segment size must be at least 1 frame")
    frames_out = is_frame_pattern(dest)
    if not frames_out and dest.suffix.lower() not in CONTAINERS:
        raise TinctError(f"{dest}: write a film as {', '.join(sorted(CONTAINERS))}, or frames as a pattern "
                         "like out/%05d.png")
    if frames_out and dest.suffix.lower() not in SAVE_FORMATS:
        raise TinctError(f"{dest}: frames are written as {', '.join(sorted(SAVE_FORMATS))}")
    refuse_overwriting_input(src, dest)
    source = open_source(src, options.fps, options.max_pixels)
    info = source.info
    Stabilizer(options.temporal_options())  # validates strength and flow method now
    audio_from = src if isinstance(source, ContainerSource) and info.audio_streams else None
    if not frames_out:
        pick_codec(dest, options.encode_options(), info.width, info.height)
        check_audio_copy(audio_from, dest)

    net = FrameColorizer(model, info.height, info.width, options.render_factor, options.decoding)
    try:
        guide = FilmGuide(model, options, info.width, info.height, info.fps, net.h, net.w)
    except TinctError as e:  # the hints file, reference or palette given is wrong, not the film
        raise OptionError(str(e)) from None
    guide = guide if guide.active else None

    work = work_dir(dest)
    fingerprint = _fingerprint(model, source, options, dest, guide)
    done, start, state, cuts = _resume(work, fingerprint)
    if start:
        tqdm.write(f"tinct: resuming {src.name} at frame {start} ({done} segments done)", file=sys.stderr)

    t0 = time.perf_counter()
    if guide is not None and guide.needs_plan:  # before the run's progress bar: its own bar, then gone
        try:
            _plan(guide, net, source, work, options)
        except BaseException as e:
            source.close()
            if isinstance(e, TinctError):  # bad guidance: nothing worth resuming
                shutil.rmtree(work, ignore_errors=True)
            raise
    stab = Stabilizer(options.temporal_options(), state)
    seg, writer, index = done, None, start
    bar = tqdm(total=info.expected_frames, initial=start, unit="frame", desc=src.name, disable=not options.progress,
               dynamic_ncols=True, file=sys.stderr)
    seg_cuts: list[int] = []
    try:
        frames = source.frames(start)
        for L, (ab,) in stabilised_frames(model, frames, info.height, info.width, options.render_factor,
                                          [stab], options.batch, options.decoding, guide, start):
            if writer is None:
                writer = _open_segment(work, seg, dest, info, options, frames_out)
            if stab.cut:
                seg_cuts.append(index)
            writer.write(recombine(L, torch.from_numpy(ab)[None]))
            index += 1
            bar.update(1)
            if index % options.segment_frames == 0:
                _finish_segment(work, seg, writer, stab.state, seg_cuts, index)
                cuts += seg_cuts
                seg, writer, seg_cuts = seg + 1, None, []
        if writer is not None:
            _finish_segment(work, seg, writer, stab.state, seg_cuts, index)
            cuts += seg_cuts
            writer = None
    except TinctError as e:
        # bad input or output: nothing worth resuming; leave no partial files behind
        bar.leave = False  # and no progress bar above the one-line error
        if writer is not None:
            writer.abort(e)
        shutil.rmtree(work, ignore_errors=True)
        raise
    except BaseException as e:
        if writer is not None:
            writer.abort(e)  # the finished segments stay: a rerun continues from them
        raise
    finally:
        bar.close()
        source.close()
    if index == 0:
        shutil.rmtree(work, ignore_errors=True)
        raise TinctError(f"{src}: no frames")
    if not frames_out:
        segments = sorted(work.glob(f"seg_*{dest.suffix.lower()}"))
        concat_segments([(_segment_number(p) * options.segment_frames, p) for p in segments], dest, info.fps,
                        audio_from)
    shutil.rmtree(work, ignore_errors=True)
    return VideoResult(dest=dest, frames=index, resumed_from=start, cuts=cuts, seconds=time.perf_counter() - t0)


def _plan(guide: FilmGuide, net: FrameColorizer, source: VideoSource, work: Path, options: VideoOptions) -> None:
    """The look-ahead pass (carried points, shots), or its saved result when resuming."""
    saved = work / "guide_plan.npz"
    if saved.exists():
        try:
            guide.set_plan(GuidePlan.load(saved))
            return
        except (OSError, ValueError, KeyError):
            pass  # unreadable: recompute (the pass is deterministic)
    with tqdm(unit="frame", desc="tracking points and shots", disable=not options.progress, leave=False,
              dynamic_ncols=True, file=sys.stderr) as bar:
        def small():
            for L in source.frames(0):
                yield luminance8(net.shrink([L])[0, 0].numpy())
                bar.update(1)
        guide.make_plan(small(), options.temporal_options()).save(saved)


def work_dir(dest: Path) -> Path:
    """Where segments of an unfinished run live: a hidden folder beside the output."""
    if is_frame_pattern(dest):
        return dest.parent / ".tinct-frames.parts"
    return dest.parent / f".{dest.name}.tinct-parts"


def _open_segment(work: Path, seg: int, dest: Path, info, options: VideoOptions, frames_out: bool):
    work.mkdir(parents=True, exist_ok=True)
    if frames_out:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return FrameWriter(dest, seg * options.segment_frames)
    return SegmentWriter(work / f"seg_{seg:06d}{dest.suffix.lower()}", info.width, info.height, info.fps,
                         options.encode_options())


def _finish_segment(work: Path, seg: int, writer, state: StabilizerState, cuts: list[int], end: int) -> None:
    """Close segment ``seg`` (frames up to ``end``, exclusive): its state file, its file, then its marker."""
    # the state goes first: a segment file (or marker) present means its state is there too
    with atomic_path(work / f"seg_{seg:06d}.state.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, L=state.L, ab=state.ab, cuts=np.asarray(cuts, dtype=np.int64), end=np.int64(end))
    writer.finish()
    with atomic_path(work / f"seg_{seg:06d}.done") as tmp:
        Path(tmp).write_text("done\n")


def _segment_number(path: Path) -> int:
    return int(path.name[4:10])


def _resume(work: Path, fingerprint: dict) -> tuple[int, int, StabilizerState | None, list[int]]:
    """Consecutive finished segments: their number, the frame after them, the stabiliser state, their cuts."""
    job = work / "job.json"
    if work.exists():
        try:
            same = json.loads(job.read_text()) == fingerprint
        except (OSError, ValueError):
            same = False
        if not same:
            tqdm.write(f"tinct: discarding unfinished parts made with other settings in {work}", file=sys.stderr)
            shutil.rmtree(work)
    if not work.exists():
        work.mkdir(parents=True)
        with atomic_path(job) as tmp:
            Path(tmp).write_text(json.dumps(fingerprint, indent=1))
        return 0, 0, None, []
    remove_stale_parts(work)  # a segment half-written when the last run was killed
    done, end, state, cuts = 0, 0, None, []
    while (work / f"seg_{done:06d}.done").exists():
        try:
            with np.load(work / f"seg_{done:06d}.state.npz", allow_pickle=False) as z:
                state = StabilizerState(L=z["L"], ab=z["ab"])
                cuts += [int(c) for c in z["cuts"]]
                end = int(z["end"])
        except (OSError, ValueError, KeyError):
            break
        done += 1
    return done, end, state, cuts


def _fingerprint(model: ColorModel, source: VideoSource, options: VideoOptions, dest: Path,
                 guide: FilmGuide | None = None) -> dict:
    """Everything that decides the output's pixels: a work folder made under other values is not reused."""
    h = hashlib.sha1()
    if hasattr(model, "state_dict"):
        h.update(json.dumps(asdict(model.config), sort_keys=True).encode())  # its own decoding settings too
        for k, v in model.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    else:  # an exported (ONNX) model: its metadata names it
        h.update(json.dumps(getattr(model, "meta", {}), sort_keys=True).encode())
    opts = asdict(options)
    opts.pop("progress")
    opts.pop("batch")
    return {"format": WORK_FORMAT, **source.identity(), "frames": source.info.frames, "model": h.hexdigest(),
            "options": {k: (str(v) if isinstance(v, Fraction) else v) for k, v in opts.items()},
            "output": dest.suffix.lower(), "guide": guide.identity() if guide is not None else {}}
