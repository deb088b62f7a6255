"""Many photos in one run: plan input -> output pairs, skip finished ones, report failures.

A folder input is mirrored into the output folder (relative paths kept); a
single file may go to a file path. Hidden files and folders (names starting with
".": AppleDouble ``._x.jpg`` files, thumbnail caches, our own temporary files)
are not inputs. Each output is written atomically, so a run killed at any moment
leaves only complete files; the next run skips them and removes the killed run's
temporary files. Films (by suffix or content) and numbered frames going to a film
file or a ``%05d.png`` pattern are jobs too, run by ``tinct.video``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click
from tqdm import tqdm

from .data import IMAGE_EXTENSIONS
from .errors import TinctError
from .io import SAVE_FORMATS, remove_stale_parts
from .pipeline import ColorizeOptions, colorize_file
from .video.options import VideoOptions
from .video.source import VIDEO_OUTPUT_SUFFIXES, VIDEO_SUFFIXES, is_frame_pattern, is_video_file

READ_ONLY_SUFFIXES = {".gif": ".png"}  # formats we read but write as PNG


@dataclass
class Job:
    src: Path
    dest: Path


def _out_name(src: Path) -> str:
    suffix = src.suffix.lower()
    if is_video_file(src):
        return src.stem + (suffix if suffix in VIDEO_OUTPUT_SUFFIXES else ".mp4")
    if suffix in SAVE_FORMATS:
        return src.name
    return src.stem + READ_ONLY_SUFFIXES.get(suffix, ".png")


def _video_job(inputs: list[Path], out: Path) -> Job | None:
    """One film (a file, a folder of numbered frames, a ``%05d`` pattern) to one film file or frame pattern."""
    if len(inputs) != 1:
        return None
    src = inputs[0]
    to_film = out.suffix.lower() in VIDEO_OUTPUT_SUFFIXES and not out.is_dir()
    if to_film or is_frame_pattern(out):
        if is_frame_pattern(src) or src.is_dir() or is_video_file(src):
            return Job(src, out)
    elif is_frame_pattern(src) or is_video_file(src) and out.suffix.lower() in SAVE_FORMATS:
        raise TinctError(f"{out}: a film goes to a film file ({', '.join(sorted(VIDEO_OUTPUT_SUFFIXES))}) "
                         "or to numbered frames like out/%05d.png")
    return None


def is_video_job(job: Job) -> bool:
    return job.dest.suffix.lower() in VIDEO_OUTPUT_SUFFIXES or is_frame_pattern(job.dest)


def plan_jobs(inputs: list[Path], out: Path) -> list[Job]:
    video = _video_job(inputs, out)
    if video is not None:
        return [video]
    for p in inputs:
        if not p.exists():
            raise TinctError(f"{p}: no such file or folder")
    if len(inputs) == 1 and inputs[0].is_file() and out.suffix.lower() in SAVE_FORMATS and not out.is_dir():
        return [Job(inputs[0], out)]
    if out.exists() and not out.is_dir():
        raise TinctError(f"{out}: exists and is not a folder (several inputs need an output folder)")
    jobs = []
    out_abs = out.resolve()
    for p in inputs:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if out_abs in f.resolve().parents:
                    continue  # an output folder inside the input folder: its results are not inputs
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS | set(READ_ONLY_SUFFIXES) | VIDEO_SUFFIXES:
                    jobs.append(Job(f, out / rel.parent / _out_name(f)))
        else:
            jobs.append(Job(p, out / _out_name(p)))
    if not jobs:
        raise TinctError(f"no images found in {', '.join(map(str, inputs))}")
    return jobs


def colorize_paths(model, jobs: list[Job], options: ColorizeOptions, overwrite: bool = False,
                   video: VideoOptions | None = None, colorize_one=None) -> int:
    """Run ``jobs``; returns the number that failed. Errors are reported one line each and skipped.

    ``colorize_one(model, src, dest, options)`` replaces ``colorize_file`` for photos (guided methods).

    Films (see ``video``) go through :func:`tinct.video.colorize.colorize_video` with ``video`` options.
    """
    for folder in {j.dest.parent for j in jobs}:
        remove_stale_parts(folder)  # leftovers of a run killed mid-write (kill -9, power cut)
    todo = [j for j in jobs if overwrite or not j.dest.exists()]
    skipped = len(jobs) - len(todo)
    failed = 0
    single = len(jobs) == 1
    bar = tqdm(todo, desc="colorizing", unit="img", disable=single or not todo)
    for job in bar:
        try:
            if is_video_job(job):
                from .video.colorize import colorize_video
                colorize_video(model, job.src, job.dest, video or VideoOptions(
                    render_factor=options.render_factor, max_pixels=options.max_pixels))
            else:
                (colorize_one or colorize_file)(model, job.src, job.dest, options)
        except (TinctError, MemoryError) as e:
            if single:
                raise
            failed += 1
            why = e if isinstance(e, TinctError) else f"{job.src}: not enough memory"
            bar.write(f"tinct: skipped: {why}", file=sys.stderr)
    if not single or skipped:
        done = len(todo) - failed
        click.echo(f"{done} colorized, {skipped} already done, {failed} failed", err=True)
    return failed
