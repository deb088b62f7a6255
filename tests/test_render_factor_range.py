"""The render factor has one range, RENDER_FACTOR_RANGE, in the CLI, the Python API and the HTTP API."""
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import tinct
from tinct.pipeline import RENDER_FACTOR_RANGE
from tinct.serve import ServeConfig, create_app
from tinct.weights import load_model

from .conftest import cli

LO, HI = RENDER_FACTOR_RANGE


@pytest.fixture
def gray():
    return Image.fromarray(np.linspace(0, 255, 24 * 32).reshape(24, 32).astype(np.uint8), "L")


def test_cli_takes_the_range_and_refuses_beyond(tmp_path, gray, tiny_model_path, capsys):
    gray.save(tmp_path / "g.png")
    for rf in (LO - 1, HI + 1):
        assert cli("colorize", tmp_path / "g.png", "-o", tmp_path / "o.png", "--model", tiny_model_path,
                   "--render-factor", rf) == 2
        assert f"{LO}<=x<={HI}" in capsys.readouterr().err
    assert cli("colorize", tmp_path / "g.png", "-o", tmp_path / "o.png", "--model", tiny_model_path,
               "--render-factor", HI) == 0
    assert Image.open(tmp_path / "o.png").size == gray.size


def test_python_api_takes_the_range_and_refuses_beyond(gray, tiny_model_path):
    model = load_model(tiny_model_path)
    assert tinct.colorize(gray, model=model, render_factor=HI).size == gray.size
    for rf in (LO - 1, HI + 1, 2.5):
        with pytest.raises(tinct.TinctError, match=f"from {LO} to {HI}"):
            tinct.colorize(gray, model=model, render_factor=rf)


def test_http_api_offers_the_range_and_refuses_beyond(gray, tiny_model_path):
    assert ServeConfig().max_render_factor == HI
    buf = io.BytesIO()
    gray.save(buf, "PNG")
    with TestClient(create_app(ServeConfig(models=[str(tiny_model_path)], workers=1, queue=1))) as c:
        assert c.get("/api/models").json()["render_factor"] | {"default": None} == \
            {"default": None, "min": LO, "max": HI}
        for rf, status in ((HI + 1, 400), (LO - 1, 400), (HI, 200)):
            r = c.post("/api/colorize", files={"image": ("g.png", buf.getvalue())}, data={"render_factor": str(rf)})
            assert r.status_code == status, (rf, r.text)
    with pytest.raises(tinct.TinctError, match="max render factor"):
        create_app(ServeConfig(models=[str(tiny_model_path)], max_render_factor=HI + 1))
