"""The model zoo (issue 3): every family trains through the CLI and colorizes with its own file; the GAN math."""
import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from tinct import bins
from tinct.color import rgb_to_lab
from tinct.errors import TinctError
from tinct.gan_losses import GAN_LOSSES, critic_loss, generator_loss, gradient_penalty
from tinct.models import create_model, list_models
from tinct.models.adversarial import GAN_SNAPSHOTS, Plan, corrupt_colors
from tinct.models.backbones import ResNetBackbone, XceptionBackbone, load_backbone_state
from tinct.models.critics import PatchGAN
from tinct.sampling import mean_pairwise_distance
from tinct.train import TrainConfig, Trainer, train
from tinct.weights import load_model

from .conftest import cli, gradient_photo

ZOO = ["cnn", "autoencoder", "unet", "encoder-decoder", "classifier", "pix2pix", "dcgan"]
# small widths so seven trainings stay fast on a CPU; the architectures are the real ones
SMALL = {
    "cnn": ["width=0.1"], "autoencoder": ["base_channels=8"], "unet": ["base_channels=8", "depth=2"],
    "encoder-decoder": ["backbone_width=0.125", "decoder_channels=8"], "classifier": ["width=0.1"],
    "pix2pix": ["base_channels=8", "depth=3", "critic_channels=8"],
    "dcgan": ["base_channels=8", "depth=3", "critic_channels=8"],
}


def train_cli(photo_dir, out, model, *extra):
    opts = [x for o in SMALL.get(model, []) for x in ("--option", o)]
    return cli("train", "--model", model, "--data", photo_dir, "--out", out, "--steps", 3, "--size", 64,
               "--batch", 2, *opts, *extra)


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """`tinct train` caches decoded photos in TINCT_CACHE: keep the tests' out of the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINCT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo") / "photos"
    d.mkdir()
    for i in range(5):
        Image.fromarray(gradient_photo(72, 80, seed=i)).save(d / f"p{i}.png")
    return d


def test_every_family_is_listed(capsys):
    assert cli("models") == 0
    assert set(ZOO) <= set(capsys.readouterr().out.split())


@pytest.fixture(scope="module")
def trained(zoo_dir, tmp_path_factory):
    """Run folder of each family trained 3 steps at 64 px through the CLI (trained once, on first use)."""
    runs = {}

    def get(model):
        if model not in runs:
            run = tmp_path_factory.mktemp("runs") / model
            assert train_cli(zoo_dir, run, model) == 0
            runs[model] = run
        return runs[model]
    return get


@pytest.mark.parametrize("model", ZOO)
def test_family_trains_via_cli_and_colorizes_with_its_own_file(model, zoo_dir, trained, tmp_path):
    run = trained(model)
    net = load_model(run / "model.safetensors")
    assert net.name == model and net.meta["steps"] == "3"
    out = tmp_path / "color.png"
    # --recolor: p0 is a color photo, which colorize would otherwise restore rather than recolor (tinct restore)
    assert cli("colorize", zoo_dir / "p0.png", "-o", out, "--model", run / "model.safetensors", "--recolor") == 0
    rgb = np.asarray(Image.open(out).convert("RGB"))
    assert rgb.shape == (72, 80, 3)
    gray_L = rgb_to_lab(np.asarray(Image.open(zoo_dir / "p0.png").convert("RGB")) / 255.0)[..., 0]
    assert np.abs(rgb_to_lab(rgb / 255.0)[..., 0] - gray_L).mean() < 1.5  # the photo's own luminance kept
    if model in ("pix2pix", "dcgan"):
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        assert [r["phase"] for r in rows] == ["standard"] * 3
        assert all(float(r["d_loss"]) == float(r["d_loss"]) and r["g_adv"] for r in rows)


def test_classifier_stores_bins_from_the_training_data(zoo_dir, trained, tmp_path):
    run = trained("classifier")
    net = load_model(run / "model.safetensors")
    hist = np.asarray(json.loads(net.meta["ab_hist"]))
    centers, prior = bins.bins_from_histogram(hist)
    assert net.config.head == "classification" and net.config.num_bins == len(centers)
    assert torch.allclose(net.bin_centers, torch.from_numpy(centers))
    # rebalancing weights stored with the model have expectation 1 under the smoothed training prior
    from scipy.ndimage import gaussian_filter
    a, b = np.nonzero(hist > 0)
    smooth = gaussian_filter(hist / hist.sum(), bins.SIGMA / bins.GRID)[a, b]
    assert abs(float((smooth / smooth.sum() * net.bin_weights.numpy()).sum()) - 1) < 1e-4
    # --temperature changes the decoding: T=1 is the plain mean, lower T is closer to the mode
    outs = {}
    for t in (1.0, 0.05):
        outs[t] = tmp_path / f"t{t}.png"
        assert cli("colorize", zoo_dir / "p1.png", "-o", outs[t], "--model", run, "--temperature", t, "--recolor") == 0
    assert not np.array_equal(np.asarray(Image.open(outs[1.0])), np.asarray(Image.open(outs[0.05])))


def test_xception_backbone_and_backbone_weights(zoo_dir, tmp_path):
    # a torchvision/timm-style resnet state dict (same names: conv1, bn1, layerN.M..., fc) with RGB input
    torch.manual_seed(1)
    tv = ResNetBackbone(3, width=0.125).state_dict()
    tv["fc.weight"], tv["fc.bias"] = torch.randn(10, 64), torch.randn(10)
    path = tmp_path / "resnet.safetensors"
    save_file({k: v.contiguous() for k, v in tv.items()}, str(path))
    net = create_model("encoder-decoder", backbone_width=0.125, decoder_channels=8, hint_channels=3)
    loaded, skipped = net.load_backbone(path)
    assert skipped == 2 and loaded == len(tv) - 2  # only the classifier's fc is left out
    own = net.backbone.state_dict()
    assert torch.equal(own["layer3.1.conv2.weight"], tv["layer3.1.conv2.weight"])
    assert torch.allclose(own["conv1.weight"][:, 0], tv["conv1.weight"].sum(1))  # RGB kernels folded onto L
    assert own["conv1.weight"][:, 1:].abs().max() == 0  # hint channels start silent
    bad = tmp_path / "bad.safetensors"
    save_file({"nothing.here": torch.zeros(3)}, str(bad))
    with pytest.raises(TinctError, match="no tensor matches"):
        net.load_backbone(bad)
    # through the CLI: the xception variant, from a timm-style xception state dict with RGB input
    xc = XceptionBackbone(3, width=0.125).state_dict()
    xpath = tmp_path / "xception.safetensors"
    save_file({k: v.contiguous() for k, v in xc.items()}, str(xpath))
    assert train_cli(zoo_dir, tmp_path / "x", "encoder-decoder", "--option", "backbone=xception",
                     "--backbone-weights", xpath) == 0
    assert load_model(tmp_path / "x").config.backbone == "xception"


def test_resnet_names_and_shapes_are_torchvision_resnet18():
    own = {k: tuple(v.shape) for k, v in ResNetBackbone(3).state_dict().items()}
    # a few of torchvision.models.resnet18().state_dict(), written out so torchvision stays optional
    for name, shape in {"conv1.weight": (64, 3, 7, 7), "bn1.running_var": (64,),
                        "layer1.1.conv2.weight": (64, 64, 3, 3), "layer2.0.downsample.0.weight": (128, 64, 1, 1),
                        "layer3.0.downsample.1.weight": (256,), "layer4.1.bn2.bias": (512,)}.items():
        assert own[name] == shape, name
    assert len(own) == 122 - 2  # resnet18 has 122 entries, fc.weight and fc.bias being the only others
    # load_backbone_state with the same names loads everything
    state = ResNetBackbone(3).state_dict()
    assert len(load_backbone_state(ResNetBackbone(1), state)[0]) == len(state)


def test_nogan_schedule_runs_with_snapshots(zoo_dir, tmp_path):
    run = tmp_path / "ng"
    assert cli("train", "--model", "pix2pix", "--schedule", "nogan", "--data", zoo_dir, "--out", run, "--steps", 8,
               "--size", 64, "--batch", 2, "--gan-loss", "hinge", "--option", "self_attention=true",
               "--option", "spectral_norm=true", *[x for o in SMALL["pix2pix"] for x in ("--option", o)]) == 0
    phases = [r["phase"] for r in csv.DictReader(open(run / "metrics.csv"))]
    assert phases == ["critic-warmup", "generator", "generator", "generator", "generator", "critic", "critic", "gan"]
    assert (run / "snapshots" / "step_000008.safetensors").exists()
    net = load_model(run / "model.safetensors")
    assert net.config.spectral_norm and net.config.self_attention
    assert cli("colorize", zoo_dir / "p2.png", "-o", tmp_path / "c.png", "--model", run) == 0


def test_nogan_needs_a_gan_model(zoo_dir, tmp_path, capsys):
    assert cli("train", "--model", "unet", "--schedule", "nogan", "--data", zoo_dir, "--out", tmp_path / "u",
               "--steps", 3) == 2
    assert "needs a GAN model" in capsys.readouterr().err


def test_samples_write_k_different_colorizations(zoo_dir, tmp_path, capsys):
    torch.manual_seed(0)
    net = create_model("dcgan", base_channels=8, depth=3, critic_channels=8)
    from tinct.weights import save_model
    save_model(net.eval(), tmp_path / "dcgan.safetensors")
    out = tmp_path / "out.png"
    assert cli("colorize", zoo_dir / "p3.png", "-o", out, "--model", tmp_path / "dcgan.safetensors",
               "--samples", 3) == 0
    files = [tmp_path / f"out_{k}.png" for k in range(3)]
    assert all(f.exists() for f in files) and not out.exists()
    imgs = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    assert not np.array_equal(imgs[0], imgs[1]) and not np.array_equal(imgs[1], imgs[2])
    abs_ = [torch.from_numpy(rgb_to_lab(im / 255.0)[..., 1:]).permute(2, 0, 1)[None] for im in imgs]
    assert mean_pairwise_distance(abs_) > 0
    assert cli("colorize", zoo_dir / "p3.png", "-o", tmp_path / "u.png", "--samples", 2) == 2  # default: no noise
    assert "--samples needs a model with noise" in capsys.readouterr().err


def test_gan_training_resumes_exactly_with_both_optimizers(zoo_dir, tmp_path):
    def cfg(out, **kw):
        return TrainConfig(model="dcgan", model_options={"base_channels": 8, "depth": 3, "critic_channels": 8},
                           data=[str(zoo_dir)], out=str(out), steps=8, size=32, batch=2, lr=3e-3, warmup=1,
                           val_every=1000, checkpoint_every=3, val_images=2, cache_size=48, min_colorfulness=1.0,
                           workers=1, cache_dir=str(tmp_path / "cache"), schedule="nogan", **kw)
    train(cfg(tmp_path / "a"))
    Trainer(cfg(tmp_path / "b")).run(stop_at=7)  # killed after step 7: last checkpoint at 6 (critic phase)
    train(cfg(tmp_path / "b", resume=True))

    def tensors(p):
        with safe_open(str(p), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    a, b = tensors(tmp_path / "a" / "checkpoint.safetensors"), tensors(tmp_path / "b" / "checkpoint.safetensors")
    assert any(k.startswith("optim.critic.") for k in a) and any(k.startswith("optim.generator.") for k in a)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------- the math ---
def test_patchgan_receptive_field_is_70():
    assert PatchGAN().receptive_field == 70
    # and measured: the input pixels one output score depends on (no norm layers: spectral norm instead)
    torch.manual_seed(0)
    d = PatchGAN(channels=8, spectral=True).eval()
    x = torch.randn(1, 3, 160, 160, requires_grad=True)
    y = d(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)))
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2)))
    assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_gan_losses_reward_the_right_side(kind):
    # scores a perfect critic gives real and fake (LSGAN regresses to 1 and 0; hinge's margin is 1)
    real_v, fake_v = {"vanilla": (3.0, -3.0), "lsgan": (1.0, 0.0), "hinge": (1.0, -1.0), "wgan-gp": (3.0, -3.0)}[kind]
    real, fake, unsure = (torch.full((4, 1, 3, 3), v) for v in (real_v, fake_v, 0.5))
    assert critic_loss(kind, real, fake) < critic_loss(kind, unsure, unsure)  # a critic that tells them apart
    assert generator_loss(kind, real) < generator_loss(kind, fake)            # a generator that fools it


def test_gradient_penalty_is_zero_for_a_1_lipschitz_critic():
    w = torch.randn(3 * 4 * 4)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    unit = gradient_penalty(lambda x: x.flatten(1) @ (w / w.norm()), real, fake)
    double = gradient_penalty(lambda x: x.flatten(1) @ (2 * w / w.norm()), real, fake)
    assert float(unit) == pytest.approx(0, abs=1e-10) and float(double) == pytest.approx(1, abs=1e-5)


def test_nogan_plan_phases_and_snapshots():
    plan = Plan("nogan", 1000)
    lengths = {name: end - start for name, start, end in plan.phases}
    assert lengths == {"critic-warmup": 100, "generator": 500, "critic": 250, "gan": 150}
    assert sum(plan.snapshot_due(s) for s in range(1, 1001)) == GAN_SNAPSHOTS
    assert not any(plan.snapshot_due(s) for s in range(1, 851))
    for total in range(4, 12):  # short runs still walk every phase
        assert all(end > start for _, start, end in Plan("nogan", total).phases)
    assert {Plan("standard", 10).phase(s) for s in range(10)} == {"standard"}


def test_critic_warmup_fakes_are_wrong_colors():
    g = torch.Generator().manual_seed(0)
    ab = torch.randn(16, 2, 8, 8) * 30
    fake = corrupt_colors(ab, g)
    assert fake.shape == ab.shape
    assert ((fake - ab).abs().mean(dim=(1, 2, 3)) > 1).all()  # every photo changed


def test_dcgan_noise_reaches_the_output_and_is_repeatable():
    torch.manual_seed(0)
    net = create_model("dcgan", base_channels=8, depth=3).eval()
    L = torch.rand(1, 1, 32, 32) * 100
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        a, b = net(L)["ab"], net(L)["ab"]
        c = net(L, seed=1)["ab"]
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.equal(net(L, seed=0)["ab"], a)  # the seed is per call: sampling leaves the model as it was
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_new_families_are_registered():
    assert set(ZOO) <= set(list_models())
