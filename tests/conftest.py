from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(1)  # tests must not fight each other (or a training run) for cores

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def gradient_photo(h=48, w=64, seed=0) -> np.ndarray:
    """A colorful synthetic RGB photo (H, W, 3) uint8: smooth gradients plus a few blocks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    rgb = np.stack([0.5 + 0.5 * np.sin(6 * x + seed), 0.5 + 0.5 * np.cos(5 * y), 0.4 + 0.4 * x * y], -1)
    for _ in range(3):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        rgb[y0:y0 + h // 4, x0:x0 + w // 4] = rng.random(3)
    return (rgb * 255).clip(0, 255).astype(np.uint8)


@pytest.fixture
def photo_dir(tmp_path):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(gradient_photo(72, 80, seed=i)).save(d / ("sub" if i % 2 else ".") / f"p{i}.png")
    return d


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A small, randomly initialised U-Net saved as a model file: fast to load and run."""
    from tinct.models import create_model
    from tinct.weights import save_model
    torch.manual_seed(0)
    model = create_model("unet", base_channels=8, depth=2)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(model.eval(), path, trained_on="nothing", steps=0)
    return path


@pytest.fixture(scope="session", autouse=True)
def session_tinct_cache(tmp_path_factory):
    """The session's own TINCT_CACHE, so no test reads or fills the user's: the ONNX copy of the default that
    `tinct colorize` makes on first use, converted ImageNet weights, photo caches.

    The ONNX copy is made here, before any test: otherwise whichever test colorized first would also see its
    "preparing" line and its 10 s."""
    from tinct.onnxrt import cached_export
    from tinct.weights import WEIGHTS_DIR
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINCT_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        cached_export(WEIGHTS_DIR / "default.safetensors")
        yield


@pytest.fixture(scope="module")
def private_tinct_cache(tmp_path_factory):
    """A module's own TINCT_CACHE (converted weights, photo caches), so tests never touch the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINCT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def cli(*args) -> int:
    """Run ``tinct ARGS`` in this process; its exit code (0 when it returns)."""
    from tinct.cli import main
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return e.code
    return 0
