"""Color suggestions (tinct.suggest, POST /api/suggest), the server's photo cache and the page's global hints."""
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import tinct
from tinct.color import rgb_to_lab
from tinct.errors import TinctError
from tinct.io import LoadedImage
from tinct.models import create_model
from tinct.serve import ServeConfig, create_app
from tinct.serve.photos import PhotoCache, PhotoCacheConfig
from tinct.suggest import cluster, in_gamut, suggest_at


EXAMPLE = Path(__file__).parents[1] / "examples" / "astronaut_gray.jpg"


def lab_of(hex_color: str) -> np.ndarray:
    return rgb_to_lab(np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0)


def png(a: np.ndarray, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def default_model():
    return tinct.load_model()


@pytest.fixture(scope="module")
def binned():
    """A tiny classification U-Net on a 10-unit ab grid; tests set its logits by hand."""
    torch.manual_seed(0)
    a, b = np.meshgrid(np.arange(-80, 81, 10), np.arange(-80, 81, 10), indexing="ij")
    centers = np.stack([a.ravel(), b.ravel()], 1).astype(np.float32)
    m = create_model("unet", base_channels=8, depth=2, head="classification", num_bins=len(centers)).eval()
    m.set_bins(centers, np.ones(len(centers), np.float32))
    return m, centers


def logits_with(centers, mass: dict, h=4, w=4) -> torch.Tensor:
    """Logits (Q, h, w) whose softmax puts ``mass[(a, b)]`` on those bins everywhere (the rest ~0)."""
    p = np.full(len(centers), 1e-9)
    for ab, m in mass.items():
        p[np.flatnonzero((centers == np.array(ab, np.float32)).all(1))[0]] = m
    return torch.from_numpy(np.log(p / p.sum())).float()[:, None, None].expand(-1, h, w).contiguous()


# ------------------------------------------------------------------ the suggestion logic
def test_cluster_merges_neighbours_and_ranks_by_mass():
    centers = torch.tensor([[0, 0], [10, 0], [50, 50], [-40, 20]], dtype=torch.float32)
    probs = torch.tensor([0.3, 0.25, 0.35, 0.1])
    out = cluster(centers, probs, count=6, radius=15)
    assert [round(m, 2) for _, m in out] == [0.55, 0.35, 0.1]  # (0,0)+(10,0) together outweigh (50,50)
    assert np.allclose(out[0][0], [10 * 0.25 / 0.55, 0])        # probability-weighted mean
    assert len(cluster(centers, probs, count=2, radius=15)) == 2


def test_suggestions_follow_the_distribution_at_the_spot_lightness(binned):
    model, centers = binned
    from tinct.suggest import bin_probabilities
    logits = logits_with(centers, {(40, 30): 0.6, (-30, 20): 0.3, (0, 0): 0.1})
    assert bool(in_gamut(55.0, torch.tensor([[40.0, 30.0], [-30.0, 20.0]])).all())
    s = suggest_at(model, bin_probabilities(model, logits), 55.0, 0.5, 0.5)
    assert [x.lab[1:] for x in s] == [(40.0, 30.0), (-30.0, 20.0), (0.0, 0.0)]  # nothing negligible offered
    assert [round(x.probability, 3) for x in s] == [0.6, 0.3, 0.1]
    for x in s:  # the hex color has the spot's lightness and the suggested chroma
        assert abs(lab_of(x.color)[0] - 55) < 1 and np.hypot(*(lab_of(x.color)[1:] - x.lab[1:])) < 2.5


def test_out_of_gamut_colors_are_never_suggested(binned):
    model, centers = binned
    from tinct.suggest import bin_probabilities
    assert not bool(in_gamut(95.0, torch.tensor([[-60.0, -60.0]]))[0])  # saturated blue cannot be that light
    logits = logits_with(centers, {(-60, -60): 0.8, (0, 10): 0.2})
    s = suggest_at(model, bin_probabilities(model, logits), 95.0, 0.5, 0.5)
    assert s[0].lab[1:] == (0.0, 10.0) and s[0].probability == pytest.approx(1.0, abs=1e-3)
    assert all(bool(in_gamut(95.0, torch.tensor([x.lab[1:]]))[0]) for x in s)


def test_suggest_colors_on_a_photo_and_points_steer_it(default_model):
    photo = Image.open(EXAMPLE).convert("L").resize((160, 160))
    plain = tinct.suggest_colors(photo, 40, 100, model=default_model)
    assert 1 <= len(plain) <= 6
    probs = [s.probability for s in plain]
    assert probs == sorted(probs, reverse=True) and 0.5 < sum(probs) <= 1.0 + 1e-6
    spot_L = rgb_to_lab(np.asarray(photo.convert("RGB"))[100, 40] / 255.0)[0]
    assert all(abs(lab_of(s.color)[0] - spot_L) < 1.5 for s in plain)
    # a green point on the spot: the model conditions on it, and green comes first
    green = tinct.suggest_colors(photo, 40, 100, model=default_model,
                                 hints=[{"x": 40, "y": 100, "color": "#2e8b3a", "radius": 12}])
    assert green[0].lab[1] < -15 and green[0].probability > plain[0].probability * 0.5
    assert green[0].color != plain[0].color


def test_suggest_colors_refuses_what_it_cannot_do(default_model, tiny_model_path):
    photo = np.zeros((32, 48), np.uint8)
    with pytest.raises(TinctError, match="classification head"):
        tinct.suggest_colors(photo, 1, 1, model=str(tiny_model_path))  # a regression U-Net
    with pytest.raises(TinctError, match="outside the photo"):
        tinct.suggest_colors(photo, 48, 0, model=default_model)
    with pytest.raises(TinctError, match="whole number"):
        tinct.suggest_colors(photo, 1.5, 0, model=default_model)


# ------------------------------------------------------------------ the photo cache
def loaded(h=10, w=10) -> LoadedImage:
    return LoadedImage(L=np.zeros((h, w), np.float32), alpha=None, format="PNG")


def test_photo_cache_is_bounded_in_count_bytes_and_time():
    now = [0.0]
    cache = PhotoCache(PhotoCacheConfig(max_count=3, max_bytes=1200, ttl=60), clock=lambda: now[0])
    ids = [cache.put(loaded()) for _ in range(3)]   # 400 bytes each
    assert len(set(ids)) == 3 and all(len(i) >= 20 for i in ids)
    assert cache.get(ids[0]) is not None            # used: now the most recent
    ids.append(cache.put(loaded()))                 # over the count: the least recently used (ids[1]) goes
    assert cache.get(ids[1]) is None and cache.get(ids[0]) is not None
    big = cache.put(loaded(20, 20))                 # 1600 bytes: over the whole budget, not kept
    assert big is None and cache.stats()["photos"] == 3
    cache.put(loaded(10, 20))                       # 800 bytes: two others make room
    assert cache.stats()["bytes"] <= 1200
    now[0] = 61.0
    assert all(cache.get(i) is None for i in ids) and cache.stats()["photos"] == 1 or cache.stats()["photos"] == 0


# ------------------------------------------------------------------ the API
@pytest.fixture(scope="module")
def client(tiny_model_path):
    app = create_app(ServeConfig(models=["default", str(tiny_model_path)], workers=1, queue=4,
                                 photos=PhotoCacheConfig(max_count=2)))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def photo_png():
    return png(np.asarray(Image.open(EXAMPLE).convert("L").resize((96, 80))), "L")


def test_api_suggest_with_an_upload_then_with_the_photo_id(client, photo_png, default_model):
    r = client.post("/api/suggest", files={"image": ("p.png", photo_png, "image/png")}, data={"x": 30, "y": 40})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "default" and (body["width"], body["height"]) == (96, 80)
    assert 1 <= len(body["suggestions"]) <= 6 and body["photo"]
    want = tinct.suggest_colors(Image.open(io.BytesIO(photo_png)), 30, 40, model=default_model)
    assert [s["color"] for s in body["suggestions"]] == [s.color for s in want]
    again = client.post("/api/suggest", data={"photo": body["photo"], "x": 30, "y": 40})
    assert again.status_code == 200 and again.json()["suggestions"] == body["suggestions"]


def test_api_suggest_errors_are_one_line(client, photo_png, tiny_model_path):
    files = {"image": ("p.png", photo_png, "image/png")}
    r = client.post("/api/suggest", files=files, data={"x": 96, "y": 0})
    assert r.status_code == 400 and "outside the photo" in r.json()["error"]
    r = client.post("/api/suggest", files=files, data={"x": 1, "y": 1, "model": Path(tiny_model_path).stem})
    assert r.status_code == 400 and "classification head" in r.json()["error"]
    r = client.post("/api/suggest", data={"photo": "not-an-id", "x": 1, "y": 1})
    assert r.status_code == 410 and "upload the image again" in r.json()["error"]
    r = client.post("/api/suggest", data={"x": 1, "y": 1})
    assert r.status_code == 422 and r.json()["error"].startswith("image:")
    r = client.post("/api/suggest", files=files, data={"x": 1, "y": 1, "colour": "red"})
    assert r.status_code == 400 and "unknown field 'colour'" in r.json()["error"]


def test_colorize_by_photo_id_equals_the_upload_and_ids_expire_by_count(client, photo_png):
    first = client.post("/api/colorize", files={"image": ("p.png", photo_png, "image/png")})
    assert first.status_code == 200
    pid = first.headers["x-tinct-photo"]
    by_id = client.post("/api/colorize", data={"photo": pid})
    assert by_id.status_code == 200 and by_id.content == first.content
    for _ in range(2):  # the cache holds 2: two more uploads push this one out
        client.post("/api/colorize", files={"image": ("p.png", photo_png, "image/png")})
    assert client.post("/api/colorize", data={"photo": pid}).status_code == 410


def test_palette_and_saturation_change_the_colors(client, photo_png):
    files = {"image": ("p.png", photo_png, "image/png")}

    def chroma(r):
        assert r.status_code == 200, r.text
        lab = rgb_to_lab(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")) / 255.0)
        return lab[..., 1:]

    plain = chroma(client.post("/api/colorize", files=files))
    assert np.abs(chroma(client.post("/api/colorize", files=files, data={"saturation": "0"}))).max() < 1.5
    bold = chroma(client.post("/api/colorize", files=files, data={"saturation": "1.6"}))
    assert np.hypot(*bold.transpose(2, 0, 1)).mean() > 1.2 * np.hypot(*plain.transpose(2, 0, 1)).mean()
    blue = chroma(client.post("/api/colorize", files=files, data={"palette": "#2050c0,#3060e0"}))
    assert blue[..., 1].mean() < plain[..., 1].mean() - 0.3 and np.abs(blue - plain).max() > 5  # b toward blue
    for fields, needle in (({"palette": "#12345"}, "palette:"), ({"palette": "/etc/passwd"}, "palette:"),
                           ({"saturation": "3"}, "saturation must be")):
        r = client.post("/api/colorize", files=files, data=fields)
        assert r.status_code == 400 and needle in r.json()["error"], r.text


def test_api_palette_of_a_reference_photo(client):
    ref = np.zeros((60, 80, 3), np.uint8)
    ref[:, :40] = (200, 40, 30)
    ref[:, 40:] = (30, 60, 200)
    r = client.post("/api/palette", files={"image": ("ref.png", png(ref), "image/png")})
    assert r.status_code == 200, r.text
    colors = r.json()["colors"]
    assert 2 <= len(colors) <= 6 and all(c.startswith("#") and len(c) == 7 for c in colors)
    abs_ = np.array([lab_of(c)[1:] for c in colors])
    assert (abs_[:, 0] > 40).any() and (abs_[:, 1] < -40).any()  # the red and the blue are both there
    r = client.post("/api/palette", files={"image": ("x.png", b"not an image", "image/png")})
    assert r.status_code == 415
