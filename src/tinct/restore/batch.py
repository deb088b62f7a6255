"""Photo runs for ``tinct restore`` and ``tinct colorize --restore``: the same plans and rules as colorize.

Folders are mirrored, finished outputs skipped (a killed run resumes), every file written atomically, a bad
file reported on one line and skipped. ``photo_colorizer`` is what ``tinct colorize`` runs per photo: a color
photo gets its own colors restored instead of being grayed and recolored (unless ``recolor``), and with
``restore`` the damage is repaired before the colorization.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import TinctError
from ..io import refuse_overwriting_input, remove_stale_parts, save_image
from .color import is_color_photo, restore_colors
from .run import RestoreOptions, load_photo, mask_path, restore_file, restore_image, save_mask

_log = logging.getLogger("tinct")


def restore_paths(jobs, options: RestoreOptions, overwrite: bool = False, write_mask: bool = False) -> int:
    """Restore ``jobs`` (``batch.Job``: src -> dest); returns how many failed."""
    from ..batch import is_video_job
    if any(is_video_job(j) for j in jobs):
        raise TinctError("tinct restore works on photos, not films")
    for folder in {j.dest.parent for j in jobs}:
        remove_stale_parts(folder)
    # the mask is written before the photo, so a finished photo means a finished pair
    todo = [j for j in jobs if overwrite or not j.dest.exists()]
    skipped, failed, single = len(jobs) - len(todo), 0, len(jobs) == 1
    bar = tqdm(todo, desc="restoring", unit="img", disable=single or not todo)
    for job in bar:
        try:
            restore_file(job.src, job.dest, options, write_mask=write_mask)
        except (TinctError, MemoryError) as e:
            if single:
                raise
            failed += 1
            bar.write(f"tinct: skipped: {e if isinstance(e, TinctError) else f'{job.src}: not enough memory'}",
                      file=sys.stderr)
    if not single or skipped:
        tqdm.write(f"{len(todo) - failed} restored, {skipped} already done, {failed} failed", file=sys.stderr)
    return failed


def photo_colorizer(restore: bool, options: RestoreOptions, write_mask: bool = False):
    """``colorize_one(model, src, dest, colorize_options)``: the ``photo`` step of ``batch.colorize_paths``."""
    from ..pipeline import colorize_luminance

    def colorize_one(model, src, dest, copts):
        src, dest = Path(src), Path(dest)
        refuse_overwriting_input(src, dest)
        photo = load_photo(src, copts.max_pixels)
        color = photo.rgb is not None and not options.recolor and is_color_photo(photo.rgb)
        L = photo.L
        if restore:
            r = restore_image(photo.rgb, photo.L, options, keep_color=not options.recolor)
            if write_mask:
                save_mask(r.mask, mask_path(dest))
            if color:
                rgb = r.rgb
            else:
                L = r.L
        elif color:
            rgb = np.clip(restore_colors(photo.rgb.astype(np.float32) / 255.0) * 255 + 0.5, 0, 255).astype(np.uint8)
        if not color:
            rgb = colorize_luminance(model, L, copts)
        save_image(rgb, dest, photo.alpha, quality=copts.jpeg_quality)
        if color:
            _log.warning("tinct: %s: already in color: restored its own colors instead of recoloring it "
                         "(--recolor to recolor)", src)
    return colorize_one
