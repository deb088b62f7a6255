"""Many photos in one run: plan input -> output pairs, skip finished ones, report each, count failures.

A folder input is mirrored into the output folder (relative paths kept); a
single file may go to a file path. Hidden files and folders (names starting with
".": AppleDouble ``._x.jpg`` files, thumbnail caches, our own temporary files)
are not inputs. Each output is written atomically, so a run killed at any moment
leaves only complete files; the next run skips them and removes the killed run's
temporary files. Films (by suffix or content) and numbered frames going to a film
file or a ``%05d.png`` pattern are jobs too, run by ``tinct.video``.

``ColorizeConfig`` holds everything ``tinct colorize`` decides and ``run_colorize`` carries it out
(plan, check, load the model, colorize, count). Refusals before any input is read are ``TinctError``
(the command exits 2); an input that fails is counted and reported on one line, and a run of one
input raises ``InputFailed`` instead (exit 1). Progress and the lines saying what was written go to
stderr, nothing when ``quiet``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from tqdm import tqdm

from .errors import InputFailed, OptionError, TinctError
from .io import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, SAVE_FORMATS, refuse_overwriting_input, remove_stale_parts
from .pipeline import DEFAULT_RENDER_FACTOR, ColorizeOptions, colorize_file
from .video.options import DEFAULT_TEMPORAL, VideoOptions
from .video.source import VIDEO_OUTPUT_SUFFIXES, VIDEO_SUFFIXES, is_frame_pattern, is_video_file

READ_ONLY_SUFFIXES = {".gif": ".png"}  # formats we read but write as PNG


SMALL_RUN = 10  # runs of up to this many outputs say each one ("a.jpg -> b.jpg (0.3 s)")


@dataclass
class Job:
    src: Path
    dest: Path
    named: bool = False        # the user named ``dest`` itself (``-o FILE`` for one photo)
    sample: int | None = None  # ``--samples``: which sample of ``src`` this output is


@dataclass
class RunResult:
    done: int = 0      # outputs written
    skipped: int = 0   # outputs that existed already (a resumed run)
    failed: int = 0    # inputs reported and skipped


@dataclass
class ColorizeConfig:
    """Everything ``tinct colorize`` decides (the command's flags); ``run_colorize`` does it."""
    inputs: list[str] = field(default_factory=list)   # photos, folders, films, numbered frames
    out: str = "colorized"                            # output file (one input) or folder, film or frame pattern
    model: str | None = None           # shipped name or model file (None: the shipped default)
    backend: str = "auto"              # "torch"; "onnx": an exported ``model``; "auto": see ``onnxrt.load_backend``
    trust_pickle: bool = False
    render_factor: int = DEFAULT_RENDER_FACTOR
    max_pixels: int = DEFAULT_MAX_PIXELS
    temperature: float | None = None   # classification models' decoding (None: the model's own)
    prior_correction: float | None = None
    samples: int | None = None         # models with noise inputs: write NAME_0 .. NAME_{k-1}
    overwrite: bool = False            # redo outputs that exist
    distributed: bool = False          # under torchrun: this process's share of the files
    temporal: float = DEFAULT_TEMPORAL  # films: weight of colors carried along the motion
    codec: str | None = None
    crf: int = 18
    fps: float | None = None
    segment_frames: int = 300
    method: str | None = None          # guided: levin, transfer, welsh, deep-colorization
    hints: str | None = None
    reference: str | None = None
    palette: str | None = None
    reference_per_shot: str | None = None  # films: a folder with one color photo per shot
    restore: bool = False              # repair scratches, dust, noise and fading before colorizing
    recolor: bool = False              # gray and recolor photos that already have color
    save_mask: bool = False            # with restore: also write NAME.mask.png
    quiet: bool = False                # no progress bars, no per-output lines, no summary (errors still)

    @property
    def guided(self) -> bool:
        return any(v is not None for v in (self.method, self.hints, self.reference, self.palette))




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
        return [Job(inputs[0], out, named=True)]
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


def colorize_paths(model, jobs: list[Job], options: ColorizeOptions | None, overwrite: bool = False,
                   video: VideoOptions | None = None, photo=None, say=None, progress: bool = True,
                   verb: str = "colorized") -> RunResult:
    """Run ``jobs``; an input that fails is reported on one line and counted (one job alone: ``InputFailed``).

    ``photo(model, src, dest, options)`` does one photo (default ``pipeline.colorize_file``; the guided methods
    pass it their ``chroma``, ``tinct colorize`` restoration and color-photo detection, see ``run_colorize``;
    ``tinct restore`` its restoration, with ``verb="restored"``); films (see ``video``) go through
    :func:`tinct.video.colorize.colorize_video`. ``say(line)``: where the lines saying what was done go (each
    output in a run of up to ``SMALL_RUN``, and a summary unless the run was one output); None says nothing.
    """
    for folder in {j.dest.parent for j in jobs}:
        remove_stale_parts(folder)  # leftovers of a run killed mid-write (kill -9, power cut)
    todo = [j for j in jobs if overwrite or not j.dest.exists()]
    result = RunResult(skipped=len(jobs) - len(todo))
    single = len(jobs) == 1
    bar = tqdm(todo, desc=verb.removesuffix("ed") + "ing", unit="img", disable=single or not todo or not progress)
    for job in bar:
        t0 = time.perf_counter()
        try:
            _colorize_job(model, job, options, video, photo, progress)
        except OptionError:
            raise  # an option's file is wrong: no other input would fare better
        except (TinctError, MemoryError) as e:
            why = e if isinstance(e, TinctError) else f"{job.src}: not enough memory"
            if single:
                raise InputFailed(str(why)) from e
            result.failed += 1
            bar.write(f"tinct: skipped: {why}", file=sys.stderr)
            continue
        result.done += 1
        if say is not None and len(jobs) <= SMALL_RUN:
            say(f"{job.src} -> {job.dest} ({time.perf_counter() - t0:.1f} s)")
    if say is not None and (not single or result.skipped):
        say(f"{result.done} {verb}, {result.skipped} already done, {result.failed} failed")
    return result


def _colorize_job(model, job: Job, options: ColorizeOptions, video: VideoOptions | None, photo, progress: bool):
    if is_video_job(job):
        from .video.colorize import colorize_video
        video = video or VideoOptions(render_factor=options.render_factor, decoding=options.decoding,
                                      max_pixels=options.max_pixels)
        colorize_video(model, job.src, job.dest, replace(video, progress=video.progress and progress))
    else:
        if job.sample is not None:
            options = replace(options, sample=job.sample)
        (photo or colorize_file)(model, job.src, job.dest, options)


def say_line(line: str) -> None:
    tqdm.write(line, file=sys.stderr)  # between progress-bar redraws, never through one


def run_colorize(cfg: ColorizeConfig) -> RunResult:
    """Plan, check everything that can be checked before reading an input, load the model, colorize, count."""
    jobs = plan_jobs([Path(p) for p in cfg.inputs], Path(cfg.out))
    film = any(is_video_job(j) for j in jobs)
    if (cfg.method or cfg.samples is not None) and film:
        raise TinctError("--method and --samples are for photos, not films")
    if cfg.reference_per_shot and not film:
        raise TinctError("--reference-per-shot is for films (one photo per shot)")
    if cfg.restore and (cfg.guided or cfg.samples is not None or film):
        raise TinctError("--restore is for photos colorized by the deep model (not with --method, --hints, "
                         "--reference, --palette, --samples or films)")
    if cfg.save_mask and not cfg.restore:
        raise TinctError("--save-mask needs --restore (or use `tinct restore --save-mask`)")
    guided = None
    if cfg.guided and not film:  # a film's guidance goes in VideoOptions
        from .guided.colorize import GuidedOptions, check_options
        guided = GuidedOptions(method=cfg.method, hints=cfg.hints, reference=cfg.reference, palette=cfg.palette)
        check_options(guided, jobs, samples=cfg.samples, temperature=cfg.temperature,
                      prior_correction=cfg.prior_correction)
    if cfg.samples is None:
        refuse_named_output(jobs, cfg.overwrite)
    device = "cpu"
    if cfg.distributed:
        from .distributed import from_env, shard
        ctx = from_env()  # ranks never talk: no process group, a rank's failure cannot stall the others
        jobs, device = shard(jobs, ctx), ctx.device
    net = None
    if guided is None or guided.method is None:  # levin, transfer, welsh and deep-colorization need no network
        from .onnxrt import load_backend
        network_only = not (film or cfg.guided or cfg.restore or cfg.samples is not None
                            or cfg.temperature is not None or cfg.prior_correction is not None)
        net = load_backend(cfg.backend, cfg.model, trust_pickle=cfg.trust_pickle, device=device,
                           network_only=network_only)
        if cfg.hints is not None:
            from .hints import check_takes_hints
            check_takes_hints(net, cfg.model)
    from .pipeline import decoding_for
    options = ColorizeOptions(render_factor=cfg.render_factor, max_pixels=cfg.max_pixels,
                              decoding=decoding_for(net, cfg.temperature, cfg.prior_correction))
    if cfg.samples is not None:
        from .sampling import require_stochastic, sample_jobs
        require_stochastic(net)
        jobs = sample_jobs(jobs, cfg.samples)
    video = VideoOptions(render_factor=options.render_factor, decoding=options.decoding, max_pixels=options.max_pixels,
                         codec=cfg.codec, crf=cfg.crf, temporal=cfg.temporal, fps=cfg.fps,
                         segment_frames=cfg.segment_frames, hints=cfg.hints, reference=cfg.reference,
                         palette=cfg.palette, reference_per_shot=cfg.reference_per_shot)
    if guided is not None:
        from .guided.colorize import guided_chroma
        photo = partial(colorize_file, chroma=guided_chroma(guided))
    elif cfg.samples is not None:  # several colorizations asked for: a color photo is recolored too
        photo = colorize_file
    else:  # a photo that has color gets its own colors restored, unless --recolor
        from .restore.batch import photo_colorizer
        from .restore.run import RestoreOptions
        photo = photo_colorizer(cfg.restore, RestoreOptions(recolor=cfg.recolor, max_pixels=options.max_pixels),
                                write_mask=cfg.save_mask)
    return colorize_paths(net, jobs, options, overwrite=cfg.overwrite, video=video, photo=photo,
                          say=None if cfg.quiet else say_line, progress=not cfg.quiet)


def refuse_named_output(jobs: list[Job], overwrite: bool) -> None:
    """One photo to an output file the user named: an existing one is replaced only with ``--overwrite``.

    (Folder and film runs skip finished outputs instead: that is how an interrupted run resumes.)
    """
    if len(jobs) != 1 or not jobs[0].named:
        return
    job = jobs[0]
    refuse_overwriting_input(job.src, job.dest)
    if job.dest.exists() and not overwrite:
        raise TinctError(f"{job.dest} already exists: pass --overwrite to replace it")
