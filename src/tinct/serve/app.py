"""The FastAPI app: the page at ``/``, the HTTP API under ``/api``, health and docs.

``create_app(ServeConfig(...))`` builds an app (tests use it with httpx);
``run_server(config)`` serves it with uvicorn. Every error is JSON
``{"error": "one line"}`` with a 4xx status (413 too large, 415 not an image,
503 queue full) or 500 for a bug, never a traceback.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import TinctError
from ..pipeline import DEFAULT_RENDER_FACTOR, RENDER_FACTOR_RANGE, decoding_for
from . import work
from .errors import RequestError
from .limits import BodyLimit
from .photos import PhotoCache, PhotoCacheConfig
from .pool import InferencePool, PoolFull
from .store import ModelStore

STATIC_DIR = Path(__file__).parent / "static"
COLORIZE_FIELDS = {"image", "photo", "model", "render_factor", "hints", "prior_correction", "palette", "saturation",
                  "restore", "recolor"}
SUGGEST_FIELDS = {"image", "photo", "x", "y", "model", "render_factor", "hints"}
log = logging.getLogger("tinct.serve")

# The page loads only its own files: no CDN, no inline script, images from blob: URLs it made.
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class ErrorBody(BaseModel):
    """Every error answer: one line saying what is wrong."""
    error: str


@dataclass
class ServeConfig:
    """Everything ``tinct serve`` can set. Sizes in bytes and pixels."""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2                  # colorizations running at once (threads sharing the models)
    queue: int = 32                   # requests waiting for a worker; one more gets 503
    models: list[str] = field(default_factory=list)   # shipped names or files; first = default; empty = all shipped
    max_upload_bytes: int = 50 * 2**20    # whole request body
    max_pixels: int = 50_000_000          # per image
    max_render_factor: int = RENDER_FACTOR_RANGE[1]  # lower it to bound a request's cost (grows with its square)
    max_points: int = 1000
    torch_threads: int | None = None      # None: the cores shared out among the workers
    photos: PhotoCacheConfig = field(default_factory=PhotoCacheConfig)  # decoded uploads kept for edits


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """Build the app. Unknown or unreadable models raise ``TinctError`` here, before any request."""
    config = config or ServeConfig()
    if not RENDER_FACTOR_RANGE[0] <= config.max_render_factor <= RENDER_FACTOR_RANGE[1]:
        raise TinctError(f"max render factor must be {RENDER_FACTOR_RANGE[0]}..{RENDER_FACTOR_RANGE[1]}, "
                         f"got {config.max_render_factor}")
    store = ModelStore(config.models)
    store.get(None)  # load the default now: a broken file fails the start, and the first request is not slow
    pool = InferencePool(config.workers, config.queue)
    photos = PhotoCache(config.photos)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        pool.shutdown()

    app = FastAPI(title="tinct", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Colorize grayscale photos. `POST /api/colorize` with a multipart `image` "
                              "returns the colorized PNG; the page at `/` does the same in a browser.")
    app.state.config, app.state.store, app.state.pool, app.state.photos = config, store, pool, photos
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    docs_dir = _swagger_dir()
    if docs_dir is not None:
        app.mount("/_docs", StaticFiles(directory=docs_dir), name="docs-assets")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_CSP,
                                                                "Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs():
        if docs_dir is None:
            return JSONResponse({"error": "API docs need the swagger-ui-py package; the schema is at "
                                          "/openapi.json"}, status_code=404)
        return get_swagger_ui_html(openapi_url="/openapi.json", title="tinct API",
                                   swagger_js_url="/_docs/swagger-ui-bundle.js",
                                   swagger_css_url="/_docs/swagger-ui.css",
                                   swagger_favicon_url="/_docs/favicon-32x32.png")

    @app.get("/healthz", summary="Liveness and load")
    async def healthz():
        stats = pool.stats()
        return {"status": "ok", "version": __version__, **asdict(stats), "models_loaded": store.loaded,
                "photos_kept": photos.stats()}

    @app.get("/api/models", summary="Models on offer, the render factor range and limits")
    async def models():
        return {
            "default": store.default,
            "models": [asdict(store.info(n)) for n in store.names],
            "render_factor": {"default": min(DEFAULT_RENDER_FACTOR, config.max_render_factor),
                              "min": RENDER_FACTOR_RANGE[0],
                              "max": config.max_render_factor},
            "features": {"hints": any(store.info(n).hints for n in store.names), "reference": False,
                         "suggestions": any(store.info(n).head == "classification" for n in store.names),
                         "palette": True, "saturation": {"min": 0.0, "max": work.MAX_SATURATION}},
            "limits": {"max_upload_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels,
                       "max_points": config.max_points},
        }

    @app.post("/api/colorize", summary="Colorize one photo; returns a PNG",
              response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "The colorized photo, same size "
                               "and luminance as the upload (alpha kept)."},
                         400: {"model": ErrorBody, "description": "Bad field or undecodable image"},
                         413: {"model": ErrorBody, "description": "Upload or image too large"},
                         415: {"model": ErrorBody, "description": "Not an image in a supported format"},
                         422: {"model": ErrorBody, "description": "Missing or mistyped field"},
                         503: {"model": ErrorBody, "description": "Busy: every worker and queue slot taken; "
                                                                  "retry after the Retry-After seconds"}})
    async def colorize(
        request: Request,
        image: UploadFile | None = File(None, description="The photo (PNG, JPEG, WebP, TIFF, BMP or GIF; "
                                                          "sniffed from its content, not its name)"),
        photo: str | None = Form(None, description="Instead of `image`: the id of a photo uploaded earlier "
                                                   "(the X-Tinct-Photo header of its answer); 410 once gone"),
        model: str | None = Form(None, description="A name from /api/models (default: the server's default)"),
        render_factor: int | None = Form(None, description=f"Working resolution = factor x 16 px, "
                                         f"{RENDER_FACTOR_RANGE[0]}..{RENDER_FACTOR_RANGE[1]} unless the server "
                                         "allows less (see /api/models)"),
        hints: str | None = Form(None, description='Color points, JSON: [{"x": 10, "y": 20, "color": '
                                                   '"#c03020", "radius": 4}, ...] in photo pixels'),
        prior_correction: float | None = Form(None, description="Classification models: 0 = bold colors as "
                                              "trained, 1 = safe and grayer (default: the model's own)"),
        palette: str | None = Form(None, description='Global hint: colors to favour, "#rrggbb,#rrggbb,..." '
                                                     "(classification models; see /api/palette)"),
        saturation: float | None = Form(None, description="Global hint: chroma multiplier, 0 (gray) to 2; "
                                                          "default 1"),
        restore: bool = Form(False, description="Restore first: scratches, dust, grain, fading (as `tinct restore`)"),
        recolor: bool = Form(False, description="A photo that already has color keeps its own colors, restored "
                                                "(X-Tinct-Colors: own), unless this is true or hints or a palette "
                                                "ask for new ones (as `tinct colorize --recolor`)"),
    ):
        await _refuse_unknown(request, COLORIZE_FIELDS)
        rf = _render_factor(render_factor)
        name, net = _model(model)
        decoding = decoding_for(net, prior_correction=prior_correction)  # bad value or model: 400, one line
        sat = 1.0 if saturation is None else saturation
        if not 0 <= sat <= work.MAX_SATURATION:
            raise RequestError(400, f"saturation must be in [0, {work.MAX_SATURATION:g}], got {sat}")
        job = work.Job(image=None, model=net, model_name=name, render_factor=rf,
                       points=work.parse_points(hints, config.max_points), max_pixels=config.max_pixels,
                       decoding=decoding, palette=work.parse_palette(palette), saturation=float(sat),
                       restore=restore, recolor=recolor)
        await _attach_photo(job, image, photo)
        try:
            result = await pool.submit(work.run, job)
        except PoolFull:
            return _busy()
        headers = {"X-Tinct-Model": name, "X-Tinct-Render-Factor": str(rf), "X-Tinct-Seconds": f"{result.seconds:.3f}",
                   "X-Tinct-Size": f"{result.width}x{result.height}", "X-Tinct-Colors": result.colors,
                   "Cache-Control": "no-store"}
        if result.photo_id:
            headers["X-Tinct-Photo"] = result.photo_id
        return Response(result.png, media_type="image/png", headers=headers)

    @app.post("/api/suggest", summary="The model's most probable colors for one spot of a photo",
              responses={400: {"model": ErrorBody, "description": "Bad field, spot outside the photo, or a model "
                                                                  "without a color distribution"},
                         410: {"model": ErrorBody, "description": "The photo id is gone; upload the image"},
                         503: {"model": ErrorBody, "description": "Busy; retry"}})
    async def suggest(
        request: Request,
        x: int = Form(..., description="Pixel column, from the left"),
        y: int = Form(..., description="Pixel row, from the top"),
        image: UploadFile | None = File(None, description="The photo"),
        photo: str | None = Form(None, description="Instead of `image`: the id of a photo uploaded earlier"),
        model: str | None = Form(None, description="A name from /api/models (default: the server's default)"),
        render_factor: int | None = Form(None, description="Working resolution = factor x 16 px (as colorized)"),
        hints: str | None = Form(None, description="Color points already placed (as for /api/colorize): "
                                                   "the model conditions on them"),
    ):
        """Up to 6 colors, most probable first: `{"suggestions": [{"color": "#rrggbb", "lab": [L, a, b],
        "probability": p}, ...], "lightness": L, "photo": id, ...}`, all at the spot's lightness and inside
        the sRGB gamut (clusters of the classification head's distribution at that spot)."""
        await _refuse_unknown(request, SUGGEST_FIELDS)
        rf = _render_factor(render_factor)
        name, net = _model(model)
        job = work.Job(image=None, model=net, model_name=name, render_factor=rf,
                       points=work.parse_points(hints, config.max_points), max_pixels=config.max_pixels)
        await _attach_photo(job, image, photo)
        try:
            return await pool.submit(work.suggest, job, x, y)
        except PoolFull:
            return _busy()

    @app.post("/api/palette", summary="The main colors of a color reference photo, for the palette hint")
    async def palette_of(request: Request, image: UploadFile = File(..., description="A color photo")):
        """`{"colors": ["#rrggbb", ...]}`: 6 k-means clusters of its chroma (as `tinct colorize --palette
        PHOTO`); send them back as `palette` to /api/colorize."""
        await _refuse_unknown(request, {"image"})
        data = await image.read()
        try:
            return {"colors": await pool.submit(work.reference_palette, data, config.max_pixels)}
        except PoolFull:
            return _busy()

    async def _refuse_unknown(request: Request, fields: set[str]) -> None:
        unknown = sorted(set((await request.form()).keys()) - fields)
        if unknown:  # a misspelt or unsupported field is an error, not silently ignored
            raise RequestError(400, f"unknown field {unknown[0]!r}; fields: {', '.join(sorted(fields))}")

    def _render_factor(render_factor: int | None) -> int:
        rf = DEFAULT_RENDER_FACTOR if render_factor is None else render_factor
        if not 1 <= rf <= config.max_render_factor:
            raise RequestError(400, f"render_factor must be 1..{config.max_render_factor}, got {rf}")
        return rf

    def _model(model: str | None):
        try:
            return store.get(model or None)
        except KeyError:
            raise RequestError(400, f"unknown model {model!r}; choose one of {', '.join(store.names)}") from None

    async def _attach_photo(job: work.Job, image: UploadFile | None, photo: str | None) -> None:
        """The job's photo: an upload (checked before queueing) or a cached one by id."""
        if image is not None:
            job.image = await image.read()
            work.open_upload(job.image, "image", config.max_pixels).close()  # refuse non-images before queueing
            job.cache = photos
        elif photo:
            job.photo, job.photo_id = photos.get(photo), photo
            if job.photo is None:
                raise RequestError(410, "photo: no longer kept on the server; upload the image again")
        else:
            raise RequestError(422, "image: field required (or photo, the id of an earlier upload)")

    def _busy() -> JSONResponse:
        return JSONResponse({"error": f"server busy: all {pool.capacity} slots taken; retry shortly"},
                            status_code=503, headers={"Retry-After": "1"})

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(_req: Request, e: RequestError):
        return JSONResponse({"error": e.message}, status_code=e.status)

    @app.exception_handler(TinctError)
    async def tinct_error(_req: Request, e: TinctError):
        return JSONResponse({"error": str(e)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_req: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_req: Request, e: StarletteHTTPException):
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code, headers=e.headers)

    @app.exception_handler(Exception)
    async def internal_error(_req: Request, e: Exception):
        log.exception("internal error")
        return JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)


def _swagger_dir() -> Path | None:
    """Swagger UI's files from the swagger-ui-py package, so /docs needs no CDN."""
    try:
        import swagger_ui
    except ImportError:
        return None
    d = Path(swagger_ui.__file__).parent / "static"
    return d if (d / "swagger-ui-bundle.js").is_file() else None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so a taken port is a one-line error before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise TinctError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    sock.listen(2048)
    return sock


def run_server(config: ServeConfig, on_ready=None) -> None:
    """Serve until interrupted. ``on_ready(url)`` is called once the socket listens."""
    import torch
    import uvicorn
    threads = config.torch_threads or max(1, (os.cpu_count() or 1) // config.workers)
    torch.set_num_threads(threads)  # workers x threads = cores: more only makes them fight
    sock = bind(config.host, config.port)
    try:
        app = create_app(config)
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    if on_ready:
        on_ready(f"http://{'[' + host + ']' if ':' in host else host}:{port}/")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=5))
    asyncio.run(server.serve(sockets=[sock]))
