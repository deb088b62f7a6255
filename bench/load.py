"""Load test of `tinct serve` on loopback: latency and errors at 1, 8 and 32 concurrent clients.

    nice -n 19 python bench/load.py [--workers 2] [--queue 32] [--levels 1 8 32] [--requests 32]
                                    [--max-seconds 120] [--note "..."]

Starts the server as a subprocess on 127.0.0.1 (a free port), posts one grayscale photo over and over
(each level bounded by a request count and a time limit), then stops it. A last row runs 32 clients
against a server with a short queue, to show overload refused with 503 rather than piling up.
Prints a markdown table and writes it to bench/results/load.md.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from tinct.pipeline import DEFAULT_RENDER_FACTOR, working_size
from tinct.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
BSDS = ROOT.parent / "shared" / "data" / "train" / "bsds500"


def photo_bytes() -> tuple[bytes, str]:
    """A grayscale JPEG of a real 481x321 photo (BSDS500) if the data is there, else a synthetic one."""
    files = sorted(BSDS.rglob("*.jpg"))[:1] if BSDS.exists() else []
    if files:
        im, what = Image.open(files[0]).convert("L"), f"{files[0].name} (BSDS500), grayscale"
    else:
        y, x = np.mgrid[0:375, 0:500]
        im, what = Image.fromarray(((x + y) % 256).astype(np.uint8)), "synthetic gradient"
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=92)
    return buf.getvalue(), f"{what}, {im.size[0]}x{im.size[1]}, {len(buf.getvalue()) // 1024} KiB JPEG"


class Server:
    """`tinct serve --port 0` in a subprocess; the URL read from its start-up line."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "tinct", "serve", "--host", "127.0.0.1", "--port", "0",
                                      *args], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            m = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", line)
            if m:
                self.url = m.group(1)
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise SystemExit(f"server did not start: {line.strip()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def run_level(url: str, data: bytes, clients: int, requests: int, max_seconds: float, rf: int) -> dict:
    """``clients`` loops posting until ``requests`` were sent or ``max_seconds`` passed."""
    latencies, statuses, failures = [], [], 0
    sent = 0
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=max_seconds + 30, limits=limits) as http:
        async def client():
            nonlocal sent, failures
            while sent < requests and time.monotonic() < deadline:
                sent += 1
                t = time.perf_counter()
                try:
                    r = await http.post("/api/colorize", files={"image": ("p.jpg", data, "image/jpeg")},
                                        data={"render_factor": str(rf)})
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t)
                except httpx.HTTPError:
                    failures += 1
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - start
        alive = (await http.get("/healthz")).json()["status"] == "ok"
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"clients": clients, "sent": sent, "ok": statuses.count(200), "busy": statuses.count(503),
            "errors": len(statuses) - statuses.count(200) - statuses.count(503) + failures,
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "rps": statuses.count(200) / wall, "wall": wall, "alive": alive}


def row(label: str, r: dict) -> str:
    return (f"| {label} | {r['sent']} | {r['ok']} | {r['busy']} | {r['errors']} | {r['p50'] * 1000:.0f} | "
            f"{r['p99'] * 1000:.0f} | {r['rps']:.2f} | {'yes' if r['alive'] else 'NO'} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=32)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=32, help="per level, at least 2 per client")
    ap.add_argument("--max-seconds", type=float, default=120, help="per level")
    ap.add_argument("--render-factor", type=int, default=DEFAULT_RENDER_FACTOR)
    ap.add_argument("--overload-queue", type=int, default=4, help="queue of the extra overload row (0: skip it)")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "load.md"))
    args = ap.parse_args()

    data, what = photo_bytes()
    with Image.open(io.BytesIO(data)) as im:
        h, w = working_size(im.height, im.width, args.render_factor, load_model(args.model).stride)
    what += f"; the network works at {w}x{h}"
    load_before = os.getloadavg()
    common = ["--model", args.model, "--workers", str(args.workers)]
    lines = []

    def measure(server, clients: int, label: str) -> None:
        r = asyncio.run(run_level(server.url, data, clients, max(args.requests, 2 * clients), args.max_seconds,
                                  args.render_factor))
        lines.append(row(label, r))
        print(lines[-1], flush=True)

    server = Server(*common, "--queue", str(args.queue))
    try:
        asyncio.run(run_level(server.url, data, 1, 2, 60, args.render_factor))  # warm-up, not counted
        for c in args.levels:
            measure(server, c, f"{c}")
    finally:
        server.stop()
    if args.overload_queue:
        c = max(args.levels)
        server = Server(*common, "--queue", str(args.overload_queue))
        try:
            measure(server, c, f"{c}, queue {args.overload_queue} (overload)")
        finally:
            server.stop()

    cpu = platform.processor() or platform.machine()
    table = "\n".join([
        "| clients | sent | 200 | 503 | other errors | p50 ms | p99 ms | ok/s | server up after |",
        "|---|---|---|---|---|---|---|---|---|", *lines])
    text = f"""# Load test of `tinct serve`

`nice -n 19 python bench/load.py {' '.join(sys.argv[1:])}`

Server: `tinct serve --model {args.model} --workers {args.workers} --queue {args.queue}` on 127.0.0.1 (a subprocess),
render factor {args.render_factor}. Photo: {what}. Latency of successful requests, from the client, including upload
and PNG download. Each level: at most max({args.requests}, 2 x clients) requests or {args.max_seconds:.0f} s.
The last row is {max(args.levels)} clients against a server whose queue holds only {args.overload_queue}: the extra
requests are refused at once with 503 (the page and API clients retry), and the server stays up.

Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}; load average before the run
{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}.
{args.note}

{table}
"""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".md.part")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(table)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
