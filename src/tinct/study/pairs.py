"""The study's pairs: each truth photo (resized for display) and its colorization by each model.

Both images of a pair have the same size, the same lightness (the colorization keeps the truth's L)
and the same encoding (PNG), so only the colors can tell them apart. They are made once at start-up
and kept in memory; a copy goes to a folder beside the answers (``ANSWERS_pairs/``) so the report can
show the most and least convincing pairs later.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..color import rgb_to_lab
from ..data import colorfulness, find_images
from ..errors import TinctError
from ..io import atomic_path
from ..pipeline import DEFAULT_RENDER_FACTOR, ColorizeOptions, colorize_luminance


@dataclass
class StudyConfig:
    truth: list[str] = field(default_factory=list)      # folders of color photos
    models: list[str] = field(default_factory=lambda: ["default"])
    answers: str = "answers.csv"
    host: str = "127.0.0.1"
    port: int = 8080
    trials: int = 0                 # pairs per participant (0: one per photo); never the same photo twice
    show_seconds: float = 0.0       # 0: the pair stays until answered; else it is hidden after this long
    size: int = 512                 # longest side of the shown photos, px
    photos: int = 0                 # use an even sample of this many photos (0: all)
    render_factor: int = DEFAULT_RENDER_FACTOR
    min_colorfulness: float = 10.0  # near-gray truths make a pair with nothing to judge; skipped


@dataclass
class Pair:
    photo: str                      # a name for the truth photo (its path under its folder)
    truth_png: bytes
    fakes: dict[str, bytes]         # model name -> PNG of the colorization


def model_name(spec: str) -> str:
    """The name a model goes by in the answers: a shipped name, or the file's stem (run folder for model.safetensors)."""
    from ..weights import shipped_models
    if spec in shipped_models():
        return spec
    p = Path(spec)
    return p.parent.name if p.name == "model.safetensors" else p.stem


def pairs_dir(answers: str | Path) -> Path:
    answers = Path(answers)
    return answers.with_name(answers.stem + "_pairs")


def file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def prepare(config: StudyConfig, log=print) -> list[Pair]:
    """Load, resize, gray and colorize every study photo with every model; write the pairs folder."""
    from ..weights import load_model
    if not config.truth:
        raise TinctError("give the real color photos with --truth FOLDER")
    names = [model_name(m) for m in config.models]
    if len(set(names)) != len(names):
        raise TinctError(f"two models share a name ({', '.join(names)}); rename one file")
    models = {n: load_model(m) for n, m in zip(names, config.models)}
    files = []
    for folder in config.truth:
        files += [(Path(folder), f) for f in find_images(folder)]
    if config.photos and len(files) > config.photos:
        files = [files[int(i * len(files) / config.photos)] for i in range(config.photos)]
    out_dir = pairs_dir(config.answers)
    pairs = []
    for root, path in files:
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((config.size, config.size), Image.Resampling.LANCZOS)
                truth = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError) as e:
            log(f"tinct study: skipped {path} (cannot read: {type(e).__name__})")
            continue
        if colorfulness(truth) < config.min_colorfulness:
            log(f"tinct study: skipped {path} (nearly gray: nothing to compare)")
            continue
        L = rgb_to_lab(truth / 255.0)[..., 0]
        name = path.relative_to(root).as_posix()
        truth = np.asarray(truth)
        fakes = {n: png(colorize_luminance(m, L, ColorizeOptions(render_factor=config.render_factor)))
                 for n, m in models.items()}
        pairs.append(Pair(photo=name, truth_png=png(truth), fakes=fakes))
        for label, data in [("truth", pairs[-1].truth_png), *fakes.items()]:
            with atomic_path(out_dir / f"{file_stem(name)}.{file_stem(label)}.png") as tmp:
                Path(tmp).write_bytes(data)
    if not pairs:
        raise TinctError(f"no color photos to study in {', '.join(config.truth)}")
    return pairs
