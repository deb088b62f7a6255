"""Photo runs for ``tinct restore`` and ``tinct colorize --restore``: the same plans and rules as colorize.

Folders are mirrored, finished outputs skipped (a killed run resumes), every file written atomically, a bad
file reported on one line and skipped. ``photo_colorizer`` is what ``tinct colorize`` runs per photo: a color
photo gets its own colors restored instead of being grayed and recolored (unless ``recolor``), and with
``restore`` the damage is repaired before the colorization.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import TinctError
from ..io import refuse_overwriting_input, save_image
from .photo import KEPT_COLORS, prepare
from .run import RestoreOptions, load_photo, mask_path, restore_file, save_mask

_log = logging.getLogger("tinct")


def restore_paths(jobs, options: RestoreOptions, overwrite: bool = False, write_mask: bool = False,
                  say=None, progress: bool = True):
    """Restore ``jobs`` (``batch.Job``: src -> dest) by ``batch.colorize_paths``'s rules (resume, one line per
    failed input, ``InputFailed`` for a single one); returns its ``RunResult``."""
    from ..batch import colorize_paths, is_video_job, refuse_named_output
    if any(is_video_job(j) for j in jobs):
        raise TinctError("tinct restore works on photos, not films")
    refuse_named_output(jobs, overwrite)

    def restore_one(_model, src, dest, _options):
        # the mask is written before the photo, so a finished photo means a finished pair
        restore_file(src, dest, options, write_mask=write_mask)
    return colorize_paths(None, jobs, None, overwrite=overwrite, photo=restore_one, say=say, progress=progress,
                          verb="restored")


def photo_colorizer(restore: bool, options: RestoreOptions, write_mask: bool = False):
    """``colorize_one(model, src, dest, colorize_options)``: the ``photo`` step of ``batch.colorize_paths``
    (``photo.prepare``: the rule ``tinct.colorize()`` and the HTTP API follow too)."""
    from ..pipeline import colorize_luminance

    def colorize_one(model, src, dest, copts):
        src, dest = Path(src), Path(dest)
        refuse_overwriting_input(src, dest)
        photo = load_photo(src, copts.max_pixels)
        p = prepare(photo.rgb, photo.L, restore, options)
        if write_mask and p.mask is not None:
            save_mask(p.mask, mask_path(dest))
        rgb = p.rgb if p.rgb is not None else colorize_luminance(model, p.L, copts)
        save_image(rgb, dest, photo.alpha, quality=copts.jpeg_quality)
        if p.rgb is not None:
            _log.warning("tinct: %s: %s (--recolor to recolor)", src, KEPT_COLORS)
    return colorize_one
