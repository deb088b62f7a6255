"""Many photos in one run: plan input -> output pairs, skip finished ones, report failures.

A folder input is mirrored into the output folder (relative paths kept); a
single file may go to a file path. Each output is written atomically, so a run
killed at any moment leaves only complete files, and the next run skips them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click
from tqdm import tqdm

from .data import IMAGE_EXTENSIONS
from .errors import TinctError
from .io import SAVE_FORMATS
from .pipeline import ColorizeOptions, colorize_file

READ_ONLY_SUFFIXES = {".gif": ".png"}  # formats we read but write as PNG


@dataclass
class Job:
    src: Path
    dest: Path


def _out_name(src: Path) -> str:
    suffix = src.suffix.lower()
    if suffix in SAVE_FORMATS:
        return src.name
    return src.stem + READ_ONLY_SUFFIXES.get(suffix, ".png")


def plan_jobs(inputs: list[Path], out: Path) -> list[Job]:
    for p in inputs:
        if not p.exists():
            raise TinctError(f"{p}: no such file or folder")
    if len(inputs) == 1 and inputs[0].is_file() and out.suffix.lower() in SAVE_FORMATS and not out.is_dir():
        return [Job(inputs[0], out)]
    if out.exists() and not out.is_dir():
        raise TinctError(f"{out}: exists and is not a folder (several inputs need an output folder)")
    jobs = []
    for p in inputs:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS | set(READ_ONLY_SUFFIXES):
                    rel = f.relative_to(p)
                    jobs.append(Job(f, out / rel.parent / _out_name(f)))
        else:
            jobs.append(Job(p, out / _out_name(p)))
    if not jobs:
        raise TinctError(f"no images found in {', '.join(map(str, inputs))}")
    return jobs


def colorize_paths(model, jobs: list[Job], options: ColorizeOptions, overwrite: bool = False) -> int:
    """Run ``jobs``; returns the number that failed. Errors are reported one line each and skipped."""
    todo = [j for j in jobs if overwrite or not j.dest.exists()]
    skipped = len(jobs) - len(todo)
    failed = 0
    single = len(jobs) == 1
    bar = tqdm(todo, desc="colorizing", unit="img", disable=single or not todo)
    for job in bar:
        try:
            colorize_file(model, job.src, job.dest, options)
        except TinctError as e:
            if single:
                raise
            failed += 1
            bar.write(f"tinct: skipped: {e}", file=sys.stderr)
    if not single or skipped:
        done = len(todo) - failed
        click.echo(f"{done} colorized, {skipped} already done, {failed} failed", err=True)
    return failed
