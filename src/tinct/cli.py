"""The ``tinct`` command. Thin: it parses flags into the config dataclasses and calls the library.

Errors a user can cause print one line (``tinct: error: ...``) and exit 2;
``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import TinctError
from .io import SAVE_FORMATS

_DEBUG = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="tinct")
def cli(debug):
    """tinct: put color into grayscale photographs."""
    global _DEBUG
    _DEBUG = debug


@cli.command("models")
def models_cmd():
    """List the registered model families, one name per line."""
    from .models import list_models
    for name in list_models():
        click.echo(name)


@cli.command("colorize")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", required=True, help="Output file (one input) or folder.")
@click.option("--model", default=None, help="Shipped model name or a .safetensors file (default: the shipped default).")
@click.option("--render-factor", type=click.IntRange(1, 200), default=None,
              help="Working resolution = render factor x 16 px (side of a square of equal area).")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist.")
@click.option("--max-pixels", type=click.IntRange(1), default=None, help="Refuse images with more pixels than this.")
@click.option("--trust-pickle", is_flag=True, help="Allow a pickle .pt/.pth model (loaded with weights_only).")
def colorize_cmd(inputs, out, model, render_factor, overwrite, max_pixels, trust_pickle):
    """Colorize grayscale photos: files or folders (folders are mirrored into OUT)."""
    from .batch import colorize_paths
    from .io import DEFAULT_MAX_PIXELS
    from .pipeline import DEFAULT_RENDER_FACTOR, ColorizeOptions
    from .weights import load_model
    options = ColorizeOptions(render_factor=render_factor or DEFAULT_RENDER_FACTOR,
                              max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    jobs = plan_or_fail(inputs, out)
    net = load_model(model, trust_pickle=trust_pickle)
    failed = colorize_paths(net, jobs, options, overwrite=overwrite)
    if failed:
        sys.exit(1)


def plan_or_fail(inputs, out):
    from .batch import plan_jobs
    return plan_jobs([Path(p) for p in inputs], Path(out))


@cli.command("train")
@click.option("--model", "model_name", default="unet", show_default=True, help="Model family (see `tinct models`).")
@click.option("--data", multiple=True, required=True, help="Folder of color photos (repeatable).")
@click.option("--val", default=None, help="Validation folder (default: 20% of --data, split by file name).")
@click.option("--out", required=True, help="Run folder: model.safetensors, checkpoint, metrics, curves.")
@click.option("--steps", type=click.IntRange(1), default=None)
@click.option("--epochs", type=click.FloatRange(0, min_open=True), default=None)
@click.option("--size", type=click.IntRange(16), default=128, show_default=True, help="Training crop size in px.")
@click.option("--batch", type=click.IntRange(1), default=16, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True)
@click.option("--loss", type=click.Choice(["l1", "l2", "huber"]), default=None, help="Regression loss (default l1).")
@click.option("--head", type=click.Choice(["regression", "classification"]), default=None,
              help="Predict ab directly, or classify over quantized ab (Zhang et al.).")
@click.option("--init", default=None, help="Start from these weights (a model file) instead of random.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-every", type=click.IntRange(1), default=500, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(1), default=250, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
def train_cmd(model_name, data, val, out, steps, epochs, size, batch, lr, loss, head, init, resume, seed,
              val_every, checkpoint_every, threads):
    """Train a colorization model on folders of color photos."""
    from .models import model_class
    from .train import TrainConfig, train
    model_class(model_name)  # fail early on an unknown name
    opts = {k: v for k, v in {"loss": loss, "head": head}.items() if v is not None}
    if steps is None and epochs is None:
        raise TinctError("say how long to train: --steps N or --epochs N")
    cfg = TrainConfig(model=model_name, model_options=opts, data=list(data), val=val, out=out, steps=steps,
                      epochs=epochs, size=size, batch=batch, lr=lr, init=init, resume=resume, seed=seed,
                      val_every=val_every, checkpoint_every=checkpoint_every, threads=threads)
    path = train(cfg)
    click.echo(f"wrote {path}")


@cli.command("evaluate")
@click.argument("data", nargs=-1, required=True)
@click.option("--model", "models", multiple=True, help="Model name or file (repeatable; default: the shipped default).")
@click.option("-o", "--out", required=True, help="Report folder.")
@click.option("--render-factor", type=click.IntRange(1, 200), default=None)
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate on an even sample of this many photos.")
def evaluate_cmd(data, models, out, render_factor, limit):
    """Gray color photos, colorize them, score against the originals; write a report."""
    from .evaluate import EvaluateConfig, evaluate, markdown_table
    from .pipeline import DEFAULT_RENDER_FACTOR
    cfg = EvaluateConfig(data=list(data), models=list(models) or ["default"], out=out,
                         render_factor=render_factor or DEFAULT_RENDER_FACTOR, limit=limit)
    summary = evaluate(cfg)
    click.echo(markdown_table(summary, cfg).split("\n\n")[2])
    click.echo(f"report: {Path(out) / 'report.md'}")


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
        sys.exit(2)
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
