"""Decoded photos kept for a short time under random ids, so an edit does not re-upload the photo.

The page uploads a photo once; the answer names it (``X-Tinct-Photo``), and later requests (a moved point,
a new color, a suggestion) send that id in the ``photo`` field instead of the image. What is kept is the
decoded luminance (float32, 4 bytes a pixel) and alpha: decoding is skipped too. The cache is bounded in
count and bytes (least recently used out first) and in time (``ttl``); an id is 128 random bits
(``secrets``), so one client cannot guess another's photo. A request for an id that is gone gets 410 and
the page uploads the photo again.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..io import LoadedImage


@dataclass
class PhotoCacheConfig:
    max_count: int = 32                 # photos kept at once
    max_bytes: int = 1024 * 2**20       # their decoded size in all (L float32 + alpha)
    ttl: float = 900.0                  # seconds since last use


def nbytes(photo: LoadedImage) -> int:
    rgb = getattr(photo, "rgb", None)  # restore.run.LoadedPhoto: a color upload keeps its colors
    return photo.L.nbytes + (photo.alpha.nbytes if photo.alpha is not None else 0) + (rgb.nbytes if rgb is not None else 0)


class PhotoCache:
    """Thread-safe; ``put`` from worker threads, ``get`` from anywhere."""

    def __init__(self, config: PhotoCacheConfig | None = None, clock=time.monotonic):
        self.config = config or PhotoCacheConfig()
        self._clock = clock
        self._items: OrderedDict[str, tuple[LoadedImage, float]] = OrderedDict()  # oldest use first
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, photo: LoadedImage) -> str | None:
        """Keep ``photo``; its new id, or None when it alone is over the byte budget (not kept)."""
        size = nbytes(photo)
        if size > self.config.max_bytes or self.config.max_count < 1:
            return None
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._expire()
            while self._items and (len(self._items) >= self.config.max_count
                                   or self._bytes + size > self.config.max_bytes):
                self._drop(next(iter(self._items)))
            self._items[key] = (photo, self._clock())
            self._bytes += size
        return key

    def get(self, key: str) -> LoadedImage | None:
        """The photo under ``key`` (its lease renewed), or None when unknown or expired."""
        with self._lock:
            self._expire()
            item = self._items.get(key)
            if item is None:
                return None
            self._items[key] = (item[0], self._clock())
            self._items.move_to_end(key)
            return item[0]

    def stats(self) -> dict:
        with self._lock:
            return {"photos": len(self._items), "bytes": self._bytes}

    def _expire(self) -> None:
        now = self._clock()
        while self._items:
            key, (_, used) = next(iter(self._items.items()))
            if now - used <= self.config.ttl:
                break
            self._drop(key)

    def _drop(self, key: str) -> None:
        photo, _ = self._items.pop(key)
        self._bytes -= nbytes(photo)
