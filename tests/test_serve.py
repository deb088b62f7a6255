"""`tinct serve`: the HTTP API (httpx through TestClient and against a real uvicorn) and the page in a real browser."""
import io
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from tinct.cli import main
from tinct.color import rgb_to_lab, rgb_to_luminance
from tinct.models import create_model
from tinct.serve import ServeConfig, create_app
from tinct.serve import work
from tinct.errors import TinctError
from tinct.hints import hints_from_points, hints_tensor, points_tensor
from tinct.serve.app import bind
from tinct.serve.pool import InferencePool, PoolFull
from tinct.weights import save_model

from .conftest import SHARED, gradient_photo

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def png_bytes(a: np.ndarray, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Two tiny random U-Nets: one taking color points (hint_channels=3), one not."""
    d = tmp_path_factory.mktemp("serve-models")
    torch.manual_seed(0)
    save_model(create_model("unet", base_channels=8, depth=2, hint_channels=3).eval(), d / "pointy.safetensors")
    save_model(create_model("unet", base_channels=8, depth=2).eval(), d / "plain.safetensors")
    return [str(d / "pointy.safetensors"), str(d / "plain.safetensors")]


@pytest.fixture(scope="module")
def client(model_files):
    app = create_app(ServeConfig(models=model_files, workers=2, queue=8, max_upload_bytes=2_000_000,
                                 max_pixels=400_000))
    with TestClient(app) as c:
        yield c


def post(client, data: bytes, name="photo.png", ctype="image/png", **fields):
    return client.post("/api/colorize", files={"image": (name, data, ctype)}, data=fields)


# ------------------------------------------------------------------ API
def test_page_and_assets_served_without_cdn(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="frame"' in r.text and "script-src 'self'" in r.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    page = r.text + client.get("/static/app.js").text + client.get("/static/style.css").text
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


def test_colorize_returns_png_with_the_input_luminance(client):
    rgb = gradient_photo(60, 80, seed=3)
    gray = (rgb_to_luminance(rgb / 255.0) / 100 * 255).round().astype(np.uint8)  # a gray version of it
    r = post(client, png_bytes(gray, "L"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-tinct-model"] == "pointy"
    out = Image.open(io.BytesIO(r.content))
    assert out.format == "PNG" and out.size == (80, 60) and out.mode == "RGB"
    L_in = rgb_to_luminance(np.repeat(gray[..., None], 3, -1) / 255.0)
    L_out = rgb_to_luminance(np.asarray(out) / 255.0)
    assert np.abs(L_out - L_in).mean() < 1.0  # colors added, brightness kept


def test_alpha_is_kept(client):
    rgba = np.dstack([gradient_photo(40, 40), np.tile(np.arange(40, dtype=np.uint8) * 6, (40, 1))])
    out = Image.open(io.BytesIO(post(client, png_bytes(rgba, "RGBA")).content))
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])


def test_format_is_sniffed_from_content_not_name(client):
    photo = png_bytes(gradient_photo(32, 32))
    assert post(client, photo, name="notes.txt", ctype="text/plain").status_code == 200
    r = post(client, b"just some text, not a photo\n" * 10, name="photo.png")
    assert r.status_code == 415 and "not an image" in r.json()["error"]


@pytest.mark.parametrize("data, status", [
    (b"", 400),                                           # empty
    (None, 400),                                          # truncated PNG
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", 415),  # a format Pillow reads but we do not take
])
def test_bad_images_are_4xx_json(client, data, status):
    if data is None:
        data = png_bytes(gradient_photo(64, 64))[:300]
    r = post(client, data)
    assert r.status_code == status and set(r.json()) == {"error"} and "\n" not in r.json()["error"]


def test_too_large_body_and_too_many_pixels_are_413(client):
    r = post(client, os.urandom(2_100_000))
    assert r.status_code == 413 and "too large" in r.json()["error"]
    r = post(client, png_bytes(np.zeros((700, 700), np.uint8)))  # 490,000 px > 400,000
    assert r.status_code == 413 and "pixels" in r.json()["error"]


def test_chunked_upload_over_the_limit_is_413(client):
    def body():  # no Content-Length: the limit must hold on the bytes received
        yield b'--B\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        for _ in range(5):
            yield b"\0" * 500_000
        yield b"\r\n--B--\r\n"
    r = client.post("/api/colorize", content=body(), headers={"content-type": "multipart/form-data; boundary=B"})
    assert r.status_code == 413 and "error" in r.json()


@pytest.mark.parametrize("fields, needle", [
    ({"render_factor": "0"}, "render_factor"),
    ({"render_factor": "9999"}, "render_factor"),
    ({"render_factor": "abc"}, "render_factor"),
    ({"model": "../../../etc/passwd"}, "unknown model"),
    ({"hints": "[{"}, "not valid JSON"),
    ({"hints": '{"x": 1}'}, "JSON list"),
    ({"hints": '[{"x": 500, "y": 1, "color": "#ff0000"}]'}, "outside the photo"),
    ({"hints": '[{"x": 5, "y": 1, "color": "red"}]'}, "#rrggbb"),
    ({"model": "plain", "hints": '[{"x": 5, "y": 1, "color": "#ff0000"}]'}, "does not take color points"),
    ({"render_facter": "8"}, "unknown field 'render_facter'"),
    ({"prior_correction": "0.5"}, "applies to classification models"),
    ({"prior_correction": "vivid"}, "prior_correction"),
])
def test_bad_fields_are_4xx_with_one_line(client, fields, needle):
    r = post(client, png_bytes(gradient_photo(32, 40)), **fields)
    assert 400 <= r.status_code < 500 and needle in r.json()["error"], r.text


def test_missing_image_field_and_unknown_route(client):
    r = client.post("/api/colorize", data={"model": "pointy"})
    assert r.status_code == 422 and r.json()["error"].startswith("image:")
    assert client.get("/nope").json() == {"error": "Not Found"}


def test_hints_reach_the_model_at_working_size(client):
    photo = png_bytes(gradient_photo(64, 64, seed=1))  # a color photo: recolor=true, or it keeps its own colors
    plain = np.asarray(Image.open(io.BytesIO(post(client, photo, recolor="true").content)), np.int16)
    pts = json.dumps([{"x": 10, "y": 12, "color": "#e02020", "radius": 3}, {"x": 50, "y": 40, "color": "#2040e0"}])
    hinted = np.asarray(Image.open(io.BytesIO(post(client, photo, hints=pts).content)), np.int16)
    assert np.abs(hinted - plain).max() > 0  # the points changed the colors
    # no points: no hints
    assert post(client, photo, hints="[]", recolor="true").content == post(client, photo, recolor="true").content


def test_color_photo_keeps_its_own_colors_unless_recolor(client, model_files):
    """The rule of `tinct colorize` and `tinct.colorize()`, the same pixels: a color photo's own colors restored
    (X-Tinct-Colors: own) unless recolor=true or color points ask for new ones; a gray photo is colorized."""
    import tinct
    from tinct.restore.degrade import fade_color
    rgb = gradient_photo(48, 64, seed=5).astype(np.float32) / 255
    faded = (fade_color(rgb, np.random.default_rng(1), saturation=0.5) * 255).round().astype(np.uint8)
    r = post(client, png_bytes(faded))
    assert r.status_code == 200 and r.headers["x-tinct-colors"] == "own"
    own = np.asarray(Image.open(io.BytesIO(r.content)))
    assert np.array_equal(own, np.asarray(tinct.colorize(faded, model=model_files[0])))
    r = post(client, png_bytes(faded), recolor="true")
    assert r.status_code == 200 and r.headers["x-tinct-colors"] == "colorized"
    new = np.asarray(Image.open(io.BytesIO(r.content)))
    assert np.array_equal(new, np.asarray(tinct.colorize(faded, model=model_files[0], recolor=True)))
    pts = json.dumps([{"x": 10, "y": 12, "color": "#e02020", "radius": 3}])
    assert post(client, png_bytes(faded), hints=pts).headers["x-tinct-colors"] == "colorized"
    gray = np.asarray(Image.fromarray(faded).convert("L"))
    assert post(client, png_bytes(gray, "L")).headers["x-tinct-colors"] == "colorized"
    r = post(client, png_bytes(faded), restore="true")  # repaired, and still its own colors
    assert r.status_code == 200 and r.headers["x-tinct-colors"] == "own"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))),
                          np.asarray(tinct.colorize(faded, model=model_files[0], restore=True)))


def test_points_tensor_equals_the_hints_file_path():
    """The server's bounding-box painter gives exactly what a hints file of the same points gives."""
    rng = np.random.default_rng(0)
    pts = [{"x": int(rng.integers(0, 90)), "y": int(rng.integers(0, 70)), "color": "#%06x" % int(rng.integers(1 << 24)),
            "radius": int(rng.integers(0, 9))} for _ in range(30)]
    want = hints_tensor(hints_from_points(pts, (70, 90)), 24, 32)
    got = points_tensor(pts, (70, 90), 24, 32)
    assert got.shape == (1, 3, 24, 32) and want[0, 2].sum() > 20
    assert torch.allclose(got, want, atol=1e-5)


def test_points_covering_too_many_pixels_are_refused(client):
    pts = [{"x": 500, "y": 500, "color": "#ff0000", "radius": 256}] * 30  # 30 x 206,000 px
    with pytest.raises(TinctError, match="smaller radii"):
        points_tensor(pts, (1000, 1000), 64, 64, max_painted=work.MAX_HINT_PIXELS)
    photo = png_bytes(np.zeros((600, 600), np.uint8), "L")
    r = post(client, photo, hints=json.dumps([{"x": 300, "y": 300, "color": "#ff0000", "radius": 256}] * 30))
    assert r.status_code == 400 and "smaller radii" in r.json()["error"]


def test_models_health_and_docs(client):
    info = client.get("/api/models").json()
    assert info["default"] == "pointy"
    assert {m["name"]: m["hints"] for m in info["models"]} == {"pointy": True, "plain": False}
    assert info["render_factor"]["max"] == 64 and info["limits"]["max_pixels"] == 400_000
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["capacity"] == 10
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/_docs/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/_docs/swagger-ui-bundle.js").status_code == 200
    assert "/api/colorize" in client.get("/openapi.json").json()["paths"]


def test_prior_correction_per_request_leaves_the_shared_model_alone():
    app = create_app(ServeConfig(models=["default"], workers=2, queue=4))
    with TestClient(app) as c:
        info = c.get("/api/models").json()["models"][0]
        photo = Image.open(Path(__file__).parents[1] / "examples" / "astronaut_gray.jpg").convert("L")
        photo = png_bytes(np.asarray(photo.resize((96, 96))))
        chroma = {}
        for pc in ("0", "1"):
            r = post(c, photo, prior_correction=pc)
            assert r.status_code == 200, r.text
            lab = rgb_to_lab(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")) / 255.0)
            chroma[pc] = np.hypot(lab[..., 1], lab[..., 2]).mean()
        assert chroma["1"] < chroma["0"] - 1.0
        own = post(c, photo).content
        assert post(c, photo, prior_correction=str(info["prior_correction"])).content == own
        r = post(c, photo, prior_correction="1.5")
        assert r.status_code == 400 and "prior correction must be in [0, 1]" in r.json()["error"]
    net = app.state.store.get("default")[1]
    assert 0 < info["prior_correction"] < 1 and net.config.prior_correction == info["prior_correction"]


def test_pool_admits_workers_plus_queue_then_refuses():
    pool = InferencePool(workers=1, queue=1)
    gate = threading.Event()

    async def scenario():
        first = pool.submit(gate.wait, 10)
        second = pool.submit(gate.wait, 10)
        with pytest.raises(PoolFull):
            pool.submit(gate.wait, 10)
        assert (pool.stats().running, pool.stats().queued, pool.stats().refused) == (1, 1, 1)
        gate.set()
        await first, await second
        third = await pool.submit(lambda: 7)  # slots come back once the work ends
        return third

    import asyncio
    assert asyncio.run(scenario()) == 7
    assert pool.stats().running == 0 and pool.stats().done == 3
    pool.shutdown()


# ------------------------------------------------------------------ a real server
class ServerThread:
    """uvicorn serving ``app`` on a free loopback port in a thread (no signals, stops on exit)."""

    def __init__(self, app):
        import uvicorn
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


def test_24_concurrent_requests_all_succeed_and_server_stays_up(model_files):
    app = create_app(ServeConfig(models=model_files, workers=2, queue=32))
    photos = [png_bytes(gradient_photo(48 + 4 * (i % 3), 64, seed=i)) for i in range(24)]
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        def one(data):
            return http.post("/api/colorize", files={"image": ("p.png", data, "image/png")})
        with ThreadPoolExecutor(24) as ex:
            replies = list(ex.map(one, photos))
        assert [r.status_code for r in replies] == [200] * 24
        assert all(Image.open(io.BytesIO(r.content)).size == (64, 48 + 4 * (i % 3)) for i, r in enumerate(replies))
        health = http.get("/healthz").json()
        assert health["status"] == "ok" and health["done"] >= 24 and health["running"] == 0


def test_full_queue_answers_503_and_recovers(model_files, monkeypatch):
    app = create_app(ServeConfig(models=model_files, workers=1, queue=0))
    gate, entered = threading.Event(), threading.Event()
    real_run = work.run

    def slow_run(job):
        entered.set()
        gate.wait(20)
        return real_run(job)

    monkeypatch.setattr(work, "run", slow_run)
    photo = png_bytes(gradient_photo(32, 32))
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as http, ThreadPoolExecutor(1) as ex:
        files = {"image": ("p.png", photo, "image/png")}
        first = ex.submit(http.post, "/api/colorize", files=files)
        assert entered.wait(20)
        busy = http.post("/api/colorize", files=files)
        assert busy.status_code == 503 and "busy" in busy.json()["error"] and busy.headers["retry-after"]
        gate.set()
        assert first.result().status_code == 200
        assert http.post("/api/colorize", files=files).status_code == 200


def test_cli_serve_refuses_a_taken_port_in_one_line(capsys):
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(SystemExit) as e:
            main(["serve", "--port", str(taken.getsockname()[1])])
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("tinct: error: cannot listen on") and err.count("\n") == 1


def test_cli_serve_refuses_an_unknown_model(capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", "--port", "0", "--model", "no-such-model"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "no-such-model" in err and err.count("\n") == 1


# ------------------------------------------------------------------ the page in a real browser
def _browser_photo(tmp_path) -> Path:
    """A grayscale JPEG: a real photo from the shared data when there, else a synthetic one."""
    candidates = sorted((SHARED / "train" / "bsds500").glob("*.jpg"))[:1] if SHARED.exists() else []
    if candidates:
        im = Image.open(candidates[0]).convert("L")
        im.thumbnail((480, 480))
    else:
        im = Image.fromarray(gradient_photo(240, 320)).convert("L")
    path = tmp_path / "old photo.jpg"
    im.save(path, quality=92)
    return path


def test_page_in_chromium_upload_drag_point_download(tmp_path, monkeypatch):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run should install Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright
    photo = _browser_photo(tmp_path)
    w, h = Image.open(photo).size
    app = create_app(ServeConfig(models=["default"], workers=1, queue=4))  # the shipped model: it takes points
    problems, jobs, real_run = [], [], work.run
    monkeypatch.setattr(work, "run", lambda job: jobs.append(job) or real_run(job))
    with ServerThread(app) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820}, accept_downloads=True)
            page.set_default_timeout(180_000)  # a loaded machine runs the network slowly
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(srv.url + "/")
            # (no wait_for_function: when it has to poll it evaluates a string, which the page's CSP forbids)
            page.wait_for_selector("#model option", state="attached")

            with page.expect_response("**/api/colorize") as first:
                page.set_input_files("#file", str(photo))
            assert first.value.status == 200
            page.wait_for_selector("#after:not([hidden])")
            page.wait_for_selector("#download:not(.disabled)")
            assert "colorized by default" in page.text_content("#status")

            knob = page.locator("#knob").bounding_box()
            frame = page.locator("#frame").bounding_box()
            page.mouse.move(knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2)
            page.mouse.down()
            page.mouse.move(frame["x"] + frame["width"] * 0.3, frame["y"] + frame["height"] / 2, steps=8)
            page.mouse.up()
            assert 25 <= int(page.get_attribute("#divider", "aria-valuenow")) <= 35

            page.mouse.click(frame["x"] + frame["width"] * 0.7, frame["y"] + frame["height"] * 0.4)
            page.wait_for_selector("#spotCard:not([hidden]) .suggestion")  # a click asks for suggestions first
            with page.expect_response("**/api/colorize") as second:
                page.fill("#pointColor", "#d03a2a")  # any color, instead of a suggestion
            assert second.value.status == 200
            points = jobs[-1].points  # what the server was sent (a browser keeps multipart blobs to itself)
            assert len(points) == 1 and points[0]["color"] == "#d03a2a"
            assert abs(points[0]["x"] - 0.7 * w) <= 2 and abs(points[0]["y"] - 0.4 * h) <= 2
            assert page.locator(".point").count() == 1
            expect(page.locator("#status")).to_contain_text("1 color point", timeout=180_000)

            # bold <-> safe: starts at the shipped model's own prior correction, and a move is sent
            assert abs(float(page.input_value("#pc")) - jobs[-1].model.config.prior_correction) < 1e-6
            with page.expect_response("**/api/colorize") as third:
                page.eval_on_selector("#pc", "el => { el.value = '0.9'; el.dispatchEvent(new Event('input')); "
                                             "el.dispatchEvent(new Event('change')); }")
            assert third.value.status == 200 and jobs[-1].decoding.prior_correction == 0.9
            assert page.text_content("#pcOut") == "0.90"

            with page.expect_download() as dl:
                page.click("#download")
            saved = tmp_path / "download.png"
            dl.value.save_as(saved)
            assert dl.value.suggested_filename == "old photo-color.png"
            got = Image.open(saved)
            assert got.format == "PNG" and got.size == (w, h)

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve_page.png"))
        finally:
            browser.close()
    assert not problems, problems  # no script error, no CSP violation
