"""Choosing a model: `tinct models` (shipped models, families, a family's options), the error for a family given
where weights are needed, `/api/models`' descriptions, and `--help` describing every option with its default."""
import dataclasses

import click
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import tinct.weights
from tinct.catalog import family_options, without_paths
from tinct.cli import cli as cli_group
from tinct.models import create_model, list_models, model_class
from tinct.serve import ServeConfig, create_app
from tinct.weights import save_model

from .conftest import cli


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """A shipped-models folder holding 'described' (with description and datasets keys) and 'plain' (without)."""
    d = tmp_path / "weights"
    d.mkdir()
    torch.manual_seed(0)
    save_model(create_model("unet", base_channels=8, depth=2, hint_channels=3), d / "described.safetensors",
               trained_on="/home/someone/photos/summer", steps=12,
               extra={"description": "tiny test U-Net; takes color points", "datasets": "Summer photos (5)"})
    save_model(create_model("cnn", width=0.125), d / "plain.safetensors",
               trained_on="/home/someone/photos/summer, ../data/val500/", steps=3)
    monkeypatch.setattr(tinct.weights, "WEIGHTS_DIR", d)
    return d


def test_models_lists_shipped_models_then_families(weights_dir, capsys):
    assert cli("models") == 0
    out = capsys.readouterr().out
    shipped, families = out.split("\n\n")
    assert shipped.startswith("Shipped models (tinct colorize --model NAME")
    assert "  described: tiny test U-Net; takes color points" in shipped
    n = sum(t.numel() for t in create_model("unet", base_channels=8, depth=2, hint_channels=3).state_dict().values())
    size = (weights_dir / "described.safetensors").stat().st_size / 1e6
    assert f"    unet, {n:,} parameters, {size:.1f} MB; trained on Summer photos (5)" in shipped
    # no description in the header: one built from its config; datasets from trained_on, without the paths
    assert "  plain: a cnn network that predicts colors directly" in shipped
    assert "trained on summer, val500" in shipped and "/" not in shipped.split("plain:")[1]
    assert families.startswith("Families to train (tinct train --model FAMILY")
    for family in list_models():
        assert f"  {family} " in families


def test_api_models_describes_models_without_paths(weights_dir):
    app = create_app(ServeConfig(models=["described", "plain"], workers=1, queue=1))
    with TestClient(app) as c:
        models = {m["name"]: m for m in c.get("/api/models").json()["models"]}
    assert models["described"]["description"] == "tiny test U-Net; takes color points"
    assert models["described"]["trained_on"] == "Summer photos (5)"
    assert models["plain"]["trained_on"] == "summer, val500"


def test_without_paths_keeps_names_only():
    assert without_paths("../shared/data/train (imagenette, bsds500; 10,215 photos), val: x/val500") == \
        "train (imagenette, bsds500; 10,215 photos), val: val500"
    assert without_paths(r"C:\photos\old, /srv/scans/") == "old, scans"


@pytest.mark.parametrize("family", list_models())
def test_every_family_option_is_listed_with_default_and_meaning(family, capsys):
    options = family_options(family)
    fields = dataclasses.fields(model_class(family).Config)
    assert [o.key for o in options] == [f.name for f in fields]
    assert all(o.meaning for o in options), [o.key for o in options if not o.meaning]  # a new option needs a comment
    assert cli("models", family) == 0
    lines = capsys.readouterr().out.splitlines()
    for o in options:
        assert any(line.strip().startswith(f"{o.key}={o.default_text} ") for line in lines), o.key


def test_models_unknown_family_is_a_usage_error(capsys):
    assert cli("models", "resnet") == 2
    assert "families: " in capsys.readouterr().err


def test_family_given_to_colorize_says_what_to_pass(tmp_path, capsys):
    src = tmp_path / "gray.png"
    Image.new("L", (32, 24), 100).save(src)
    assert cli("colorize", src, "-o", tmp_path / "out.png", "--model", "unet") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "family to train (tinct train --model unet)" in err and "default" in err and "model.safetensors" in err
    assert not (tmp_path / "out.png").exists()


def _commands(group):
    for name, cmd in group.commands.items():
        yield name, cmd


@pytest.mark.parametrize("name,command", list(_commands(cli_group)))
def test_help_describes_every_option_and_its_default(name, command):
    for p in command.params:
        if not isinstance(p, click.Option) or p.name == "help":
            continue
        assert p.help, f"tinct {name} {p.opts[0]}: no help"
        valued = not p.is_flag and not p.multiple and not p.required and p.default is not None
        if valued:
            assert p.show_default or "default" in p.help, f"tinct {name} {p.opts[0]}: default not shown"
