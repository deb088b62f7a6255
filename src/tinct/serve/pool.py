"""A bounded pool of inference threads: ``workers`` run, ``queue`` wait, the rest are refused.

Threads, not processes: the model is loaded once and shared (forward passes in
eval mode under ``no_grad`` mutate nothing), and torch releases the GIL inside
its kernels, so two threads keep two cores busy. Refusing at once when the
queue is full (the server answers 503) keeps latency and memory bounded under
overload instead of letting requests pile up until the process falls over.
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass


class PoolFull(Exception):
    """Every worker is busy and the queue is full."""


@dataclass
class PoolStats:
    workers: int
    capacity: int   # workers + queue: the most requests admitted at once
    running: int
    queued: int
    done: int
    refused: int


class InferencePool:
    def __init__(self, workers: int, queue: int):
        if workers < 1 or queue < 0:
            raise ValueError(f"need workers >= 1 and queue >= 0, got {workers}, {queue}")
        self.workers = workers
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinct-worker")
        self._lock = threading.Lock()
        self._admitted = 0
        self._done = 0
        self._refused = 0

    def submit(self, fn, *args) -> asyncio.Future:
        """Run ``fn(*args)`` on a worker; the awaitable result. Raises ``PoolFull`` when at capacity.

        A slot is freed when the work really ends (a done callback), not when the
        caller stops waiting: a client that hangs up must not let extra work in.
        Cancelling the returned future cancels work that has not started yet.
        """
        with self._lock:
            if self._admitted >= self.capacity:
                self._refused += 1
                raise PoolFull
            self._admitted += 1
        try:
            fut = self._executor.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        fut.add_done_callback(self._release)
        return asyncio.wrap_future(fut)

    def _release(self, _fut: Future | None) -> None:
        with self._lock:
            self._admitted -= 1
            self._done += 1

    def stats(self) -> PoolStats:
        with self._lock:
            running = min(self._admitted, self.workers)
            return PoolStats(self.workers, self.capacity, running, self._admitted - running, self._done,
                             self._refused)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
