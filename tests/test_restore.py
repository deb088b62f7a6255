"""Old-photo restoration: the degradation model, the network family, the flow, `tinct restore`, faded color."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import tinct
from tinct.color import rgb_to_lab
from tinct.restore import classical
from tinct.restore.color import color_spread, is_color_photo
from tinct.restore.degrade import (AGED_PRINTS, KINDS, LOCAL, MASK_THRESHOLD, apply_kind, config_from, degrade,
                                  fade_color, sepia, training_sample)
from tinct.restore.metrics import mask_scores, psnr_l

from .conftest import gradient_photo


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "tinct", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def clean_L(h=64, w=80, seed=0):
    return rgb_to_lab(gradient_photo(h, w, seed) / 255.0)[..., 0].astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_each_degradation_is_seeded_and_changes_the_photo(kind):
    L = clean_L()
    a = apply_kind(kind, L, np.random.default_rng(3))
    b = apply_kind(kind, L, np.random.default_rng(3))
    assert np.array_equal(a.L, b.L) and np.array_equal(a.mask, b.mask)
    assert a.L.shape == L.shape and a.L.dtype == np.float32 and 0 <= a.L.min() and a.L.max() <= 100
    assert np.abs(a.L - L).mean() > 0.05
    if kind in LOCAL:  # the mask is exactly where the damage visibly changed the photo
        assert a.mask.any()
        assert np.all(np.abs(a.L - L)[a.mask] > MASK_THRESHOLD)
        assert np.all(np.abs(a.L - L)[~a.mask] <= MASK_THRESHOLD + 1e-4)
    else:
        assert not a.mask.any()


def test_mix_is_seeded_and_damages():
    L = clean_L(96, 96)
    a, b = degrade(L, np.random.default_rng(1)), degrade(L, np.random.default_rng(1))
    assert np.array_equal(a.L, b.L)
    assert psnr_l(a.L, L) < 40


def test_the_later_kinds_leave_the_measured_mix_as_it_was():
    """Stains and craquelure (session 15) are off in the realistic mix and draw nothing from the generator then:
    a seed damages a photo as it did when bench/restore.py's figures were measured (sums of the damaged L and mask
    sizes from the code before them); with AGED_PRINTS they draw too, and the mix is another one."""
    L = clean_L(96, 96)
    for seed, (total, masked) in {0: (517859.239, 445), 1: (505097.21, 160), 2: (416470.273, 410)}.items():
        d = degrade(L, np.random.default_rng(seed))
        assert float(d.L.astype(np.float64).sum()) == pytest.approx(total, rel=1e-5)
        assert int(d.mask.sum()) == pytest.approx(masked, abs=3)
    # the restorer's single-kind crops: the mix's nine unless asked for more (the shipped network's recipe)
    lone = training_sample(L, np.random.default_rng(0), single=1.0, kinds=("craquelure",))
    assert lone.mask.any() and not np.array_equal(lone.L, L)
    aged = degrade(L, np.random.default_rng(0), AGED_PRINTS)
    assert not np.array_equal(aged.L, degrade(L, np.random.default_rng(0)).L)
    assert np.array_equal(aged.L, degrade(L, np.random.default_rng(0), AGED_PRINTS).L)


def test_sepia_print_is_not_color_but_faded_color_print_is():
    rgb = gradient_photo(96, 128, seed=2).astype(np.float32) / 255
    rng = np.random.default_rng(0)
    assert is_color_photo(rgb)
    assert is_color_photo(fade_color(rgb, rng, saturation=0.5))
    # one tint: a toned gray photo (tones kept below white: the sepia matrix clips bright colors, changing hue)
    assert not is_color_photo(sepia(rgb * 0.7, rng, strength=1.0, yellow=0.2))
    assert color_spread(np.repeat(rgb.mean(-1, keepdims=True), 3, -1)) < 1e-6


def test_mask_scores():
    t = np.zeros((4, 4), bool)
    t[0] = True
    p = np.zeros((4, 4), bool)
    p[0, :2] = True
    p[1, 0] = True
    s = mask_scores(p, t)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(0.5)


def test_classical_inpaint_fills_a_scratch():
    L = clean_L()
    scratched = L.copy()
    mask = np.zeros(L.shape, bool)
    mask[30:32, 5:70] = True
    scratched[mask] = 100
    assert psnr_l(classical.inpaint(scratched, mask), L) > psnr_l(scratched, L) + 10


def test_untrained_network_returns_its_input_and_a_clean_mask():
    """The design: the restored L is a correction on top of the input (a tone curve and a residual, both starting
    at zero), not a re-synthesis, so training starts from 'change nothing'."""
    from tinct.restore.network import RestoreConfig, RestoreNet
    torch.manual_seed(0)
    net = RestoreNet(RestoreConfig(base_channels=4, depth=2)).eval()
    L = torch.from_numpy(clean_L(32, 48))[None, None]
    with torch.no_grad():
        out = net(L)
    assert torch.allclose(out["L"], L, atol=1e-4)
    assert (torch.sigmoid(out["mask_logits"]) < 0.1).all()


def test_pixel_loss_is_l1_or_the_root_mean_square_error_and_names_its_column():
    """`--option pixel_loss=rmse`: the root of the batch's mean squared error on L (in units of 100) replaces the L1;
    the mask's terms are the same either way, and the metrics column is named after the loss."""
    from tinct.errors import TinctError
    from tinct.restore.network import RestoreConfig, RestoreNet
    torch.manual_seed(0)
    nets = {name: RestoreNet(RestoreConfig(base_channels=4, depth=2, pixel_loss=name)) for name in ("l1", "rmse")}
    nets["rmse"].load_state_dict(nets["l1"].state_dict())
    clean = torch.rand(2, 1, 16, 16) * 100
    target = torch.cat([clean, (torch.rand(2, 1, 16, 16) < 0.1).float()], 1)
    out = {"L": clean + torch.randn(2, 1, 16, 16) * 20, "mask_logits": torch.randn(2, 1, 16, 16)}
    l1, rmse = (nets[name].losses(out, target) for name in ("l1", "rmse"))
    err = (out["L"] - clean) / 100
    torch.testing.assert_close(l1["l1"], err.abs().mean())
    torch.testing.assert_close(rmse["rmse"], err.pow(2).mean().sqrt())
    assert float(rmse["rmse"]) > float(l1["l1"]) * 1.1  # not the same number under two names
    torch.testing.assert_close(rmse["loss"] - rmse["rmse"], l1["loss"] - l1["l1"])  # the mask terms
    assert nets["rmse"].loss_names[0] == "rmse" and nets["l1"].loss_names[0] == "l1"
    with pytest.raises(TinctError, match="unknown pixel_loss 'l2'; known: l1, rmse"):
        RestoreNet(RestoreConfig(pixel_loss="l2"))


def test_tone_loss_weighs_the_block_averaged_error_not_the_detail():
    """`--option tone_loss=W` adds W x the RMS of the error averaged over 8 px blocks: a shift of the tones counts
    in full, zero-mean noise within each block not at all; off by default (no column)."""
    from tinct.restore.network import TONE_BLOCK, RestoreConfig, RestoreNet
    net = RestoreNet(RestoreConfig(base_channels=4, depth=2, tone_loss=2.0))
    plain = RestoreNet(RestoreConfig(base_channels=4, depth=2))
    assert "tone_rmse" in net.loss_names and "tone_rmse" not in plain.loss_names
    clean = torch.rand(2, 1, 16, 16) * 100
    target = torch.cat([clean, torch.zeros(2, 1, 16, 16)], 1)
    logits = torch.full((2, 1, 16, 16), -5.0)
    shifted = net.losses({"L": clean + 10.0, "mask_logits": logits}, target)
    torch.testing.assert_close(shifted["tone_rmse"], torch.tensor(0.1))
    checker = torch.ones(TONE_BLOCK, TONE_BLOCK)
    checker[::2] = -1  # zero mean in every block
    noisy = net.losses({"L": clean + 10.0 * checker.repeat(2, 2), "mask_logits": logits}, target)
    assert float(noisy["tone_rmse"]) < 1e-5
    base = plain.losses({"L": clean + 10.0, "mask_logits": logits}, target)
    torch.testing.assert_close(shifted["loss"] - base["loss"], 2.0 * shifted["tone_rmse"])


def test_tone_stage_starts_as_the_identity_and_learns_to_undo_fading():
    """The tone stage (restore/tone.py) is fitted apart on many damaged photos: fitted on a few gradient photos
    faded at random, it brings back a faded photo it has not seen, and a network given it grows without change."""
    from tinct.restore.degrade import fade
    from tinct.restore.network import RestoreConfig, RestoreNet
    from tinct.restore.tone import ToneCurve, damaged_samples, fit_tone_curve
    torch.manual_seed(0)
    curve = ToneCurve()
    x = torch.from_numpy(clean_L(32, 40))[None, None] / 50 - 1
    assert torch.equal(curve(x), x)
    photos = np.stack([clean_L(32, 40, seed) for seed in range(24)])
    only_fade = config_from(fade=1.0)
    samples = damaged_samples(photos, np.random.default_rng(0), per_photo=8, pixels=256, clean=0.3, config=only_fade)
    assert samples[0].shape == (24 * 8, 35) and samples[1].shape == samples[2].shape == (24 * 8, 256)
    history = fit_tone_curve(curve, *samples, steps=400, batch=64, lr=3e-3)
    assert history[-1] < 0.6 * np.abs(samples[1] - samples[2]).mean()  # the identity's error
    truth = clean_L(32, 40, seed=99)
    faded = fade(truth, np.random.default_rng(1), contrast=0.6, black=20.0, white=95.0, gamma=1.0)
    with torch.no_grad():
        back = ((curve(torch.from_numpy(faded)[None, None] / 50 - 1) + 1) * 50)[0, 0].numpy()
    assert psnr_l(back, truth) > psnr_l(faded, truth) + 3
    net = RestoreNet(RestoreConfig(base_channels=4, depth=2, tone_stage=True)).eval()
    with torch.no_grad():
        assert torch.allclose(net(torch.from_numpy(truth)[None, None])["L"][0, 0], torch.from_numpy(truth), atol=1e-4)


def test_tone_curve_is_the_polynomial_where_it_rises_and_never_turns_down():
    """A degree-5 curve can turn down where training saw few pixels (it took scratch_d's white border from L 99 to
    74): applied, the curve is the polynomial wherever that rises fast enough, and elsewhere keeps rising."""
    from tinct.restore.tone import MIN_SLOPE, apply_curve, polynomial_curve
    x = torch.linspace(-1, 1, 2001).view(1, 1, 1, -1)
    rising = torch.tensor([[0.02, 0.1, -0.03, 0.02, -0.01, 0.005]])
    polynomial = polynomial_curve(x, rising)
    assert torch.diff(polynomial.flatten()).min() > MIN_SLOPE * 0.001  # this one rises everywhere
    assert torch.allclose(apply_curve(x, rising), polynomial, atol=1e-4)
    turning = torch.tensor([[0.0, 0.0, -0.2, -0.15, 0.0, 0.0]])  # down at the top, as the real prints' were
    polynomial = polynomial_curve(x, turning)
    assert torch.diff(polynomial.flatten()).min() < 0
    curve = apply_curve(x, turning).flatten()
    assert torch.diff(curve).min() >= MIN_SLOPE * 0.001 - 1e-6
    assert abs(float(curve[1000] - polynomial.flatten()[1000])) < 1e-6  # mid-gray is where it was
    top = polynomial.flatten()[1000:]
    assert float(curve[-1]) >= float(top.max()) > float(top[-1]) + 0.03  # the top is no longer darkened


def test_training_sample_mixes_clean_single_and_mixed_damage():
    L = clean_L(48, 48)
    rng = np.random.default_rng(0)
    samples = [training_sample(L, rng, clean=0.3, single=0.3) for _ in range(60)]
    untouched = sum(np.array_equal(d.L, L) and not d.mask.any() for d in samples)
    assert 8 <= untouched <= 30  # about 30 % clean (18 expected)
    assert all(d.L.shape == L.shape and d.L.dtype == np.float32 and d.mask.dtype == bool for d in samples)
    assert all(np.array_equal(d.L, L) for d in (training_sample(L, rng, clean=1.0) for _ in range(3)))
    a = training_sample(L, np.random.default_rng(5), clean=0.2, single=0.4)
    b = training_sample(L, np.random.default_rng(5), clean=0.2, single=0.4)
    assert np.array_equal(a.L, b.L) and np.array_equal(a.mask, b.mask)


def test_restore_family_trains_with_the_tinct_train_loop(photo_dir, tmp_path):
    from tinct.models import list_models
    from tinct.train import TrainConfig, Trainer
    assert "restore" in list_models("restore") and "restore" not in list_models()  # not a colorizer
    cfg = TrainConfig(model="restore", model_options={"base_channels": 4, "depth": 2}, data=[str(photo_dir)],
                      val=str(photo_dir), out=str(tmp_path / "run"), steps=2, size=32, batch=2, val_every=2,
                      checkpoint_every=1, cache_size=48, cache_dir=str(tmp_path / "cache"), workers=1, threads=1)
    trainer = Trainer(cfg)
    L1, t1, _ = trainer.batch(0)
    L2, t2, _ = trainer.batch(0)
    assert torch.equal(L1, L2) and torch.equal(t1, t2)  # a step's damage is a function of (seed, step): exact resume
    assert L1.shape == (2, 1, 32, 32) and t1.shape == (2, 2, 32, 32)
    trainer.run()
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert "val_mask_f1" in rows[0] and len(rows) == 3
    from tinct.restore.run import load_restorer, restore_luminance
    net = load_restorer(tmp_path / "run" / "model.safetensors")
    L = clean_L(50, 70)  # not a multiple of the stride: padded and cropped back
    out, mask = restore_luminance(L, net=net)
    assert out.shape == L.shape and mask.shape == L.shape and out.dtype == np.float32


def test_python_api_restores_arrays_and_keeps_size():
    out = tinct.restore(gradient_photo(40, 56))
    assert out.size == (56, 40) and out.mode == "RGB"
    gray = tinct.restore(np.asarray(Image.fromarray(gradient_photo(40, 56)).convert("L")), denoise=0)
    assert gray.size == (56, 40)


def test_cli_restore_folder_resumes_reports_bad_files_and_saves_masks(tmp_path):
    src = tmp_path / "scans"
    src.mkdir()
    L = clean_L(64, 80)
    d = degrade(L, np.random.default_rng(0))
    Image.fromarray(np.clip(d.L * 2.55, 0, 255).astype(np.uint8)).save(src / "old.png")
    (src / "broken.jpg").write_bytes(b"not a photo")
    out = tmp_path / "out"
    r = run_cli("restore", src, "-o", out, "--save-mask")
    assert r.returncode == 1
    assert "broken.jpg" in r.stderr and "Traceback" not in r.stderr
    assert (out / "old.png").exists() and (out / "old.mask.png").exists()
    assert Image.open(out / "old.png").size == (80, 64)
    assert not list(out.glob(".*part*"))
    r = run_cli("restore", src, "-o", out)
    assert "0 restored, 1 already done, 1 failed" in r.stderr


def test_cli_restore_bad_input_is_one_line_and_no_output(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    r = run_cli("restore", bad, "-o", tmp_path / "x.png")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "bad.png" in r.stderr  # input failed
    assert not (tmp_path / "x.png").exists()
    r = run_cli("restore", bad, "-o", tmp_path / "x.png", "--max-pixels", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr  # a usage error


def test_cli_restore_says_what_it_did_and_replaces_a_named_output_only_with_overwrite(tmp_path):
    """The colorize rules (issue 16): one line per output, a named existing output needs --overwrite."""
    src = tmp_path / "old.png"
    Image.fromarray(np.clip(clean_L(48, 64) * 2.55, 0, 255).astype(np.uint8)).save(src)
    dest = tmp_path / "fixed.png"
    r = run_cli("restore", src, "-o", dest)
    assert r.returncode == 0 and f"{src} -> {dest} (" in r.stderr
    before = dest.read_bytes()
    r = run_cli("restore", src, "-o", dest)
    assert r.returncode == 2 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert dest.read_bytes() == before
    r = run_cli("restore", src, "-o", dest, "--overwrite", "--quiet")
    assert r.returncode == 0 and r.stderr.strip() == ""


def test_colorize_restores_a_faded_color_print_instead_of_recoloring(tmp_path, tiny_model_path):
    rgb = gradient_photo(64, 80, seed=4).astype(np.float32) / 255
    faded = (fade_color(rgb, np.random.default_rng(0), saturation=0.5) * 255).round().astype(np.uint8)
    src = tmp_path / "faded.png"
    Image.fromarray(faded).save(src)
    r = run_cli("colorize", src, "-o", tmp_path / "kept.png", "--model", tiny_model_path)
    assert r.returncode == 0, r.stderr
    assert "already in color" in r.stderr
    kept = np.asarray(Image.open(tmp_path / "kept.png").convert("RGB"), np.float64) / 255
    truth_lab, kept_lab = rgb_to_lab(rgb.astype(np.float64)), rgb_to_lab(kept)
    faded_lab = rgb_to_lab(faded / 255.0)
    # its own colors, closer to the unfaded truth than the faded print was
    assert np.abs(kept_lab - truth_lab).mean() < np.abs(faded_lab - truth_lab).mean()
    r = run_cli("colorize", src, "-o", tmp_path / "recolored.png", "--model", tiny_model_path, "--recolor")
    assert r.returncode == 0 and "already in color" not in r.stderr
    recolored = np.asarray(Image.open(tmp_path / "recolored.png").convert("RGB"), np.float64) / 255
    # recolored: the input's lightness, new chroma from the (random) network
    assert np.abs(rgb_to_lab(recolored)[..., 0] - faded_lab[..., 0]).mean() < 1.0
