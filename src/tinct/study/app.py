"""The study's web app: participants judge pairs; the server keeps the truth to itself.

A participant's page asks ``POST /api/start`` for a random id, then repeatedly ``GET /api/next``
(two image URLs, left and right, in random order) and ``POST /api/answer`` (which side is real).
The answer says nothing about being right; image URLs are random one-trial tokens that carry no
photo or model name; only the current trial's two images are reachable, and only the study's photos
are served (no API docs, no file paths). Answers go to the CSV (``answers.py``) one row each.
"""
from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from ..serve.app import PAGE_CSP, _add_error_handlers, bind
from ..serve.errors import RequestError
from ..serve.limits import BodyLimit
from .answers import AnswerLog
from .pairs import Pair, StudyConfig

STATIC_DIR = Path(__file__).parent / "static"
MAX_SESSIONS = 10_000


@dataclass
class Trial:
    token: str
    pair: int
    model: str
    real_side: str                  # "left" or "right"
    images: dict[str, bytes]        # image token -> PNG


@dataclass
class Session:
    participant: str
    order: list[tuple[int, str]]    # (pair index, model) in the order shown
    done: int = 0
    trial: Trial | None = None
    started: float = field(default_factory=time.monotonic)


class Study:
    """The participants' state, thread-safe. ``pairs`` come from ``pairs.prepare``."""

    def __init__(self, pairs: list[Pair], config: StudyConfig, log: AnswerLog):
        self.pairs, self.config, self.log = pairs, config, log
        self.models = list(pairs[0].fakes)
        self.sessions: dict[str, Session] = {}
        self.images: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(secrets.randbits(64))

    @property
    def per_participant(self) -> int:
        n = len(self.pairs)
        return min(n, self.config.trials) if self.config.trials else n

    def start(self) -> dict:
        with self._lock:
            if len(self.sessions) >= MAX_SESSIONS:
                raise RequestError(503, "the study is full")
            pid = secrets.token_hex(8)
            photos = self._rng.sample(range(len(self.pairs)), self.per_participant)  # each photo at most once
            offset = self._rng.randrange(len(self.models))  # models take turns: equal shares per participant
            order = [(p, self.models[(offset + i) % len(self.models)]) for i, p in enumerate(photos)]
            self.sessions[pid] = Session(pid, order)
        return {"participant": pid, "total": len(order), "show_seconds": self.config.show_seconds}

    def _session(self, pid) -> Session:
        s = self.sessions.get(pid) if isinstance(pid, str) else None
        if s is None:
            raise RequestError(404, "unknown participant; start again")
        return s

    def next(self, pid: str) -> dict:
        with self._lock:
            s = self._session(pid)
            if s.done >= len(s.order):
                return {"done": True, "answered": s.done, "total": len(s.order)}
            if s.trial is None:
                pair_i, model = s.order[s.done]
                pair = self.pairs[pair_i]
                real_side = self._rng.choice(["left", "right"])
                real, fake = pair.truth_png, pair.fakes[model]
                left, right = (real, fake) if real_side == "left" else (fake, real)
                tl, tr = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
                s.trial = Trial(secrets.token_urlsafe(12), pair_i, model, real_side, {tl: left, tr: right})
                self.images.update(s.trial.images)
            t = s.trial
            tl, tr = list(t.images)
            return {"trial": t.token, "left": f"/api/image/{tl}", "right": f"/api/image/{tr}",
                    "index": s.done + 1, "total": len(s.order), "show_seconds": self.config.show_seconds}

    def image(self, token: str) -> bytes:
        with self._lock:
            data = self.images.get(token)
        if data is None:
            raise RequestError(404, "no such image")
        return data

    def answer(self, pid, trial, choice, response_ms) -> dict:
        if choice not in ("left", "right"):
            raise RequestError(400, "choice must be 'left' or 'right'")
        if isinstance(response_ms, bool) or not isinstance(response_ms, (int, float)) \
                or not 0 <= response_ms <= 1e8:
            raise RequestError(400, "response_ms must be a number of milliseconds")
        with self._lock:
            s = self._session(pid)
            t = s.trial
            if t is None or trial != t.token:
                raise RequestError(409, "that pair is not the one being shown; ask for the next pair")
            row = {"time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "participant": pid,
                   "trial": s.done + 1, "photo": self.pairs[t.pair].photo, "model": t.model,
                   "real_side": t.real_side, "chosen_side": choice, "fooled": int(choice != t.real_side),
                   "response_ms": int(response_ms), "shown_seconds": self.config.show_seconds or ""}
            self.log.append(row)  # under the lock: rows in answer order, one writer at a time
            for tok in t.images:
                self.images.pop(tok, None)
            s.trial = None
            s.done += 1
            return {"answered": s.done, "total": len(s.order)}


def create_study_app(study: Study) -> FastAPI:
    app = FastAPI(title="tinct study", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.study = study
    app.add_middleware(BodyLimit, max_bytes=64 * 1024)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "study.html", headers={"Content-Security-Policy": PAGE_CSP,
                                                                "Cache-Control": "no-cache"})

    @app.post("/api/start")
    async def start():
        return study.start()

    @app.get("/api/next")
    async def next_pair(participant: str = ""):
        return study.next(participant)

    @app.get("/api/image/{token}")
    async def image(token: str):
        return Response(study.image(token), media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/answer")
    async def answer(request: Request):
        try:
            body = await request.json()
        except ValueError:
            raise RequestError(400, "send JSON: {participant, trial, choice, response_ms}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "send a JSON object")
        return await asyncio.to_thread(study.answer, body.get("participant"), body.get("trial"),
                                       body.get("choice"), body.get("response_ms", 0))

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        return {"status": "ok"}

    return app


def run_study(config: StudyConfig, on_ready=None, log=print) -> None:
    """Prepare the pairs, then serve until interrupted."""
    import uvicorn
    from .pairs import prepare
    sock = bind(config.host, config.port)  # a taken port fails before minutes of colorizing
    try:
        answers = AnswerLog(config.answers)
        pairs = prepare(config, log=log)
        app = create_study_app(Study(pairs, config, answers))
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    if on_ready:
        on_ready(f"http://{'[' + host + ']' if ':' in host else host}:{port}/", len(pairs))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=5))
    asyncio.run(server.serve(sockets=[sock]))
