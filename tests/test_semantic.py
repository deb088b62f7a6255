"""Semantic measures of `tinct evaluate` (issue 13): ImageNet top-1 of an EfficientNet-Lite2 classifier on
truth, gray and colorizations (Zhang et al.'s semantic interpretability test), and FD-Lite2."""
import csv
import sys

import numpy as np
import pytest
from PIL import Image

from tinct.color import gray_rgb, rgb_to_lab
from tinct.errors import TinctError
from tinct.evaluate import GRAY_FLOOR, EvaluateConfig, evaluate
from tinct.pretrained import PACKAGES
from tinct.semantic import (SemanticTally, features_and_logits, frechet_distance, frechet_distance_from_stats,
                            imagenet_class, load_classifier)

from .conftest import SHARED

VAL = SHARED / "val" / "imagenette-val500"


# the .pth -> safetensors conversion (and `tinct train`'s photo cache) go to a private TINCT_CACHE
pytestmark = pytest.mark.usefixtures("private_tinct_cache")


@pytest.fixture(scope="module")
def lite2():
    return load_classifier()


def test_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    # two Gaussians with diagonal covariances: |m1 - m2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    s1, s2, m = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6), rng.normal(size=6)
    want = m @ m + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert frechet_distance_from_stats(np.zeros(6), np.diag(s1), m, np.diag(s2)) == pytest.approx(want, rel=1e-9)
    for n, d in [(40, 300), (300, 40)]:  # fewer samples than dimensions (rank-deficient, reduced basis), and more
        a = np.clip(rng.normal(size=(n, 12)) @ rng.normal(size=(12, d)) + 1, 0, 6)  # ReLU6-like, low rank
        shift = rng.normal(scale=0.1, size=d)
        assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
        # a pure translation keeps the covariance: the distance is the squared shift, exactly
        assert frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-6)
        b = a * 1.5 + shift  # a perturbation that also scales: further away than the shift alone
        assert frechet_distance(a, b) > frechet_distance(a, a + shift)
    # the reduced basis gives what the full covariances give
    a, b = rng.normal(size=(30, 100)), rng.normal(size=(25, 100)) * 1.3 + 0.2
    full = frechet_distance_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert frechet_distance(a, b) == pytest.approx(full, rel=1e-6)
    assert np.isnan(frechet_distance(a[:1], b))
    with pytest.raises(TinctError):
        frechet_distance(a, b[:, :50])


def test_semantic_measures_on_val_photos(lite2):
    # the first ImageNet-validation photo of each of the 10 classes (a fixed set, not picked by result)
    files = [sorted(d.glob("ILSVRC2012_val_*"))[0] for d in sorted(p for p in VAL.iterdir() if p.is_dir())]
    rng = np.random.default_rng(0)
    tally = SemanticTally(lite2)
    for f in files:
        truth = np.asarray(Image.open(f).convert("RGB"))
        noise = {s: np.clip(truth + rng.normal(0, s, truth.shape), 0, 255).astype(np.uint8) for s in (10, 60)}
        hits = tally.add(f, {"truth": truth, "gray": gray_rgb(rgb_to_lab(truth / 255.0)[..., 0]),
                             "noise 10": noise[10], "noise 60": noise[60]})
        assert set(hits.values()) <= {0.0, 1.0}  # every photo's class is known from its folder
    sem = tally.summary()
    assert sem["truth"]["top1_images"] == 10
    assert sem["truth"]["top1"] >= 60  # measured 80 %: Lite2 recognises the color photos
    assert sem["truth"]["top1"] >= sem["gray"]["top1"]  # measured 70 % on gray: color helps it
    assert sem["truth"]["fd_lite2"] == 0
    feats = np.stack(tally.features["truth"])
    assert feats.shape == (10, 1280) and frechet_distance(feats, feats) == pytest.approx(0, abs=1e-6)
    assert 0 < sem["noise 10"]["fd_lite2"] < sem["noise 60"]["fd_lite2"]  # FD grows with the perturbation
    assert sem["gray"]["fd_lite2"] > 0
    # the features are the classifier's own: its _fc on them gives its predictions
    f, logits = features_and_logits(lite2, [np.asarray(Image.open(files[0]).convert("RGB"))])
    assert f.shape == (1, 1280) and logits.shape == (1, 1000) and int(logits.argmax()) == imagenet_class(files[0])


def test_evaluate_reports_semantic_columns(tmp_path, tiny_model_path):
    out = tmp_path / "report"
    summary = evaluate(EvaluateConfig(data=[str(VAL)], models=[str(tiny_model_path)], out=str(out), limit=4,
                                      grid_images=2))
    floor, model = summary[GRAY_FLOOR], summary[str(tiny_model_path)]
    assert floor["top1_images"] == model["top1_images"] == floor["images"] > 0
    assert floor["top1_truth"] >= floor["top1"] and 0 <= model["top1"] <= 100
    assert floor["fd_lite2"] > 0 and model["fd_lite2"] > 0
    report = (out / "report.md").read_text()
    assert "| FD-Lite2 to truth |" in report and "| FID" not in report and "| truth |" in report
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {"top1", "top1_truth", "top1_images", "fd_lite2"} <= set(rows[0])
    assert float(rows[0]["fd_lite2"]) == pytest.approx(floor["fd_lite2"], rel=1e-3)
    per_photo = list(csv.DictReader(open(out / "scores.csv")))
    assert {r["top1"] for r in per_photo} <= {"0", "1"} and {r["top1_truth"] for r in per_photo} <= {"0", "1"}


def test_evaluate_without_the_extra_skips_them_in_one_line(monkeypatch, photo_dir, tmp_path, tiny_model_path,
                                                           capsys):
    for module in PACKAGES.values():  # as if tinct[pretrained] were not installed
        monkeypatch.setitem(sys.modules, module, None)
    out = tmp_path / "report"
    summary = evaluate(EvaluateConfig(data=[str(photo_dir)], models=[str(tiny_model_path)], out=str(out)))
    notes = [line for line in capsys.readouterr().err.splitlines()
              if line.strip() and "%|" not in line]  # not progress bars
    assert len(notes) == 1 and "semantic measures skipped" in notes[0] and "tinct[pretrained]" in notes[0]
    assert "top1" not in summary[GRAY_FLOOR] and summary[GRAY_FLOOR]["auc"] > 0  # the other scores stand
    assert "tinct[pretrained]" in (out / "report.md").read_text()
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert rows[0]["top1"] == "" and rows[0]["fd_lite2"] == ""


def _val_subset(dest, per_class: int):
    """The first ``per_class`` ImageNet-validation photos of each of the 10 classes, linked under their synsets."""
    for d in sorted(p for p in VAL.iterdir() if p.is_dir()):
        (dest / d.name).mkdir(parents=True)
        for f in sorted(d.glob("ILSVRC2012_val_*"))[:per_class]:
            (dest / d.name / f.name).symlink_to(f)
    return dest


def test_training_validation_scores_top1_of_colorizations_and_gray(photo_dir, tmp_path, monkeypatch, capsys):
    """The training curve's semantic accuracy (issue 13, item 4): every validation logs the classifier's top-1 on
    the colorizations and on the gray inputs, over the validation photos whose synset is in their path."""
    from tinct.cli import main
    val = _val_subset(tmp_path / "val", 2)
    args = ["train", "--model", "unet", "--option", "base_channels=8", "--data", str(photo_dir), "--val", str(val),
            "--steps", "2", "--size", "128", "--batch", "2", "--val-every", "1"]
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--out", str(tmp_path / "run")])
    assert exit_.value.code == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [r["step"] for r in rows] == ["1", "2"]
    for r in rows:
        assert 0 <= float(r["val_top1"]) <= 100
        # 18 color photos at 128 px, 10 classes of 1,000: chance is 0.1 %; measured 50 %: Lite2 knows them gray
        assert float(r["val_top1_gray"]) >= 25
    assert rows[0]["val_top1_gray"] == rows[1]["val_top1_gray"]  # the gray inputs do not change
    # off, or without the extra: the run stands, the columns stay empty; the missing extra is said in one line
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--out", str(tmp_path / "off"), "--no-semantic"])
    assert exit_.value.code == 0
    assert {r["val_top1"] for r in csv.DictReader(open(tmp_path / "off" / "metrics.csv"))} == {""}
    capsys.readouterr()
    for module in PACKAGES.values():
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--out", str(tmp_path / "bare")])
    assert exit_.value.code == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "top-1" in line]
    assert len(notes) == 1 and "tinct[pretrained]" in notes[0]
    assert {r["val_top1"] for r in csv.DictReader(open(tmp_path / "bare" / "metrics.csv"))} == {""}
