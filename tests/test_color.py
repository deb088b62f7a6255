import numpy as np
import pytest
import torch
from skimage import color as skcolor

from tinct import color

EDGES = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
                  [0.5, 0.5, 0.5], [1e-4, 0, 0]], dtype=np.float64)


@pytest.fixture
def rgb():
    r = np.random.default_rng(1).random((40, 40, 3))
    r[0, :len(EDGES)] = EDGES
    return r


def test_numpy_lab_matches_skimage(rgb):
    assert np.abs(color.rgb_to_lab(rgb) - skcolor.rgb2lab(rgb)).max() < 1e-3
    lab = skcolor.rgb2lab(rgb)
    assert np.abs(color.lab_to_rgb(lab) - skcolor.lab2rgb(lab)).max() < 1e-3


def test_torch_lab_matches_skimage_and_round_trips(rgb):
    t = torch.tensor(rgb).permute(2, 0, 1)[None]
    lab = color.rgb_to_lab_t(t)
    assert (lab[0].permute(1, 2, 0).numpy() - skcolor.rgb2lab(rgb)).__abs__().max() < 1e-3
    assert (color.lab_to_rgb_t(lab) - t).abs().max() < 1e-4


def test_torch_lab_is_differentiable():
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    color.rgb_to_lab_t(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_out_of_gamut_gives_clipped_rgb_never_nan():
    bad = np.array([[100, 127, 127], [0, -128, 128], [50, 200, -200], [-10, 0, 0], [120, 0, 0]], float)
    out = color.lab_to_rgb(bad)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    out_t = color.lab_to_rgb_t(torch.tensor(bad).T[None, :, :, None])
    assert torch.isfinite(out_t).all()


def test_yuv_round_trip(rgb):
    assert np.abs(color.yuv_to_rgb(color.rgb_to_yuv(rgb)) - rgb).max() < 1e-5
    yuv = color.rgb_to_yuv(rgb)
    assert np.abs(yuv[..., 0] - (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])).max() < 1e-6
    t = torch.tensor(rgb).permute(2, 0, 1)[None]
    assert (color.yuv_to_rgb_t(color.rgb_to_yuv_t(t)) - t).abs().max() < 1e-6


def test_luminance_helpers_agree_with_lab(rgb):
    assert np.abs(color.rgb_to_luminance(rgb) - skcolor.rgb2lab(rgb)[..., 0]).max() < 1e-3
    g = np.linspace(0, 1, 11)
    assert np.abs(color.gray_to_luminance(g) - skcolor.rgb2lab(np.stack([g] * 3, -1))[..., 0]).max() < 1e-3


def test_gamut_clamp_keeps_luminance_and_hue():
    L = torch.full((1, 1, 3, 3), 50.0)
    ab = torch.full((1, 2, 3, 3), 100.0)
    ab_c = color.clamp_ab_to_gamut(L, ab)
    rgb = color.lab_to_rgb_t(torch.cat([L, ab_c], 1), clip=False)
    assert rgb.min() > -2e-3 and rgb.max() < 1 + 2e-3
    assert torch.allclose(color.rgb_to_lab_t(rgb.clamp(0, 1))[:, :1], L, atol=0.05)
    assert torch.allclose(ab_c[:, 0], ab_c[:, 1])  # hue kept: a == b as in the input
    inside = torch.full((1, 2, 3, 3), 5.0)
    assert torch.equal(color.clamp_ab_to_gamut(L, inside), inside)
