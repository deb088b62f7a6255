"""Speed and memory of `tinct restore` on one gray scan, for the shipped restorer and candidate networks.

    python bench/restore_speed.py [--model FILE ...] [--sizes 2 12] [--repeats 2]

Each row is the fastest of ``--repeats`` fresh processes (peak RSS: the largest seen), as in ``bench/speed.py``,
whose helpers it uses: process wall time (start-up included) and, inside it, what ``restore_file`` spends on
reading, the network (``run.run_network``: the whole photo up to ``run.NETWORK_PIXELS``, larger scans shrunk for
it), inpainting inside the mask, non-local means and writing. Every model is measured in the same run, on the same
photo. Writes bench/results/restore_speed.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import ROOT, fmt, gray_photo, run_best  # noqa: E402


def child_restore(a: dict) -> dict:
    """One scan through ``restore_file``, each step timed by wrapping the function the flow calls."""
    from tinct.restore import classical, run
    spent = {"network": 0.0, "inpaint": 0.0, "denoise": 0.0, "read": 0.0, "write": 0.0}

    def timed(module, name, key):
        fn = getattr(module, name)

        def wrapper(*args, **kw):
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[key] += time.perf_counter() - t
        setattr(module, name, wrapper)

    timed(run, "run_network", "network")
    timed(classical, "inpaint", "inpaint")
    timed(classical, "denoise", "denoise")
    timed(run, "load_photo", "read")
    timed(run, "save_image", "write")
    net = run.load_restorer(a["model"])  # cached: restore_file below reuses it, so "restore" excludes loading
    params = sum(p.numel() for p in net.parameters())
    t2 = time.perf_counter()
    run.restore_file(a["src"], a["dest"], run.RestoreOptions(model=a["model"]))
    t3 = time.perf_counter()
    return {**spent, "restore": t3 - t2, "params_m": params / 1e6}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", nargs="+", default=[], help="candidate restoration files (the shipped one is always in)")
    ap.add_argument("--sizes", type=float, nargs="+", default=[2, 12])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "restore_speed.md"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child_restore(json.loads(args.child))))
        return
    from tinct.restore.run import NETWORK_PIXELS, RESTORE_MODEL
    from tinct.weights import WEIGHTS_DIR
    models = [("shipped", str(WEIGHTS_DIR / f"{RESTORE_MODEL}.safetensors"))] + [(Path(m).parent.name or m, m)
                                                                                for m in args.model]
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinct-restore-speed-") as tmp:
        for mp in args.sizes:
            src = Path(tmp) / f"gray_{mp}mp.png"
            w, h = gray_photo(src, mp)
            for label, path in models:
                payload = json.dumps({"model": path, "src": str(src), "dest": str(Path(tmp) / "out.png")})
                r = run_best([sys.executable, __file__, "--child", payload], args.repeats)
                r.update(json.loads(r.pop("stdout").strip().splitlines()[-1]))
                rows.append((mp, w, h, label, r))
                print(f"restore {mp} MP {label}: {r['wall']:.1f} s wall, network {r['network']:.1f} s, "
                      f"{r['rss_mb']:.0f} MB", file=sys.stderr)
    load_after = os.getloadavg()
    lines = ["# Restoration speed (bench/restore_speed.py)", "",
             f"`python bench/restore_speed.py {' '.join(sys.argv[1:])}`, {time.strftime('%Y-%m-%d %H:%M')}, "
             f"{os.cpu_count()} CPU cores; load average before / after {load_before[0]:.1f} / {load_after[0]:.1f} "
             "(above 0.5: other processes shared the CPU). A gray PNG in, `tinct restore`'s default flow, a PNG out; "
             f"the network sees at most {NETWORK_PIXELS / 1e6:g} MP.", "",
             "| scan | network | parameters M | process wall s | restore s | read | network | inpaint | denoise "
             "| write | CPU s | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for mp, w, h, label, r in rows:
        lines.append(f"| {mp:g} MP ({w}x{h}) | {label} | {r['params_m']:.2f} | {fmt(r['wall'])} | {fmt(r['restore'])} "
                     f"| {fmt(r['read'])} | {fmt(r['network'])} | {fmt(r['inpaint'])} | {fmt(r['denoise'])} "
                     f"| {fmt(r['write'])} | {fmt(r['cpu'])} | {r['rss_mb']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
