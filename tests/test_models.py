import numpy as np
import pytest
import torch

from tinct import bins
from tinct.errors import TinctError
from tinct.models import create_model, list_models


def test_registry_lists_foundation_models():
    assert {"cnn", "autoencoder", "unet"} <= set(list_models())


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("head", ["regression", "classification"])
def test_forward_contract(name, head):
    torch.manual_seed(0)
    kw = {"head": head}
    if head == "classification":
        kw["num_bins"] = 20
    model = create_model(name, **kw).eval()
    if head == "classification":
        model.set_bins(torch.randn(20, 2) * 30, torch.ones(20))
    s = model.stride
    L = torch.rand(2, 1, 2 * s * 2, 3 * s * 2) * 100
    with torch.no_grad():
        out = model(L)
    assert out["ab"].shape == (2, 2, L.shape[2], L.shape[3])
    assert out["ab"].abs().max() <= 110 + 1e-4
    assert torch.isfinite(out["ab"]).all()
    if head == "classification":
        assert out["logits"].shape[1] == 20


def test_hint_channels_change_the_output():
    torch.manual_seed(0)
    model = create_model("unet", base_channels=8, depth=2, hint_channels=3).eval()
    L = torch.rand(1, 1, 32, 32) * 100
    hints = torch.zeros(1, 3, 32, 32)
    hints[0, :, 10:14, 10:14] = torch.tensor([60.0, -40.0, 1.0])[:, None, None]
    with torch.no_grad():
        a = model(L)["ab"]
        b = model(L, hints)["ab"]
        c = model(L, torch.zeros(1, 3, 32, 32))["ab"]
    assert torch.equal(a, c)
    assert not torch.allclose(a, b)


def test_unet_self_attention_grows_as_the_identity_then_learns(tmp_path):
    """`--init FILE --option self_attention=true`: the grown U-Net colors exactly as the file did (gamma 0), on
    a non-square photo, and one training step moves the attention's gate and changes the colors."""
    from tinct.weights import load_model, save_model
    torch.manual_seed(0)
    base = create_model("unet", base_channels=8).eval()
    path = tmp_path / "unet.safetensors"
    save_model(base, path)
    grown = load_model(path, overrides={"self_attention": True}, grow=True)
    L = torch.rand(2, 1, 48, 80) * 100
    with torch.no_grad():
        torch.testing.assert_close(grown(L)["ab"], base(L)["ab"])
    grown.train()
    opt = torch.optim.Adam(grown.attention.parameters(), lr=1e-2)
    target = torch.full((2, 2, 48, 80), 30.0)
    (grown(L)["ab"] - target).abs().mean().backward()
    assert grown.attention.gamma.grad.abs().item() > 0
    opt.step()
    grown.eval()
    with torch.no_grad():
        assert not torch.allclose(grown(L)["ab"], base(L)["ab"])


def test_unet_semantic_skips_grow_as_the_identity_then_learn(tmp_path):
    """`--init FILE --option semantic_skips=true`: the semantic encoder's stride-2/4/8 maps join the decoder's
    skips through zero-initialised convs, so the grown U-Net colors exactly as the file did (on a size the two
    encoders round differently), and one step moves those convs and the colors."""
    from tinct.weights import load_model, save_model
    torch.manual_seed(0)
    base = create_model("unet", base_channels=8, semantic="efficientnet-lite0").eval()
    path = tmp_path / "unet.safetensors"
    save_model(base, path)
    grown = load_model(path, overrides={"semantic_skips": True}, grow=True)
    assert [conv.out_channels for conv in grown.semantic_skip] == [8, 16, 32]
    L = torch.rand(2, 1, 50, 78) * 100
    with torch.no_grad():
        torch.testing.assert_close(grown(L)["ab"], base(L)["ab"])
    grown.train()
    opt = torch.optim.Adam(grown.semantic_skip.parameters(), lr=1e-2)
    (grown(L)["ab"] - torch.full((2, 2, 50, 78), 30.0)).abs().mean().backward()
    assert all(conv.weight.grad.abs().sum() > 0 for conv in grown.semantic_skip)
    opt.step()
    grown.eval()
    with torch.no_grad():
        assert not torch.allclose(grown(L)["ab"], base(L)["ab"])
    with pytest.raises(TinctError, match="semantic_skips"):
        create_model("unet", semantic_skips=True)


def test_decoded_loss_adds_the_rebalanced_l1_of_the_decoded_colors():
    """`--option decoded_loss=W`: the classification loss plus W x the L1 (in units of 110) of the annealed mean
    the file decodes with, each pixel weighted by its true color's rarity; it trains the decoding's colors."""
    torch.manual_seed(0)
    centers, weights = torch.randn(20, 2) * 30, torch.rand(20) + 0.5
    plain = create_model("unet", base_channels=8, depth=2, head="classification", num_bins=20, temperature=0.4,
                         prior_correction=0.3)
    plain.set_bins(centers, weights)
    hybrid = create_model("unet", base_channels=8, depth=2, head="classification", num_bins=20, temperature=0.4,
                          prior_correction=0.3, decoded_loss=2.0)
    hybrid.set_bins(centers, weights)
    hybrid.load_state_dict(plain.state_dict())
    assert hybrid.loss_names == ("decoded",) and plain.loss_names == ()
    L, ab = torch.rand(2, 1, 32, 32) * 100, torch.randn(2, 2, 32, 32) * 25
    out = hybrid(L)
    a, b = plain.losses(out, ab), hybrid.losses(out, ab)
    decoded = hybrid.decode_logits(out["logits"])
    truth = torch.nn.functional.interpolate(ab, size=decoded.shape[-2:], mode="area")
    dist = ((truth[:, None] - centers[None, :, :, None, None]) ** 2).sum(2)  # nearest bin of each true color
    want = ((decoded - truth).abs().sum(1) / 110.0 * weights[dist.argmin(1)]).mean()
    torch.testing.assert_close(b["decoded"], want.detach())
    torch.testing.assert_close(b["loss"], a["loss"] + 2.0 * want)
    b["loss"].backward()
    assert hybrid.head.weight.grad.abs().sum() > 0


def test_auc_loss_is_one_minus_the_auc_that_evaluate_measures():
    """`--option auc_loss=W`: W x the decoded colors' Euclidean ab error clipped at 150 / 150, whose batch mean is
    1 - AuC / 100 as `metrics.auc` measures it on the same colors (up to its thresholds being whole numbers)."""
    from tinct.metrics import auc
    torch.manual_seed(0)
    centers, weights = torch.randn(20, 2) * 40, torch.rand(20) + 0.5
    kw = dict(base_channels=8, depth=2, head="classification", num_bins=20, temperature=0.4, prior_correction=0.3)
    plain, model = create_model("unet", **kw), create_model("unet", **kw, auc_loss=0.5)
    for m in (plain, model):
        m.set_bins(centers, weights)
    model.load_state_dict(plain.state_dict())
    assert model.loss_names == ("auc_loss",)
    L = torch.rand(2, 1, 32, 32) * 100
    ab = torch.randn(2, 2, 32, 32) * 40
    ab[0, :, :8] = 200.0  # errors beyond 150 count as 150, as AuC's last threshold does
    out = model(L)
    a, b = plain.losses(out, ab), model.losses(out, ab)
    decoded = model.decode_logits(out["logits"])
    truth = torch.nn.functional.interpolate(ab, size=decoded.shape[-2:], mode="area")
    err = (decoded - truth).norm(dim=1).detach().numpy()
    assert (err > 150).mean() > 0.05 and (err < 50).mean() > 0.2  # both ends of the clipping are exercised
    assert abs((1 - float(b["auc_loss"])) * 100 - auc(err)) < 0.7  # thresholds 0, 1, ..., 150 against the integral
    torch.testing.assert_close(b["loss"], a["loss"] + 0.5 * b["auc_loss"])
    b["loss"].backward()
    assert model.head.weight.grad.abs().sum() > 0
    for name in ("decoded_loss", "auc_loss"):  # a regression head has no decoded colors to weigh
        with pytest.raises(TinctError, match="classification head"):
            create_model("unet", base_channels=8, depth=2, **{name: 1.0})
        with pytest.raises(TinctError, match=f"{name} is a weight >= 0"):
            create_model("unet", **kw, **{name: -1.0})


def test_unknown_model_and_option_are_clear_errors():
    with pytest.raises(TinctError, match="unknown model"):
        create_model("nope")
    with pytest.raises(TinctError, match="no option"):
        create_model("unet", wings=2)


def test_soft_encoding_sums_to_one_and_favours_nearest():
    centers = torch.tensor(np.mgrid[-50:51:10, -50:51:10].reshape(2, -1).T, dtype=torch.float32)
    ab = torch.tensor([[[[3.0]], [[-21.0]]]])
    t = bins.soft_encode(ab, centers)
    assert torch.allclose(t.sum(1), torch.ones(1, 1, 1))
    assert (t > 0).sum() == bins.K_NEAREST
    assert centers[t[0, :, 0, 0].argmax()].tolist() == [0.0, -20.0]


def test_annealed_mean_at_t1_is_the_mean_and_low_t_the_mode():
    centers = torch.randn(7, 2) * 40
    logits = torch.randperm(28).float().view(1, 7, 2, 2) / 4  # distinct, gaps of >= 0.25
    p = torch.softmax(logits, 1)
    mean = torch.einsum("bqhw,qc->bchw", p, centers)
    assert torch.allclose(bins.annealed_mean(logits, centers, 1.0), mean, atol=1e-5)
    mode = centers[logits.argmax(1)].permute(0, 3, 1, 2)
    assert torch.allclose(bins.annealed_mean(logits, centers, 0.01), mode, atol=1e-3)


def test_rebalance_weights_have_expectation_one():
    rng = np.random.default_rng(0)
    hist = np.zeros((23, 23))
    hist[8:15, 8:15] = rng.random((7, 7)) * 100 + 1
    hist[11, 11] = 5000
    w = bins.rebalance_weights(hist)
    from scipy.ndimage import gaussian_filter
    a, b = np.nonzero(hist > 0)
    smooth = gaussian_filter(hist / hist.sum(), bins.SIGMA / bins.GRID)[a, b]
    smooth /= smooth.sum()
    assert abs((smooth * w).sum() - 1) < 1e-5
    assert w[np.argmax(hist[a, b])] == w.min()  # the commonest color weighs least
