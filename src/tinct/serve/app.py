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
from .pool import InferencePool, PoolFull
from .store import ModelStore

STATIC_DIR = Path(__file__).parent / "static"
COLORIZE_FIELDS = {"image", "model", "render_factor", "hints", "prior_correction", "restore"}
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


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """Build the app. Unknown or unreadable models raise ``TinctError`` here, before any request."""
    config = config or ServeConfig()
    if not RENDER_FACTOR_RANGE[0] <= config.max_render_factor <= RENDER_FACTOR_RANGE[1]:
        raise TinctError(f"max render factor must be {RENDER_FACTOR_RANGE[0]}..{RENDER_FACTOR_RANGE[1]}, "
                         f"got {config.max_render_factor}")
    store = ModelStore(config.models)
    store.get(None)  # load the default now: a broken file fails the start, and the first request is not slow
    pool = InferencePool(config.workers, config.queue)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        pool.shutdown()

    app = FastAPI(title="tinct", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Colorize grayscale photos. `POST /api/colorize` with a multipart `image` "
                              "returns the colorized PNG; the page at `/` does the same in a browser.")
    app.state.config, app.state.store, app.state.pool = config, store, pool
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
        return {"status": "ok", "version": __version__, **asdict(stats), "models_loaded": store.loaded}

    @app.get("/api/models", summary="Models on offer, the render factor range and limits")
    async def models():
        return {
            "default": store.default,
            "models": [asdict(store.info(n)) for n in store.names],
            "render_factor": {"default": min(DEFAULT_RENDER_FACTOR, config.max_render_factor),
                              "min": RENDER_FACTOR_RANGE[0],
                              "max": config.max_render_factor},
            "features": {"hints": any(store.info(n).hints for n in store.names), "reference": False},
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
        image: UploadFile = File(..., description="The photo (PNG, JPEG, WebP, TIFF, BMP or GIF; sniffed "
                                                  "from its content, not its name)"),
        model: str | None = Form(None, description="A name from /api/models (default: the server's default)"),
        render_factor: int | None = Form(None, description=f"Working resolution = factor x 16 px, "
                                         f"{RENDER_FACTOR_RANGE[0]}..{RENDER_FACTOR_RANGE[1]} unless the server "
                                         "allows less (see /api/models)"),
        hints: str | None = Form(None, description='Color points, JSON: [{"x": 10, "y": 20, "color": '
                                                   '"#c03020", "radius": 4}, ...] in photo pixels'),
        prior_correction: float | None = Form(None, description="Classification models: 0 = bold colors as "
                                              "trained, 1 = safe and grayer (default: the model's own)"),
        restore: bool = Form(False, description="Restore first: scratches, dust, grain, fading (as `tinct restore`)"),
    ):
        unknown = sorted(set((await request.form()).keys()) - COLORIZE_FIELDS)
        if unknown:  # a misspelt or unsupported field (e.g. a reference photo) is an error, not silently ignored
            raise RequestError(400, f"unknown field {unknown[0]!r}; fields: {', '.join(sorted(COLORIZE_FIELDS))}")
        rf = DEFAULT_RENDER_FACTOR if render_factor is None else render_factor
        if not RENDER_FACTOR_RANGE[0] <= rf <= config.max_render_factor:
            raise RequestError(400, f"render_factor must be {RENDER_FACTOR_RANGE[0]}..{config.max_render_factor}, "
                                    f"got {rf}")
        try:
            name, net = store.get(model or None)
        except KeyError:
            raise RequestError(400, f"unknown model {model!r}; choose one of {', '.join(store.names)}") from None
        decoding = decoding_for(net, prior_correction=prior_correction)  # bad value or model: 400, one line
        points = work.parse_points(hints, config.max_points)
        data = await image.read()
        work.open_upload(data, "image", config.max_pixels).close()  # refuse non-images before queueing
        job = work.Job(image=data, model=net, model_name=name, render_factor=rf, points=points,
                       max_pixels=config.max_pixels, decoding=decoding, restore=restore)
        try:
            result = await pool.submit(work.run, job)
        except PoolFull:
            return JSONResponse({"error": f"server busy: all {pool.capacity} slots taken; retry shortly"},
                                status_code=503, headers={"Retry-After": "1"})
        return Response(result.png, media_type="image/png", headers={
            "X-Tinct-Model": name, "X-Tinct-Render-Factor": str(rf), "X-Tinct-Seconds": f"{result.seconds:.3f}",
            "X-Tinct-Size": f"{result.width}x{result.height}", "Cache-Control": "no-store"})

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
