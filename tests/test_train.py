import csv
import json
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tinct.checkpoint import read_checkpoint, restore_optimizers
from tinct.cli import main
from tinct.ema import WeightAverage, ema_decay, lerp_weights
from tinct.errors import TinctError
from tinct.models import registry
from tinct.models.unet import UNet
from tinct.train import TrainConfig, Trainer, train
from tinct.weights import load_model

from .conftest import cli


def cfg(photo_dir, out, **kw):
    base = dict(model="unet", model_options={"base_channels": 8, "depth": 2}, data=[str(photo_dir)],
                out=str(out), steps=6, size=32, batch=4, lr=3e-3, warmup=1, val_every=3, checkpoint_every=3,
                val_images=4, cache_size=48, min_colorfulness=1.0, workers=1, cache_dir=str(out) + "_cache")
    base.update(kw)
    return TrainConfig(**base)


def weights(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_tiny_training_lowers_the_loss(photo_dir, tmp_path):
    trainer = Trainer(cfg(photo_dir, tmp_path / "run", steps=40, val_every=1000, augment_luminance=False))
    trainer.run()
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    losses = [float(r["loss"]) for r in rows]
    assert np.mean(losses[-8:]) < np.mean(losses[:8])
    for f in ["model.safetensors", "checkpoint.safetensors", "curves.png", "val_grid.png"]:
        assert (tmp_path / "run" / f).exists(), f
    model = load_model(tmp_path / "run" / "model.safetensors")
    assert model.meta["steps"] == "40"


def test_resume_equals_uninterrupted_run(photo_dir, tmp_path):
    train(cfg(photo_dir, tmp_path / "straight"))
    interrupted = Trainer(cfg(photo_dir, tmp_path / "split"))
    interrupted.run(stop_at=4)  # killed after step 4: the last checkpoint is step 3
    train(cfg(photo_dir, tmp_path / "split", resume=True))
    a, b = weights(tmp_path / "straight" / "model.safetensors"), weights(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = list(csv.DictReader(open(tmp_path / "split" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))


def test_weight_average_moves_toward_the_weights_by_one_minus_decay():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.75)
    old = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(5, 3))  # moves the batch-norm statistics and counts a batch
    average.update(model, step=10_000)  # late in a run: the full decay
    for k, new in model.state_dict().items():
        want = new if k.endswith("num_batches_tracked") else 0.75 * old[k] + 0.25 * new
        assert torch.allclose(average.state_dict()[k], want, atol=1e-6), k
    assert not any(p.requires_grad for p in average.module.parameters())
    assert ema_decay(0.75, 0) == pytest.approx(0.1)  # early steps: the average follows the weights closely
    with pytest.raises(ValueError, match="between 0 and 1"):
        WeightAverage(model, decay=1.0)


def test_lerp_weights_averages_two_networks_and_copies_counts():
    """The model soup behind the default (scripts/ship_default.py --average-with): (1 - w) a + w b."""
    a = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    b = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    b(torch.randn(4, 3))  # b's batch-norm statistics and batch count move
    old_a, old_b = ({k: v.clone() for k, v in m.state_dict().items()} for m in (a, b))
    lerp_weights(a, b, 0.4)
    for k, got in a.state_dict().items():
        want = old_b[k] if k.endswith("num_batches_tracked") else 0.6 * old_a[k] + 0.4 * old_b[k]
        assert torch.allclose(got, want, atol=1e-6), k
    assert not torch.allclose(old_a["0.weight"], a.state_dict()["0.weight"])


def test_ema_run_saves_the_average_and_resumes_exactly(photo_dir, tmp_path, capsys):
    """--ema: model.safetensors is the average (kept in the checkpoint as ema.*, the raw weights as model.*),
    and a run killed and resumed ends with the same average as an uninterrupted one."""
    train(cfg(photo_dir, tmp_path / "straight", ema=0.9))
    Trainer(cfg(photo_dir, tmp_path / "split", ema=0.9)).run(stop_at=4)  # the last checkpoint is step 3
    train(cfg(photo_dir, tmp_path / "split", ema=0.9, resume=True))
    a, b = weights(tmp_path / "straight" / "model.safetensors"), weights(tmp_path / "split" / "model.safetensors")
    ckpt = weights(tmp_path / "straight" / "checkpoint.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
        assert torch.equal(a[k], ckpt[f"ema.{k}"].to(a[k].dtype)), k
    assert any(not torch.equal(ckpt[f"ema.{k}"], ckpt[f"model.{k}"]) for k in a)  # the average is not the last step
    # the command's flag
    out = tmp_path / "cli"
    assert cli("train", "--model", "unet", "--option", "base_channels=8", "--option", "depth=2", "--data", photo_dir,
               "--out", out, "--steps", "1", "--size", "32", "--batch", "4", "--ema", "0.99") == 0
    with safe_open(str(out / "checkpoint.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["train_config"])["ema"] == 0.99 and any(k.startswith("ema.") for k in f.keys())
    capsys.readouterr()
    assert cli("train", "--data", photo_dir, "--out", tmp_path / "bad", "--steps", "1", "--ema", "1") == 2
    assert "--ema" in capsys.readouterr().err


def test_classification_head_with_hints_trains(photo_dir, tmp_path):
    out = tmp_path / "cls"
    train(cfg(photo_dir, out, steps=3, model_options={"base_channels": 8, "depth": 2, "head": "classification",
                                                       "hint_channels": 3}))
    model = load_model(out / "model.safetensors")
    assert model.config.num_bins == model.bin_centers.shape[0] > 0
    assert model.config.hint_channels == 3


def test_a_short_run_reaches_its_learning_rate(photo_dir, tmp_path):
    """--warmup 200 on a 10-step run: the warm-up is cut to a fifth of the run, so the peak lr is reached."""
    trainer = Trainer(cfg(photo_dir, tmp_path / "short", steps=10, warmup=200, val_every=1000))
    assert trainer.warmup == 2
    trainer.run()
    lrs = [float(r["lr"]) for r in csv.DictReader(open(tmp_path / "short" / "metrics.csv"))]
    assert lrs[0] < lrs[1] and max(lrs) == pytest.approx(3e-3)


def test_training_on_the_cached_memory_map_warns_nothing(photo_dir, tmp_path, monkeypatch):
    """A rerun reads the photo cache as a read-only memory map: torch is handed writable copies only, and the
    whole run (batches, validation, curves, model file) raises no warning at all."""
    cache = str(tmp_path / "cache")
    train(cfg(photo_dir, tmp_path / "first", steps=1, cache_dir=cache))  # decodes the photos into the cache
    writable = []
    from_numpy = torch.from_numpy

    def checked_from_numpy(a):
        writable.append(a.flags.writeable)
        return from_numpy(a)

    monkeypatch.setattr(torch, "from_numpy", checked_from_numpy)
    trainer = Trainer(cfg(photo_dir, tmp_path / "second", steps=4, val_every=2, cache_dir=cache))
    assert isinstance(trainer.train_data.images, np.memmap) and not trainer.train_data.images.flags.writeable
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.run()
    assert writable and all(writable)
    assert [f"{w.filename}:{w.lineno}: {w.message}" for w in caught] == []


def test_checkpoint_keeps_its_format(photo_dir, tmp_path):
    """The keys and metadata runs in progress were written with: model.*, optim.{i}.*, and the header."""
    trainer = Trainer(cfg(photo_dir, tmp_path / "run", steps=3))
    trainer.run()
    path = tmp_path / "run" / "checkpoint.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta, keys = f.metadata(), set(f.keys())
    assert set(meta) == {"tinct_format", "model", "config", "step", "train_config"}
    assert meta["model"] == "unet" and meta["step"] == "3" and json.loads(meta["train_config"])["steps"] == 3
    params = [p for g in trainer.optims[""].param_groups for p in g["params"]]
    want = {f"model.{k}" for k in trainer.model.state_dict()}
    want |= {f"optim.{i}.{part}" for i in range(len(params)) for part in ("exp_avg", "exp_avg_sq", "step")}
    assert keys == want
    model, step, flat = read_checkpoint(path)  # and reads back into the same state
    optims = model.optimizers(trainer.cfg, trainer.total_steps)
    restore_optimizers(optims, flat)
    assert step == 3 and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                trainer.model.state_dict().values()))
    for p, q in zip(params, [p for g in optims[""].param_groups for p in g["params"]]):
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(trainer.optims[""].state[p][k].cpu(), optims[""].state[q][k])


class Scribe(UNet):
    """A family with its own optimizer and update step, as a GAN has: the trainer must need nothing else."""
    loss_names = ("double",)

    def optimizers(self, cfg, total_steps):
        return {"own": torch.optim.Adam(self.parameter_groups(), lr=cfg.lr, betas=(0.5, 0.9))}

    def train_step(self, batch, step, optimizers, compute_losses=None):
        self.steps_seen.append(step)
        losses = super().train_step(batch, step, optimizers, compute_losses)
        return {**losses, "double": 2 * losses["loss"]}

    def snapshot_due(self, done):
        return done == 2


@pytest.fixture
def scribe_family():
    registry.register("scribe")(Scribe)
    Scribe.steps_seen = []
    yield "scribe"
    registry._REGISTRY.pop("scribe")


def test_the_trainer_runs_any_family_through_its_own_protocol(photo_dir, tmp_path, scribe_family):
    out = tmp_path / "scribe"
    train(cfg(photo_dir, out, model=scribe_family, steps=4, checkpoint_every=2))
    assert Scribe.steps_seen == [0, 1, 2, 3]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [float(r["double"]) for r in rows] == pytest.approx([2 * float(r["loss"]) for r in rows], rel=1e-5)
    assert (out / "snapshots" / "step_000002.safetensors").exists()
    with safe_open(str(out / "checkpoint.safetensors"), framework="pt") as f:
        optim_keys = {k for k in f.keys() if k.startswith("optim.")}
    assert optim_keys and all(k.startswith("optim.own.") for k in optim_keys)


def test_init_applies_options_and_refuses_conflicts(photo_dir, tmp_path, capsys):
    train(cfg(photo_dir, tmp_path / "base", steps=2))
    base = tmp_path / "base" / "model.safetensors"
    kw = dict(init=str(base), steps=2)
    with pytest.raises(TinctError, match="--model cnn conflicts with --init"):
        Trainer(cfg(photo_dir, tmp_path / "a", model="cnn", **kw))
    with pytest.raises(TinctError, match="--backbone-weights"):
        Trainer(cfg(photo_dir, tmp_path / "b", model=None, backbone_weights=str(base), **kw))
    with pytest.raises(TinctError, match="options base_channels do not fit"):
        Trainer(cfg(photo_dir, tmp_path / "c", model=None, model_options={"base_channels": 16}, **kw))
    train(cfg(photo_dir, tmp_path / "d", model=None, model_options={"loss": "l2"}, **kw))
    tuned = load_model(tmp_path / "d" / "model.safetensors")
    assert tuned.name == "unet" and tuned.config.loss == "l2" and tuned.config.base_channels == 8
    # through the command: one line, a usage error
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["train", "--init", str(base), "--model", "pix2pix", "--data", str(photo_dir), "--out",
              str(tmp_path / "e"), "--steps", "1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "conflicts with --init" in err


def test_damage_ages_the_inputs_only_and_is_a_function_of_the_step(photo_dir, tmp_path):
    plain = Trainer(cfg(photo_dir, tmp_path / "plain", augment_luminance=False, batch=8))
    aged = Trainer(cfg(photo_dir, tmp_path / "aged", augment_luminance=False, batch=8, damage=1.0))
    L0, ab0, _ = plain.batch(2)
    L1, ab1, _ = aged.batch(2)
    L2, ab2, _ = aged.batch(2)
    assert torch.equal(L1, L2) and torch.equal(ab1, ab2)  # exact resume needs the same damage at the same step
    assert torch.equal(ab0, ab1)  # the colors to learn stay the clean photo's
    changed = (L1 - L0).abs().flatten(1).amax(1) > 1.0
    assert bool(changed.all())  # damage=1: every input aged
    assert float(L1.min()) >= 0.0 and float(L1.max()) <= 100.0
    some = Trainer(cfg(photo_dir, tmp_path / "some", augment_luminance=False, batch=8, damage=0.5))
    changed = torch.stack([((some.batch(s)[0] - plain.batch(s)[0]).abs().flatten(1).amax(1) > 1.0)
                           for s in range(4)])
    assert 0 < int(changed.sum()) < changed.numel()  # a share of them, not all and not none
    # the aged mix (stains, craquelure): other damage at the same step, the same colors, still a function of it
    old = Trainer(cfg(photo_dir, tmp_path / "old", augment_luminance=False, batch=8, damage=1.0, damage_mix="aged"))
    L3, ab3, _ = old.batch(2)
    assert torch.equal(L3, old.batch(2)[0]) and torch.equal(ab3, ab0) and not torch.equal(L3, L1)
    with pytest.raises(TinctError, match="--damage-mix"):
        Trainer(cfg(photo_dir, tmp_path / "bad", damage=0.5, damage_mix="ancient"))
    with pytest.raises(TinctError, match="restore family damages its own"):
        Trainer(cfg(photo_dir, tmp_path / "restorer", model="restore", model_options={"base_channels": 4, "depth": 2},
                    damage=0.5))
