"""Every score in the README rests on these metrics: each is checked against values worked out by hand.

AuC (Zhang et al. 2016): the share of pixels whose ab error is within a threshold, averaged over the
151 thresholds 0, 1, ..., 150, in percent; an error equal to the threshold counts as within it.
"""
import math

import numpy as np
import pytest

from tinct import bins
from tinct.metrics import AUC_THRESHOLDS, ab_error, auc, colorfulness, mean_scores, psnr, rebalance_pixel_weights
from tinct.metrics import score_image, ssim


def lab_image(L, a, b, shape=(4, 6)) -> np.ndarray:
    out = np.empty(shape + (3,), np.float32)
    out[...] = (L, a, b)
    return out


def rgb_image(r, g, b, shape=(8, 8)) -> np.ndarray:
    out = np.empty(shape + (3,), np.uint8)
    out[...] = (r, g, b)
    return out


# ---------------------------------------------------------------------------------------- AuC ---
def test_thresholds_are_0_to_150_in_steps_of_1():
    assert len(AUC_THRESHOLDS) == 151 and AUC_THRESHOLDS[0] == 0 and AUC_THRESHOLDS[-1] == 150


def test_ab_error_is_the_euclidean_distance_in_ab_alone():
    err = ab_error(lab_image(50, 3, 4), lab_image(80, 0, 0))  # lightness differs: not counted
    np.testing.assert_allclose(err, 5.0)  # the 3-4-5 triangle


def test_auc_of_every_pixel_off_by_exactly_10():
    # within t for t = 10, 11, ..., 150: 141 of the 151 thresholds, for every pixel
    assert auc(np.full((5, 7), 10.0)) == pytest.approx(100 * 141 / 151)


def test_auc_of_an_error_just_above_and_just_below_a_threshold():
    assert auc(np.full(3, 9.5)) == pytest.approx(100 * 141 / 151)   # within from t = 10
    assert auc(np.full(3, 10.5)) == pytest.approx(100 * 140 / 151)  # within from t = 11


def test_auc_of_perfect_hopeless_and_half_right():
    assert auc(np.zeros((3, 3))) == pytest.approx(100.0)
    assert auc(np.full((3, 3), 150.5)) == 0.0
    assert auc(np.array([0.0, 200.0])) == pytest.approx(50.0)


def test_auc_of_errors_spread_evenly_is_half():
    # errors 0.5, 1.5, ..., 149.5: t/150 of them are within t, a straight line from 0 to 1 -> area 1/2
    assert auc(np.arange(150) + 0.5) == pytest.approx(50.0)


def test_weighted_auc_counts_each_pixel_by_its_weight():
    # a right pixel of weight 1 and a wrong one of weight 3: a quarter of the weight is right
    assert auc(np.array([0.0, 200.0]), np.array([1.0, 3.0])) == pytest.approx(25.0)


def test_rebalanced_auc_weights_pixels_by_the_inverse_prior_of_their_true_color():
    # the training prior: 3 parts gray (ab cell 0, 0), 1 part a saturated (60, 60). Both are single cells far
    # apart, so smoothing scales both by the same factor: gray pixels weigh 1/3, saturated ones 1.
    prior = np.zeros((23, 23))
    cell = lambda a, b: (int((a + bins.EDGE) / bins.GRID), int((b + bins.EDGE) / bins.GRID))  # noqa: E731
    prior[cell(0, 0)], prior[cell(60, 60)] = 3.0, 1.0
    true = np.concatenate([lab_image(50, 0, 0, (2, 4)), lab_image(50, 60, 60, (2, 4))])
    w = rebalance_pixel_weights(true, prior)
    np.testing.assert_allclose(w[:2] / w[2:], 1 / 3, rtol=1e-9)
    # gray pixels colorized right, saturated ones wrong: plain AuC 50 %, rebalanced (1/3) / (1/3 + 1) = 25 %
    err = np.concatenate([np.zeros((2, 4)), np.full((2, 4), 200.0)])
    assert auc(err) == pytest.approx(50.0)
    assert auc(err, w) == pytest.approx(25.0)
    # and the other way round: 75 %
    assert auc(err[::-1], w) == pytest.approx(75.0)


def test_a_uniform_prior_makes_rebalanced_auc_the_plain_auc():
    true = lab_image(50, 20, -30, (6, 6))
    true[:3] = (50, -40, 10)
    w = rebalance_pixel_weights(true, np.ones((23, 23)))
    err = np.full((6, 6), 10.0)
    assert auc(err, w) == pytest.approx(100 * 141 / 151)


# ------------------------------------------------------------------------------- PSNR and SSIM ---
def test_psnr_by_hand():
    a = rgb_image(100, 100, 100)
    assert psnr(rgb_image(101, 99, 101), a) == pytest.approx(20 * math.log10(255))  # MSE 1: 48.13 dB
    assert psnr(rgb_image(255, 255, 255), rgb_image(0, 0, 0)) == pytest.approx(0.0)   # MSE 255^2
    assert psnr(rgb_image(110, 90, 100), a) == pytest.approx(10 * math.log10(255 ** 2 / (200 / 3)))


def test_ssim_by_hand():
    c1 = (0.01 * 255) ** 2  # the luminance term's constant; constant images have no variance: that term is all
    assert ssim(rgb_image(100, 100, 100), rgb_image(50, 50, 50)) == pytest.approx(
        (2 * 100 * 50 + c1) / (100 ** 2 + 50 ** 2 + c1), rel=1e-6)
    x = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert ssim(x, x) == pytest.approx(1.0)


# -------------------------------------------------------------------------------- colorfulness ---
def test_colorfulness_by_hand():
    # Hasler & Suesstrunk: rg = R - G, yb = (R + G) / 2 - B; sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)
    assert colorfulness(rgb_image(128, 128, 128)) == 0.0
    assert colorfulness(rgb_image(200, 100, 50)) == pytest.approx(0.3 * math.hypot(100, 100))
    halves = np.concatenate([rgb_image(255, 0, 0, (4, 8)), rgb_image(0, 255, 0, (4, 8))])
    # rg is +-255 (mean 0, std 255); yb is 127.5 everywhere (mean 127.5, std 0)
    assert colorfulness(halves) == pytest.approx(255 + 0.3 * 127.5)


# ------------------------------------------------------------------------------- all together ---
def test_score_image_by_hand():
    true_lab = lab_image(50, 0, 0, (8, 8))
    pred_lab = lab_image(52, 6, 8, (8, 8))  # ab off by 10 everywhere, L by 2
    s = score_image(pred_lab, true_lab, rgb_image(101, 99, 101), rgb_image(100, 100, 100), true_lab[..., 0], None)
    assert s["auc"] == pytest.approx(100 * 141 / 151)
    assert s["luminance_drift"] == pytest.approx(2.0)
    assert s["mae"] == pytest.approx(1.0) and s["rmse"] == pytest.approx(1.0)
    assert s["psnr"] == pytest.approx(20 * math.log10(255))
    assert math.isnan(s["auc_rebal"])  # no prior: no rebalanced score, and mean_scores skips it
    assert mean_scores([s, {**s, "auc": 0.0}])["auc"] == pytest.approx(50 * 141 / 151)
