import csv
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tinct.train import TrainConfig, Trainer, train
from tinct.weights import load_model


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
