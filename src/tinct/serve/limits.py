"""ASGI middleware refusing request bodies over a byte limit with ``413 {"error": ...}``.

Checked twice: the declared Content-Length (refused before a byte is read) and
the bytes actually received (a chunked upload declares nothing). Once over the
limit the app sees a disconnect, whatever it would have answered is dropped,
and the client gets the 413 instead.
"""
from __future__ import annotations

import json


async def send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> dict:
        return {"error": f"request too large: the limit is {self.max_bytes} bytes ({self.max_bytes / 2**20:.1f} MiB)"}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            return await send_json(send, 413, self._message())

        received = 0
        too_large = False
        started = False

        async def limited_receive():
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if too_large and not started:
                return  # the app's answer to a body it never fully got: replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await send_json(send, 413, self._message())
