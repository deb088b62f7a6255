"""Guided and classical colorization: hints files, Levin et al., Reinhard / Welsh transfer,
Deep Colorization, the deep model's hint channels, and the CLI around them."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from .conftest import gradient_photo
from tinct.cli import main
from tinct.color import rgb_to_lab
from tinct.errors import TinctError
from tinct.guided.colorize import GuidedOptions, check_options, guided_ab
from tinct.guided.levin import LevinOptions, affinity_matrix, solve_levin
from tinct.guided.transfer import load_reference, match_statistics, reinhard_transfer, welsh_transfer
from tinct.hints import Hints, cell_average, hints_tensor, load_hints, save_hints_png


def textured_L(h=40, w=52, seed=0):
    """Luminance with texture everywhere (so a constant result is not trivial)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    return (40 + 15 * np.sin(x / 3.0) * np.cos(y / 4.0) + 5 * rng.random((h, w))).astype(np.float32)


def one_scribble(shape, y, x, ab):
    mask = np.zeros(shape, bool)
    mask[y, x] = True
    hab = np.zeros(shape + (2,), np.float32)
    hab[y, x] = ab
    return Hints(hab, mask)


def ab_of(hex_rgb):
    return rgb_to_lab(np.array(hex_rgb, float) / 255.0)[1:]


# ------------------------------------------------------------------ Levin ---
@pytest.mark.parametrize("direct_pixels", [100_000, 300])  # exact solve; and the coarse-to-fine cascade
def test_levin_one_scribble_fills_a_constant_color_region_exactly(direct_pixels):
    L = textured_L()
    ab = solve_levin(L, one_scribble(L.shape, 7, 11, (35.0, -20.0)), LevinOptions(direct_pixels=direct_pixels))
    assert ab.shape == L.shape + (2,) and ab.dtype == np.float32
    np.testing.assert_allclose(ab[..., 0], 35.0, atol=1e-3)
    np.testing.assert_allclose(ab[..., 1], -20.0, atol=1e-3)


@pytest.mark.parametrize("direct_pixels", [100_000, 300])
def test_levin_keeps_colors_apart_across_a_luminance_edge(direct_pixels):
    L = np.where(np.arange(60)[None, :] < 30, 25.0, 75.0) * np.ones((40, 1))
    L = (L + np.random.default_rng(1).normal(0, 0.5, L.shape)).astype(np.float32)
    mask = np.zeros(L.shape, bool)
    mask[18:22, 8:12] = mask[18:22, 48:52] = True
    hab = np.zeros(L.shape + (2,), np.float32)
    hab[18:22, 8:12] = (50, 30)
    hab[18:22, 48:52] = (-30, -40)
    ab = solve_levin(L, Hints(hab, mask), LevinOptions(direct_pixels=direct_pixels))
    left, right = ab[:, :28].reshape(-1, 2).mean(0), ab[:, 32:].reshape(-1, 2).mean(0)
    assert np.linalg.norm(left - (50, 30)) < 5 and np.linalg.norm(right - (-30, -40)) < 5
    np.testing.assert_array_equal(ab[mask], hab[mask])  # hints are kept exactly


def test_levin_rows_are_averages_and_hint_rows_identity():
    L = textured_L(12, 15)
    mask = np.zeros(L.shape, bool)
    mask[3, 4] = True
    A = affinity_matrix(L / 100, mask).toarray()
    r = 3 * 15 + 4
    np.testing.assert_allclose(np.delete(A.sum(1), r), 0, atol=1e-12, err_msg="I - W with row-stochastic W")
    assert A[r, r] == 1 and np.count_nonzero(A[r]) == 1
    corner = A[0]  # a corner pixel has 3 neighbours only
    assert np.count_nonzero(corner) == 4


def test_levin_without_hints_is_an_error():
    L = textured_L(8, 8)
    with pytest.raises(TinctError, match="at least one hint"):
        solve_levin(L, Hints(np.zeros((8, 8, 2), np.float32), np.zeros((8, 8), bool)))


# --------------------------------------------------------------- transfer ---
def test_match_statistics_gives_the_reference_mean_and_std_per_channel():
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, (30, 40, 3)) * np.array([1, 5, 0.2])
    out = match_statistics(x, [50, 10, -5], [20, 7, 3])
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), [50, 10, -5], atol=1e-3)
    np.testing.assert_allclose(out.reshape(-1, 3).std(0), [20, 7, 3], rtol=1e-4)


def test_reinhard_transfer_matches_the_reference_chroma_statistics():
    ref = rgb_to_lab(gradient_photo(50, 70, seed=3) / 255.0)
    L = textured_L(45, 60)
    ab = reinhard_transfer(L, ref)
    ref_ab = ref[..., 1:].reshape(-1, 2)
    np.testing.assert_allclose(ab.reshape(-1, 2).mean(0), ref_ab.mean(0), atol=1e-3)
    np.testing.assert_allclose(ab.reshape(-1, 2).std(0), ref_ab.std(0), rtol=1e-3)


def two_tone_reference():
    """Dark red on the left, bright blue on the right (as Lab)."""
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[:, :20] = (120, 20, 20)
    rgb[:, 20:] = (140, 190, 255)
    return rgb_to_lab(rgb / 255.0)


@pytest.mark.parametrize("method", [welsh_transfer, reinhard_transfer])
def test_transfer_gives_dark_pixels_the_dark_color_and_bright_pixels_the_bright_one(method):
    ref = two_tone_reference()
    L = np.full((30, 30), 30.0, np.float32)
    L[:, 15:] = 75.0
    ab = method(L, ref)
    red, blue = ref[0, 0, 1:], ref[0, -1, 1:]
    dark, bright = ab[:, :15].reshape(-1, 2).mean(0), ab[:, 15:].reshape(-1, 2).mean(0)
    assert np.linalg.norm(dark - red) < np.linalg.norm(dark - blue)
    assert np.linalg.norm(bright - blue) < np.linalg.norm(bright - red)
    if method is welsh_transfer:  # Welsh copies sampled colors: every output is one of the reference's
        assert min(np.linalg.norm(dark - red), np.linalg.norm(bright - blue)) < 1e-3


def test_gray_reference_is_refused(tmp_path):
    Image.fromarray(np.full((20, 20), 128, np.uint8)).save(tmp_path / "gray.png")
    with pytest.raises(TinctError, match="no color"):
        load_reference(tmp_path / "gray.png")


# ------------------------------------------------------------------ hints ---
def test_rgba_hints_roundtrip_and_cell_average(tmp_path):
    rgb = gradient_photo(24, 32)
    mask = np.zeros((24, 32), bool)
    mask[5, 6] = mask[5, 7] = mask[20, 30] = True
    save_hints_png(rgb, mask, tmp_path / "h.png")
    hints = load_hints(tmp_path / "h.png", (24, 32))
    np.testing.assert_array_equal(hints.mask, mask)
    np.testing.assert_allclose(hints.ab[mask], rgb_to_lab(rgb[mask] / 255.0)[:, 1:], atol=1e-4)
    ab, m = cell_average(hints, 12, 16)  # 2x2 cells: (5,6) and (5,7) share cell (2,3)
    assert m.sum() == 2 and m[2, 3] and m[10, 15]
    np.testing.assert_allclose(ab[2, 3], hints.ab[5, 6:8].mean(0), atol=1e-4)
    t = hints_tensor(hints, 12, 16)
    assert t.shape == (1, 3, 12, 16) and t[0, 2].sum() == 2


def test_json_hints_with_radius(tmp_path):
    f = tmp_path / "h.json"
    f.write_text(json.dumps([{"x": 10, "y": 5, "color": "#ff0000", "radius": 2}, {"x": 0, "y": 0, "color": "#00f"}]))
    hints = load_hints(f, (20, 30))
    assert hints.count == 13 + 1  # a radius-2 disc has 13 pixels
    np.testing.assert_allclose(hints.ab[5, 10], ab_of((255, 0, 0)), atol=1e-4)
    np.testing.assert_allclose(hints.ab[0, 0], ab_of((0, 0, 255)), atol=1e-4)


@pytest.mark.parametrize("content, message", [
    ('[{"x": 1, "y": 2, "color": "#ff0000"', "not valid JSON"),
    ('{"x": 1}', "must be a list"),
    ('[{"x": 1, "y": 2}]', "missing 'color'"),
    ('[{"x": 99, "y": 2, "color": "#ff0000"}]', "outside the photo"),
    ('[{"x": 1, "y": 2, "color": "red"}]', "not '#rrggbb'"),
    ('[{"x": 1.5, "y": 2, "color": "#ff0000"}]', "whole number"),
    ("[]", "no hint colors"),
])
def test_bad_json_hints_give_one_line_errors(tmp_path, content, message):
    f = tmp_path / "h.json"
    f.write_text(content)
    with pytest.raises(TinctError, match=message) as e:
        load_hints(f, (20, 30))
    assert "\n" not in str(e.value)


def test_hints_image_of_the_wrong_size_or_without_alpha_is_refused(tmp_path):
    Image.new("RGBA", (31, 20)).save(tmp_path / "wrong.png")
    with pytest.raises(TinctError, match=r"31x20 but the photo is 30x20"):
        load_hints(tmp_path / "wrong.png", (20, 30))
    Image.new("RGB", (30, 20)).save(tmp_path / "rgb.png")
    with pytest.raises(TinctError, match="no alpha channel"):
        load_hints(tmp_path / "rgb.png", (20, 30))
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(TinctError, match="not a hints file"):
        load_hints(tmp_path / "junk.png", (20, 30))


# ------------------------------------------------------- deep model hints ---
def test_default_model_moves_toward_hint_colors():
    from tinct.pipeline import predict_ab, working_size
    from tinct.weights import load_model
    model = load_model("default")
    L = rgb_to_lab(gradient_photo(64, 80, seed=1) / 255.0)[..., 0]
    mask = np.zeros(L.shape, bool)
    mask[12:44, 16:56] = True
    target = np.array([60.0, -40.0], np.float32)
    hab = np.zeros(L.shape + (2,), np.float32)
    hab[mask] = target
    h, w = working_size(*L.shape, 16, model.stride)
    assert (h, w) == L.shape  # so the hinted block maps to itself
    before = predict_ab(model, L)[0].permute(1, 2, 0).numpy()[mask]
    after = predict_ab(model, L, hints=hints_tensor(Hints(hab, mask), h, w))[0].permute(1, 2, 0).numpy()[mask]
    assert np.linalg.norm(after - target, axis=1).mean() < np.linalg.norm(before - target, axis=1).mean() - 1.0


def test_model_without_hint_channels_refuses_hints(tiny_model_path):
    from tinct.weights import load_model
    L = textured_L(32, 32)
    with pytest.raises(TinctError, match="does not take color points"):
        guided_ab(L, GuidedOptions(), load_model(tiny_model_path), hints=one_scribble(L.shape, 1, 1, (10, 10)))


# ------------------------------------------------------ Deep Colorization ---
def test_deep_colorization_shipped_weights_run():
    from tinct.guided.deep_colorization import WEIGHTS, deep_colorization_ab, joint_bilateral, load_net
    assert WEIGHTS.stat().st_size <= 3_000_000
    net = load_net()
    L = textured_L(70, 90)
    ab = deep_colorization_ab(net, L)
    assert ab.shape == (1, 2, 70, 90) and torch.isfinite(ab).all()
    # the refinement keeps a chroma step that sits on a luminance step
    Lg = np.where(np.arange(20)[None, :] < 10, 20.0, 80.0) * np.ones((10, 1))
    step = np.zeros((10, 20, 2), np.float32)
    step[:, 10:] = 40
    out = joint_bilateral(step, Lg.astype(np.float32), 5, 3.0, 6.0)
    assert np.abs(out - step).max() < 0.1


# -------------------------------------------------------------------- CLI ---
def test_cli_levin_with_json_hints(tmp_path):
    Image.fromarray(gradient_photo(40, 50)).convert("L").save(tmp_path / "in.png")
    (tmp_path / "h.json").write_text(json.dumps([{"x": 5, "y": 5, "color": "#c02020", "radius": 1}]))
    with pytest.raises(SystemExit) as e:
        main(["colorize", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--method", "levin",
              "--hints", str(tmp_path / "h.json")])
    assert e.value.code == 0
    out = rgb_to_lab(np.asarray(Image.open(tmp_path / "out.png").convert("RGB")) / 255.0)
    a, b = out[..., 1].mean(), out[..., 2].mean()
    assert a > 10 and b > 5  # the whole (connected) photo took the red


@pytest.mark.parametrize("args, message", [
    (["--hints", "{d}/bad.json"], "not valid JSON"),
    (["--hints", "{d}/small.png"], "but the photo is 50x40"),
    (["--method", "levin"], "needs --hints"),
    (["--method", "transfer"], "needs --reference"),
    (["--method", "welsh", "--reference", "{d}/in.png"], "no color"),
    (["--method", "transfer", "--reference", "{d}/ref.png", "--hints", "{d}/bad.json"], "takes no --hints"),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    Image.fromarray(gradient_photo(40, 50)).convert("L").save(tmp_path / "in.png")
    Image.fromarray(gradient_photo(30, 30)).save(tmp_path / "ref.png")
    Image.new("RGBA", (10, 10)).save(tmp_path / "small.png")
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(SystemExit) as e:
        main(["colorize", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
              *[a.format(d=tmp_path) for a in args]])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinct: error:") and message in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "in.png", "ref.png", "small.png"]


def test_check_options_refuses_hints_for_several_photos():
    from tinct.batch import Job
    from pathlib import Path
    jobs = [Job(Path("a.png"), Path("o/a.png")), Job(Path("b.png"), Path("o/b.png"))]
    with pytest.raises(TinctError, match="exactly one input"):
        check_options(GuidedOptions(method="levin", hints="h.png"), jobs)


# ---------------------------------------------------------------- palette ---
def test_palette_pulls_the_deep_model_toward_its_colors():
    from tinct.guided.palette import parse_palette, predict_ab_palette
    from tinct.pipeline import predict_ab
    from tinct.weights import load_model
    model = load_model("default")
    L = rgb_to_lab(gradient_photo(48, 64, seed=2) / 255.0)[..., 0]
    # a foliage green: inside the ab bins the model learned (pure #20c020 lies beyond them)
    green = parse_palette("#4a8a3a")
    np.testing.assert_allclose(green[0], ab_of((0x4A, 0x8A, 0x3A)), atol=1e-4)
    auto = predict_ab(model, L)[0].reshape(2, -1).T.numpy()
    pal = predict_ab_palette(model, L, green, 16)[0].reshape(2, -1).T.numpy()
    assert np.linalg.norm(pal - green, axis=1).mean() < np.linalg.norm(auto - green, axis=1).mean() - 5


def test_palette_keeps_the_color_points_as_the_plain_deep_model_does():
    """Points given with a palette are kept by the same step as without one (``pipeline.take_points``)."""
    from tinct.guided.palette import parse_palette, predict_ab_palette
    from tinct.weights import load_model
    model = load_model("default")
    L = rgb_to_lab(gradient_photo(48, 64, seed=2) / 255.0)[..., 0]
    hints = torch.zeros(1, 3, 48, 64)  # the working size of a 48x64 photo at render factor 16: its own size
    hints[0, :, 10, 20] = torch.tensor([40.0, 30.0, 1.0])
    ab = predict_ab_palette(model, L, parse_palette("#4a8a3a"), 16, hints=hints)
    assert ab.shape[-2:] == (48, 64)
    torch.testing.assert_close(ab[0, :, 10, 20], torch.tensor([40.0, 30.0]), atol=1e-3, rtol=0)


def test_palette_errors(tmp_path, tiny_model_path):
    from tinct.guided.palette import parse_palette, predict_ab_palette
    from tinct.weights import load_model
    with pytest.raises(TinctError, match="not '#rrggbb'"):
        parse_palette("#12345z,#ffffff")
    with pytest.raises(TinctError, match="classification model"):
        predict_ab_palette(load_model(tiny_model_path), textured_L(32, 32), parse_palette("#ff0000"), 16)
    with pytest.raises(TinctError, match="does not combine with --method"):
        check_options(GuidedOptions(method="levin", hints="h.json", palette="#ff0000"))


@pytest.mark.parametrize("args", [
    ["--hints", "{d}/h.png"],
    ["--hints", "{d}/h.png", "--palette", "#c02020,#2040c0"],
    ["--palette", "{d}/ref.png"],
    ["--method", "transfer", "--reference", "{d}/ref.png"],
    ["--method", "welsh", "--reference", "{d}/ref.png"],
    ["--method", "deep-colorization"],
])
def test_cli_guided_methods_write_a_photo_with_the_input_luminance(tmp_path, args):
    gray = np.asarray(Image.fromarray(gradient_photo(40, 50)).convert("L"))
    Image.fromarray(gray).save(tmp_path / "in.png")
    Image.fromarray(gradient_photo(30, 30, seed=4)).save(tmp_path / "ref.png")
    mask = np.zeros((40, 50), bool)
    mask[10:14, 10:30] = True
    save_hints_png(gradient_photo(40, 50), mask, tmp_path / "h.png")
    with pytest.raises(SystemExit) as e:
        main(["colorize", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
              *[a.format(d=tmp_path) for a in args]])
    assert e.value.code == 0
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert out.shape == (40, 50, 3)
    L_in = rgb_to_lab(np.repeat(gray[..., None], 3, -1) / 255.0)[..., 0]
    assert np.abs(rgb_to_lab(out / 255.0)[..., 0] - L_in).mean() < 1.0


@pytest.mark.parametrize("size", [(60, 80), (300, 320)])  # solved exactly / on a smaller grid and upsampled
def test_point_corrections_keep_the_point_stay_in_its_region_and_fade(size):
    """The deep model's points (``spread_point_corrections``): exact at the point, spread inside the point's
    region, stopped at a luminance edge, fading with distance; nothing changes without points."""
    from tinct.guided.levin import spread_point_corrections
    h, w = size
    L = np.full((h, w), 30.0, np.float32)
    L[:, w // 2:] = 70.0  # two regions, an edge between them
    ab = np.zeros((h, w, 2), np.float32)
    ab[..., 1] = 5.0  # the network's guess: a little yellow everywhere
    hint_ab = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), bool)
    y, x = h // 2, w // 8
    hint_ab[y, x] = (50.0, 20.0)
    mask[y, x] = True
    out = spread_point_corrections(L, ab, hint_ab, mask)
    np.testing.assert_allclose(out[y, x], (50.0, 20.0), atol=1e-3)
    near = out[y, x + w // 16, 0]
    far_same_side = out[y, w // 2 - 2, 0]
    across = out[y, w // 2 + 2, 0]
    assert near > 10 and near > far_same_side > 5 * max(across, 1e-3)  # spread, fading, stopped at the edge
    assert abs(out[0, -1, 1] - 5.0) < 0.5  # the other region keeps the network's color
    np.testing.assert_array_equal(spread_point_corrections(L, ab, hint_ab, np.zeros_like(mask)), ab)
