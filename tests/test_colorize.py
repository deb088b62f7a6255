import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinct
from tinct.color import rgb_to_lab, rgb_to_luminance
from tinct.errors import TinctError
from tinct.pipeline import working_size
from tinct.weights import load_model

from .conftest import gradient_photo


def run_cli(*args):
    # one torch thread, as in this process (conftest): the same network then gives the same floats on both sides
    return subprocess.run([sys.executable, "-m", "tinct", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def out_L(path):
    return rgb_to_lab(np.asarray(Image.open(path).convert("RGB")) / 255.0)[..., 0]


@pytest.fixture
def model(tiny_model_path):
    return load_model(tiny_model_path)


def test_working_size_keeps_aspect_and_stride():
    h, w = working_size(3000, 4000, 16, 16)
    assert h % 16 == 0 and w % 16 == 0
    assert abs(h * w - 256 ** 2) / 256 ** 2 < 0.15
    assert abs(w / h - 4 / 3) < 0.1
    assert working_size(20, 30, 16, 16) == (16, 32)  # never upsampled beyond the photo
    with pytest.raises(TinctError):
        working_size(10, 10, 0, 16)


@pytest.mark.parametrize("kind", ["gray8", "gray16", "rgb", "rgba", "palette", "cmyk", "tiny", "strip"])
def test_odd_inputs_keep_size_and_luminance(kind, model):
    rgb = gradient_photo(45, 67)
    if kind == "gray8":
        im = Image.fromarray(rgb).convert("L")
    elif kind == "gray16":
        im = Image.fromarray((np.asarray(Image.fromarray(rgb).convert("L"), np.int32) * 257), "I")
    elif kind == "rgb":
        im = Image.fromarray(rgb)
    elif kind == "rgba":
        a = np.tile(np.linspace(0, 255, 67, dtype=np.uint8), (45, 1))
        im = Image.fromarray(np.dstack([rgb, a]), "RGBA")
    elif kind == "palette":
        im = Image.fromarray(rgb).convert("P")
    elif kind == "cmyk":
        im = Image.fromarray(rgb).convert("CMYK")
    elif kind == "tiny":
        im = Image.fromarray(rgb[:1, :1])
    else:
        im = Image.fromarray(rgb[:3, :])
    out = tinct.colorize(im, model=model, recolor=True)  # color inputs: colorized anew, not kept
    assert out.size == im.size
    if kind == "rgba":
        assert out.mode == "RGBA"
        assert np.array_equal(np.asarray(out)[..., 3], np.asarray(im)[..., 3])
    ref = Image.fromarray(rgb).convert("L") if kind == "gray16" else im  # Pillow clips mode I when converting
    L_in = rgb_to_luminance(np.asarray(ref.convert("RGB")) / 255.0)
    L_out = rgb_to_luminance(np.asarray(out.convert("RGB")) / 255.0)
    assert np.abs(L_out - L_in).mean() < 0.6


def test_array_api(model):
    gray = np.asarray(Image.fromarray(gradient_photo()).convert("L"))
    out = tinct.colorize(gray, model=model)
    assert out.size == (gray.shape[1], gray.shape[0])
    with pytest.raises(TinctError):
        tinct.colorize(np.zeros((4, 4, 7)), model=model)


def test_python_api_keeps_a_color_photos_own_colors_as_the_cli_does(tmp_path, tiny_model_path, model, caplog):
    """One rule for `tinct colorize` and `tinct.colorize()`: a color photo gets its own colors restored (and a
    warning) unless recolor=True; the two give the same pixels either way, and a gray photo is colorized."""
    from tinct.restore.degrade import fade_color
    rgb = gradient_photo(48, 64, seed=5).astype(np.float32) / 255
    faded = (fade_color(rgb, np.random.default_rng(1), saturation=0.5) * 255).round().astype(np.uint8)
    src = tmp_path / "faded.png"
    Image.fromarray(faded).save(src)
    with caplog.at_level("WARNING", logger="tinct"):
        kept = np.asarray(tinct.colorize(faded, model=model))
    assert "already in color" in caplog.text
    recolored = np.asarray(tinct.colorize(faded, model=model, recolor=True))
    assert run_cli("colorize", src, "-o", tmp_path / "kept.png", "--model", tiny_model_path).returncode == 0
    assert run_cli("colorize", src, "-o", tmp_path / "new.png", "--model", tiny_model_path, "--recolor").returncode == 0
    assert np.array_equal(kept, np.asarray(Image.open(tmp_path / "kept.png").convert("RGB")))
    assert np.array_equal(recolored, np.asarray(Image.open(tmp_path / "new.png").convert("RGB")))
    # kept: closer to the unfaded truth than the faded print; recolored: the input's lightness, the model's chroma
    truth = rgb_to_lab(rgb.astype(np.float64))
    assert np.abs(rgb_to_lab(kept / 255.0) - truth).mean() < np.abs(rgb_to_lab(faded / 255.0) - truth).mean()
    assert np.abs(rgb_to_lab(recolored / 255.0)[..., 0] - rgb_to_lab(faded / 255.0)[..., 0]).mean() < 1.0
    assert not np.array_equal(kept, recolored)


def test_exif_rotation_is_honoured(tmp_path, tiny_model_path):
    src = tmp_path / "rot.jpg"
    im = Image.fromarray(gradient_photo(40, 90)).convert("L")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(src, exif=exif)
    r = run_cli("colorize", src, "-o", tmp_path / "out.png", "--model", tiny_model_path)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "out.png").size == (40, 90)


def test_cli_file_keeps_luminance_exactly_enough(tmp_path, tiny_model_path):
    src = tmp_path / "in.png"
    Image.fromarray(gradient_photo(64, 96)).convert("L").save(src)
    r = run_cli("colorize", src, "-o", tmp_path / "out.png", "--model", tiny_model_path, "--render-factor", "4")
    assert r.returncode == 0, r.stderr
    L_in = rgb_to_lab(np.asarray(Image.open(src).convert("RGB")) / 255.0)[..., 0]
    assert np.abs(out_L(tmp_path / "out.png") - L_in).mean() < 0.5


def test_cli_folder_mirrors_and_skips_existing(photo_dir, tmp_path, tiny_model_path):
    out = tmp_path / "out"
    r = run_cli("colorize", photo_dir, "-o", out, "--model", tiny_model_path)
    assert r.returncode == 0, r.stderr
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert made == sorted(p.relative_to(photo_dir).as_posix() for p in photo_dir.rglob("*.png"))
    assert "6 colorized" in r.stderr
    r = run_cli("colorize", photo_dir, "-o", out, "--model", tiny_model_path)
    assert "0 colorized, 6 already done" in r.stderr
    r = run_cli("colorize", photo_dir, "-o", out, "--model", tiny_model_path, "--overwrite")
    assert "6 colorized" in r.stderr


def test_folder_with_a_bad_file_reports_and_continues(photo_dir, tmp_path, tiny_model_path):
    (photo_dir / "bad.jpg").write_text("not a photo")
    r = run_cli("colorize", photo_dir, "-o", tmp_path / "out", "--model", tiny_model_path)
    assert r.returncode == 1
    assert "bad.jpg" in r.stderr and "6 colorized" in r.stderr and "1 failed" in r.stderr
    assert not (tmp_path / "out" / "bad.jpg").exists()


@pytest.mark.parametrize("bad", ["missing", "empty", "text", "truncated"])
def test_bad_input_is_one_line_and_no_output(bad, tmp_path, tiny_model_path):
    src = tmp_path / "bad.jpg"
    if bad == "empty":
        src.write_bytes(b"")
    elif bad == "text":
        src.write_text("hello, I am not a JPEG")
    elif bad == "truncated":
        buf = io.BytesIO()
        Image.fromarray(gradient_photo(200, 200)).save(buf, format="JPEG")
        src.write_bytes(buf.getvalue()[:400])
    dest = tmp_path / "out.png"
    r = run_cli("colorize", src, "-o", dest, "--model", tiny_model_path)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert not dest.exists()
    assert not list(tmp_path.glob(".*part*"))


def test_bad_model_file_is_a_clear_error(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(gradient_photo()).save(src)
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"garbage")
    r = run_cli("colorize", src, "-o", tmp_path / "o.png", "--model", fake)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    pickle_file = tmp_path / "m.pt"
    pickle_file.write_bytes(b"\x80\x04K\x01.")
    r = run_cli("colorize", src, "-o", tmp_path / "o.png", "--model", pickle_file)
    assert r.returncode != 0 and "trust-pickle" in r.stderr


def test_models_command_lists_names():
    r = run_cli("models")
    assert r.returncode == 0
    assert {"cnn", "autoencoder", "unet"} <= set(r.stdout.split())


def test_shipped_default_model_colorizes():
    model = load_model("default")
    gray = Image.fromarray(gradient_photo(64, 64)).convert("L")
    out = np.asarray(tinct.colorize(gray, model=model))
    assert out.shape == (64, 64, 3)
    lab = rgb_to_lab(out / 255.0)
    assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 1.0  # it puts some color in


def test_prior_correction_flag_trades_color_for_safety(tmp_path, tiny_model_path):
    # the shipped classifier: dividing out all of the training rebalancing (1) gives grayer colors than none (0)
    src = tmp_path / "gray.png"
    Image.open(Path(__file__).parents[1] / "examples" / "astronaut_gray.jpg").convert("L").resize((96, 96)).save(src)
    chroma = {}
    for c in (0.0, 1.0):
        dest = tmp_path / f"c{c}.png"
        assert run_cli("colorize", src, "-o", dest, "--prior-correction", c).returncode == 0
        lab = rgb_to_lab(np.asarray(Image.open(dest).convert("RGB")) / 255.0)
        chroma[c] = np.hypot(lab[..., 1], lab[..., 2]).mean()
    assert chroma[1.0] < chroma[0.0] - 1.0
    # a regression model has no bins to correct; out of range is refused by the option itself
    for args in (("--model", tiny_model_path, "--prior-correction", 0.5), ("--prior-correction", 1.5)):
        r = run_cli("colorize", src, "-o", tmp_path / "x.png", *args)
        assert r.returncode != 0 and not (tmp_path / "x.png").exists()
        assert len(r.stderr.strip().splitlines()) <= 3 and "Traceback" not in r.stderr


def test_api_decoding_overrides_are_checked_and_leave_the_model_alone(model):
    gray = Image.fromarray(gradient_photo(48, 48)).convert("L")
    with pytest.raises(TinctError, match="classification models"):
        tinct.colorize(gray, model=model, prior_correction=0.5)  # a regression U-Net has no bins
    default = load_model("default")
    own = default.config.prior_correction
    with pytest.raises(TinctError, match=r"\[0, 1\]"):
        tinct.colorize(gray, model=default, prior_correction=-0.1)
    safe = np.asarray(tinct.colorize(gray, model=default, prior_correction=1.0))
    assert default.config.prior_correction == own
    assert not np.array_equal(safe, np.asarray(tinct.colorize(gray, model=default)))


def run_main(capsys, *args) -> tuple[int, str]:
    """``tinct ARGS`` in this process -> (exit code, stderr)."""
    from tinct.cli import main
    capsys.readouterr()
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return e.code, capsys.readouterr().err
    raise AssertionError("tinct returned without an exit code")


def test_each_output_is_reported_and_quiet_says_nothing(tmp_path, photo_dir, tiny_model_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(gradient_photo()).convert("L").save(src)
    code, err = run_main(capsys, "colorize", src, "-o", tmp_path / "out.jpg", "--model", tiny_model_path)
    lines = err.strip().splitlines()
    assert code == 0 and len(lines) == 1 and lines[0].startswith(f"{src} -> {tmp_path / 'out.jpg'} (")
    assert lines[0].endswith(" s)")
    code, err = run_main(capsys, "colorize", photo_dir, "-o", tmp_path / "folder", "--model", tiny_model_path)
    assert code == 0 and err.count(" -> ") == 6 and err.strip().endswith("6 colorized, 0 already done, 0 failed")
    code, err = run_main(capsys, "colorize", photo_dir, "-o", tmp_path / "quiet", "--model", tiny_model_path, "-q")
    assert code == 0 and err == "" and len(list((tmp_path / "quiet").rglob("*.png"))) == 6


def test_an_existing_output_named_for_one_photo_needs_overwrite(tmp_path, tiny_model_path, capsys):
    src, dest = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(gradient_photo()).convert("L").save(src)
    dest.write_bytes(b"an older result")
    code, err = run_main(capsys, "colorize", src, "-o", dest, "--model", tiny_model_path)
    assert code == 2 and err.count("\n") == 1 and "--overwrite" in err and str(dest) in err
    assert dest.read_bytes() == b"an older result"
    code, err = run_main(capsys, "colorize", src, "-o", dest, "--model", tiny_model_path, "--overwrite")
    assert code == 0 and Image.open(dest).size == (64, 48)
    # into a folder it is a resumable run: the finished output is skipped, not refused
    code, err = run_main(capsys, "colorize", src, "-o", tmp_path / "folder", "--model", tiny_model_path)
    assert code == 0
    code, err = run_main(capsys, "colorize", src, "-o", tmp_path / "folder", "--model", tiny_model_path)
    assert code == 0 and "0 colorized, 1 already done, 0 failed" in err


def test_exit_codes_tell_a_failed_input_from_a_usage_error(tmp_path, photo_dir, tiny_model_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    code, err = run_main(capsys, "colorize", bad, "-o", tmp_path / "o.png", "--model", tiny_model_path)
    assert code == 1 and err.startswith("tinct: error: ") and err.count("\n") == 1  # the input failed
    code, _ = run_main(capsys, "colorize", tmp_path / "nowhere.jpg", "-o", tmp_path / "o.png")
    assert code == 2  # no such input: the command line is wrong
    code, _ = run_main(capsys, "colorize", photo_dir / "p0.png", "-o", tmp_path / "o.png", "--method", "levin")
    assert code == 2  # levin without --hints
    code, _ = run_main(capsys, "colorize", photo_dir / "p0.png", "-o", tmp_path / "o.png", "--render-factor", "0")
    assert code == 2
    (photo_dir / "bad.jpg").write_text("not a photo")
    code, err = run_main(capsys, "colorize", photo_dir, "-o", tmp_path / "out", "--model", tiny_model_path)
    assert code == 1 and "6 colorized, 0 already done, 1 failed" in err
