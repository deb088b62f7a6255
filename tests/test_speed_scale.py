"""Issue 7: the fast full-resolution path, the ECCV16 reference network, ONNX, torchrun.

No timings here (bench/speed.py measures speed): these check that the fast paths
compute the same thing as the reference ones, and that the distributed runs
split the work correctly.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tinct import bins, cli, color, distributed, fullres
from tinct.models import create_model
from tinct.models.eccv16 import gamut_bins
from tinct.pipeline import predict_ab
from tinct.weights import load_model, save_model

from .conftest import gradient_photo

ROOT = Path(__file__).resolve().parents[1]


def tinct(capsys, *args) -> tuple[int, str]:
    """``tinct ARGS`` in this process (the command's own code path, without a torch import per call)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(map(str, args)))
    return exit_.value.code, capsys.readouterr().err


# ------------------------------------------------------------ full resolution ---
def reference_recombine(L: np.ndarray, ab_small: torch.Tensor) -> np.ndarray:
    """The plain formulation: full-size bilinear upsampling, gamut clamp, Lab -> sRGB, all at once."""
    H, W = L.shape
    Lt = torch.from_numpy(L)[None, None]
    ab = F.interpolate(ab_small, size=(H, W), mode="bilinear", align_corners=False)
    ab = color.clamp_ab_to_gamut(Lt, ab)
    rgb = color.lab_to_rgb_t(torch.cat([Lt, ab], 1))[0]
    return (rgb * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("shape,chroma", [((97, 131), 25.0), ((40, 300), 70.0)])
def test_fast_recombine_equals_reference(shape, chroma):
    g = torch.Generator().manual_seed(1)
    L = (torch.rand(shape, generator=g) * 100).numpy()
    ab_small = torch.randn(1, 2, 9, 13, generator=g) * chroma  # 70: most pixels out of gamut, the clamp works hard
    want = reference_recombine(L, ab_small)
    for workers, band in ((1, 1 << 16), (2, 500)):  # several bands on two threads, and a band smaller than a row
        got = fullres.recombine(L, ab_small, band_pixels=band, workers=workers)
        diff = np.abs(got.astype(int) - want.astype(int))
        # float rounding can flip a bisection step exactly at the gamut boundary: rare, and then small
        assert (diff > 1).mean() < 1e-3 and diff.max() <= 12, (diff.max(), (diff > 1).mean())
        assert (diff == 0).mean() > 0.98


def test_fast_luminance_equals_float64_formulas():
    rng = np.random.default_rng(0)
    g8 = rng.integers(0, 256, (31, 47), dtype=np.uint8)
    g16 = rng.integers(0, 65536, (31, 47)).astype(np.uint16)
    rgb = rng.integers(0, 256, (31, 47, 3), dtype=np.uint8)
    assert np.array_equal(fullres.luminance_of(g8), color.gray_to_luminance(g8 / 255.0))
    assert np.array_equal(fullres.luminance_of(g16), color.gray_to_luminance(g16 / 65535.0))
    assert np.array_equal(fullres.luminance_of(g16.astype(">u2")), fullres.luminance_of(g16))
    L = fullres.luminance_of(rgb)
    assert L.dtype == np.float32
    assert np.abs(L - color.rgb_to_luminance(rgb / 255.0)).max() < 1e-3


# -------------------------------------------------------------------- eccv16 ---
def test_eccv16_follows_the_layer_table():
    model = create_model("eccv16").eval()
    convs = [m for m in model.blocks.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 12 + [256] * 2
    assert [c.dilation[0] for c in convs] == [1] * 10 + [2] * 6 + [1] * 5
    assert [c.stride[0] for c in convs].count(2) == 3
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 7
    assert 31e6 < sum(p.numel() for p in model.parameters()) < 33e6  # the paper's network: ~32 M
    centers = model.bin_centers.numpy()
    assert centers.shape == (313, 2) and len(np.unique(centers, axis=0)) == 313
    assert np.all(centers % bins.GRID == 0)
    # every cell an sRGB color falls in is a class (the rest are its nearest neighbours)
    v = np.linspace(0, 1, 17)
    ab = color.rgb_to_lab(np.stack(np.meshgrid(v, v, v), -1).reshape(-1, 3))[:, 1:]
    occupied = {tuple(c) for c in (np.round(ab / bins.GRID) * bins.GRID)}
    assert occupied <= {tuple(c) for c in centers}
    with torch.no_grad():
        out = model(torch.rand(1, 1, 48, 64) * 100)
    assert out["logits"].shape == (1, 313, 12, 16) and out["ab"].shape == (1, 2, 48, 64)


def test_eccv16_keeps_its_classes_when_trained(tmp_path, photo_dir):
    from tinct.train import Trainer, TrainConfig
    cfg = TrainConfig(model="eccv16", data=[str(photo_dir)], out=str(tmp_path / "run"), steps=1, size=32, batch=2,
                      cache_dir=str(tmp_path / "cache"), val_every=1000, workers=1)
    trainer = Trainer(cfg)
    model = trainer.model
    assert model.config.num_bins == 313
    assert torch.equal(model.bin_centers, torch.from_numpy(gamut_bins(313)))
    data_centers, _ = bins.bins_from_histogram(trainer.ab_hist)
    w = model.bin_weights
    seen = torch.cdist(model.bin_centers, torch.from_numpy(data_centers)).min(1).values < 1e-3
    assert seen.any() and torch.all(w[~seen] == w.max())  # never-seen classes weigh as the rarest


# ---------------------------------------------------------------------- onnx ---
@pytest.fixture
def hinted_classifier(tmp_path):
    """A tiny U-Net with the default model's structure: classification head, annealed mean, hint inputs."""
    torch.manual_seed(0)
    model = create_model("unet", base_channels=8, depth=2, head="classification", num_bins=40, hint_channels=3)
    hist = np.zeros((23, 23))
    hist[5:13, 6:11] = np.arange(40).reshape(8, 5) + 1
    centers, _ = bins.bins_from_histogram(hist)
    model.set_bins(centers, bins.rebalance_weights(hist))
    path = tmp_path / "tiny_cls.safetensors"
    save_model(model.eval(), path)
    return path


def test_onnx_export_and_colorize_equal_torch(tmp_path, hinted_classifier, capsys):
    from tinct.onnxrt import OnnxModel
    onnx_path = tmp_path / "m.onnx"
    code, err = tinct(capsys, "export", "--format", "onnx", "-o", onnx_path, "--model", hinted_classifier)
    assert code == 0, err
    torch_model, onnx_model = load_model(hinted_classifier), OnnxModel(onnx_path)
    assert onnx_model.stride == torch_model.stride
    # dynamic H and W: sizes the export never saw, with and without color points
    for h, w in ((20, 36), (52, 24)):
        L = torch.rand(1, 1, h, w) * 100
        hints = torch.zeros(1, 3, h, w)
        hints[0, :, h // 2, w // 2] = torch.tensor([40.0, -30.0, 1.0])
        for hi in (None, hints):
            with torch.no_grad():
                want = torch_model(L, hi)["ab"]
            got = onnx_model(L, hi)["ab"]
            assert got.shape == want.shape
            assert (got - want).abs().max() < 1e-3
    gray = np.asarray(Image.fromarray(gradient_photo(64, 96)).convert("L"))
    L = fullres.luminance_of(gray)
    assert (predict_ab(onnx_model, L, 3) - predict_ab(torch_model, L, 3)).abs().max() < 1e-3  # the pipeline's path
    src = tmp_path / "small.png"
    Image.fromarray(gray).save(src)
    code, err = tinct(capsys, "colorize", src, "-o", tmp_path / "onnx.png", "--backend", "onnx", "--model", onnx_path)
    assert code == 0, err
    code, err = tinct(capsys, "colorize", src, "-o", tmp_path / "torch.png", "--model", hinted_classifier)
    assert code == 0, err
    a = np.asarray(Image.open(tmp_path / "onnx.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "torch.png")).astype(int)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1
    assert np.hypot(*(color.rgb_to_lab(a / 255.0)[..., 1:].transpose(2, 0, 1))).mean() > 1  # it did put color in


def test_onnx_backend_errors_are_one_line(tmp_path, hinted_classifier, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(gradient_photo()).save(src)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    for args in (["--backend", "onnx"], ["--backend", "onnx", "--model", bad], ["--model", bad],
                 ["--backend", "onnx", "--model", hinted_classifier]):
        code, err = tinct(capsys, "colorize", src, "-o", tmp_path / "o.png", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "o.png").exists()


# ------------------------------------------- --backend auto: shipped models without torch ---
IN_FRESH_PROCESS = """
import sys
from tinct.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    print("exit", e.code, "torch imported", "torch" in sys.modules)
"""


def test_default_runs_in_onnxruntime_without_torch_and_colors_as_torch_does(tmp_path, capsys):
    gray = np.asarray(Image.fromarray(gradient_photo(90, 120, seed=3)).convert("L"))
    src = tmp_path / "gray.png"
    Image.fromarray(gray).save(src)
    code, err = tinct(capsys, "colorize", src, "-o", tmp_path / "auto.png")  # makes the cached copy if missing
    assert code == 0, err
    exports = list((Path(os.environ["TINCT_CACHE"]) / "onnx").glob("default-*.onnx"))
    assert len(exports) == 1, exports
    code, err = tinct(capsys, "colorize", src, "-o", tmp_path / "torch.png", "--backend", "torch")
    assert code == 0, err
    auto, by_torch = (np.asarray(Image.open(tmp_path / n)).astype(int) for n in ("auto.png", "torch.png"))
    assert np.abs(auto - by_torch).max() <= 1 and (auto != by_torch).mean() < 0.01
    assert np.hypot(*(color.rgb_to_lab(auto / 255.0)[..., 1:].transpose(2, 0, 1))).mean() > 1
    # a new process with the copy in the cache: file to file, and torch never imported
    run = subprocess.run([sys.executable, "-c", IN_FRESH_PROCESS, "colorize", str(src), "-o", str(tmp_path / "new.png")],
                         capture_output=True, text=True, env=os.environ, timeout=300)
    assert "exit 0 torch imported False" in run.stdout, run.stdout + run.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "new.png")), np.asarray(Image.open(tmp_path / "auto.png")))


def test_auto_backend_uses_torch_where_the_run_needs_it(tmp_path, tiny_model_path):
    from tinct.onnxrt import OnnxModel, load_backend
    assert isinstance(load_backend("auto", None, network_only=True), OnnxModel)
    for model, network_only in ((None, False), (tiny_model_path, True)):  # hints, decoding, ...; a user's own file
        assert isinstance(load_backend("auto", model, network_only=network_only), torch.nn.Module)
    assert not list((Path(os.environ["TINCT_CACHE"]) / "onnx").glob("tiny*"))  # nothing exported for a user file


def test_a_model_that_does_not_export_runs_in_torch_and_is_not_tried_again(tmp_path, monkeypatch):
    from tinct import onnxrt
    from tinct.weights import WEIGHTS_DIR
    monkeypatch.setenv("TINCT_CACHE", str(tmp_path / "cache"))
    tries = []

    def unsupported(model, dest):
        tries.append(dest)
        raise RuntimeError("Exporting the operator 'aten::something' to ONNX is not supported")
    monkeypatch.setattr(onnxrt, "export_onnx", unsupported)
    default = WEIGHTS_DIR / "default.safetensors"
    assert onnxrt.cached_export(default) is None and onnxrt.cached_export(default) is None
    assert len(tries) == 1
    assert not list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert isinstance(onnxrt.load_backend("auto", None, network_only=True), torch.nn.Module)


def test_an_unwritable_cache_means_torch_not_a_failure(tmp_path, monkeypatch):
    from tinct import onnxrt
    from tinct.weights import WEIGHTS_DIR
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    monkeypatch.setenv("TINCT_CACHE", str(not_a_folder))
    assert onnxrt.cached_export(WEIGHTS_DIR / "default.safetensors") is None
    assert isinstance(onnxrt.load_backend("auto", None, network_only=True), torch.nn.Module)


# --------------------------------------------------------------- distributed ---
@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_shards_cover_every_item_exactly_once(world):
    items = [f"f{i}" for i in range(23)]
    shards = [distributed.shard(items, distributed.Context(rank=r, world=world)) for r in range(world)]
    flat = [x for s in shards for x in s]
    assert sorted(flat) == sorted(items) and len(flat) == len(items)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_distributed_outside_torchrun_is_a_clear_error(tmp_path, tiny_model_path, capsys, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    src = tmp_path / "in.png"
    Image.fromarray(gradient_photo()).save(src)
    code, err = tinct(capsys, "colorize", src, "-o", tmp_path / "o.png", "--model", tiny_model_path, "--distributed")
    assert code == 2 and "torchrun" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


@pytest.fixture(scope="module")
def torchrun_job(tmp_path_factory):
    """One ``torchrun --nproc_per_node 2`` launch of tests/_torchrun_job.py (gloo, CPU)."""
    from .conftest import gradient_photo as photo
    work = tmp_path_factory.mktemp("torchrun")
    photos = work / "photos"
    (photos / "sub").mkdir(parents=True)
    for i in range(9):
        Image.fromarray(photo(72, 80, seed=i)).save(photos / ("sub" if i % 2 else ".") / f"p{i}.png")
    torch.manual_seed(0)
    tiny = work / "tiny.safetensors"
    save_model(create_model("unet", base_channels=8, depth=2).eval(), tiny)
    env = dict(os.environ, TINCT_CACHE=str(work / "cache"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(ROOT / "tests" / "_torchrun_job.py"), str(work), str(photos), str(tiny)],
                       capture_output=True, text=True, timeout=400, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ranks = [json.loads((work / f"rank{i}.json").read_text()) for i in range(2)]
    return work, photos, ranks, r.stdout + r.stderr


def test_torchrun_train_writes_the_model(torchrun_job):
    work, _, ranks, _ = torchrun_job
    assert [r["train_exit"] for r in ranks] == [0, 0]
    model = load_model(work / "run" / "model.safetensors")
    assert model.name == "unet" and model.meta["steps"] == "3"
    rows = (work / "run" / "metrics.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3"]  # rank 0 alone logs: no duplicate rows


def test_ddp_keeps_ranks_in_step_on_disjoint_photos(torchrun_job):
    _, _, ranks, _ = torchrun_job
    gathered = ranks[0]["ranks"]
    assert [g["rank"] for g in gathered] == [0, 1]
    a, b = (np.array(g["params"]) for g in gathered)
    assert np.array_equal(a, b)  # gradients were averaged: both ranks took the same steps
    assert len(gathered[0]["drawn"]) == 2 and not set(gathered[0]["drawn"]) & set(gathered[1]["drawn"])


def test_torchrun_colorize_shards_cover_every_file_once_and_resume(torchrun_job):
    work, photos, ranks, output = torchrun_job
    assert [r["colorize_exit"] for r in ranks] == [[0, 0], [0, 0]]
    shards = [set(r["shard"]) for r in ranks]
    files = {str(p) for p in photos.rglob("*.png")}
    assert not shards[0] & shards[1] and shards[0] | shards[1] == files
    made = {p.relative_to(work / "out") for p in (work / "out").rglob("*.png")}
    assert made == {p.relative_to(photos) for p in photos.rglob("*.png")}
    counts = [tuple(map(int, m)) for m in re.findall(r"(\d+) colorized, (\d+) already done, 0 failed", output)]
    assert len(counts) == 4
    assert sum(c for c, _ in counts) == len(files)  # each file colorized once, by one rank
    assert sum(d for _, d in counts) == len(files)  # the rerun found every file done
