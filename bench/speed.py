"""Speed and memory of tinct beside Zhang et al.'s ECCV16 network, on this machine's CPU.

    python bench/speed.py [--model default] [--sizes 0.5 2 12 24] [--folder 64] [--train-steps 3]

Every measurement that reports memory runs in a fresh process (peak RSS from
``os.wait4``, so one size's peak cannot hide another's); times are the fastest of
several runs, since other processes can only add time. Tables:

1. colorize one photo (gray PNG in, PNG out) at 0.5, 2, 12, 24 MP: process wall
   time (start-up included), the colorize part alone (read, network, recombine,
   write; the network always at the same working size), CPU time, peak RSS; the
   default through ``--backend auto`` (onnxruntime, torch never imported: what
   ``tinct colorize`` runs) and through torch;
2. the acceptance pair through the real CLI: ``tinct colorize`` on 800x600 and
   4000x3000 gray PNGs (auto, and ``--backend torch``);
3. the network alone at the working size of a 4:3 photo at the default render
   factor (printed): torch, ONNX fp32, ONNX dynamic int8 (and int8's ab error against fp32);
4. a folder of 256x256 photos: images per second (model loaded once);
5. training: images per second at 128 and 256 px crops (batch 8, Adam step included).

Every row is measured for the default model and for ``eccv16`` (randomly
initialised: speed does not depend on the weights) at the same render factor, the
shipped default's (``pipeline.DEFAULT_RENDER_FACTOR``); each table prints the working size.
Writes bench/results/speed.md. Wall times suffer when other processes use the
CPU: the load average before and after is recorded with the results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SOURCE_PHOTO = DATA / "historical" / "ddcolor" / "Audrey Hepburn.jpg"
TRAIN_DATA = DATA / "train" / "bsds500"
FOLDER_DATA = DATA / "val" / "imagenette-val500"

def work_hw() -> tuple[int, int]:
    """The working size of a 4:3 photo at the default render factor (a multiple of both models' strides)."""
    from tinct.pipeline import DEFAULT_RENDER_FACTOR, working_size
    return working_size(3000, 4000, DEFAULT_RENDER_FACTOR, 16)


# ------------------------------------------------------------------ children ---
def child_colorize(a: dict) -> dict:
    """One photo, timed stage by stage; the parent adds process wall time and peak RSS."""
    t = [time.perf_counter()]
    c0 = time.process_time()
    from tinct.io import load_image, save_image
    from tinct.onnxrt import load_backend
    from tinct.pipeline import ColorizeOptions, predict_chroma, recombine
    t.append(time.perf_counter())
    model = load_backend(a.get("backend", "torch"), a["model"], network_only=True)
    t.append(time.perf_counter())
    c1 = time.process_time()
    loaded = load_image(a["src"])
    t.append(time.perf_counter())
    ab = predict_chroma(model, loaded.L, ColorizeOptions())
    t.append(time.perf_counter())
    rgb = recombine(loaded.L, ab)
    t.append(time.perf_counter())
    save_image(rgb, a["dest"], loaded.alpha)
    t.append(time.perf_counter())
    names = ["import", "model", "read", "network", "recombine", "write"]
    out = {n: t[i + 1] - t[i] for i, n in enumerate(names)}
    out["colorize"] = t[-1] - t[2]
    out["colorize_cpu"] = time.process_time() - c1
    out["startup_cpu"] = c1 - c0
    out["working"] = list(ab.shape[-2:])
    out["torch_imported"] = "torch" in sys.modules
    return out


def child_forward(a: dict) -> dict:
    """The network alone at ``work_hw()``: torch, and for the default model ONNX fp32 / int8."""
    import numpy as np
    import torch
    from tinct.onnxrt import OnnxModel, export_onnx
    from tinct.weights import load_model
    model = load_model(a["model"])
    L = torch.rand(1, 1, *work_hw(), generator=torch.Generator().manual_seed(0)) * 100

    def timed(fn, n=a.get("repeats", 5)):
        fn()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(min(times))  # the least disturbed run: other processes only ever add time

    with torch.no_grad():
        out = {"torch": timed(lambda: model(L))}
        ref = model(L)["ab"].numpy()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one thread cannot wait at a barrier for a thread another process preempted
        out["torch_1t"] = timed(lambda: model(L))
        torch.set_num_threads(threads)
    if a.get("onnx"):
        from onnxruntime.quantization import QuantType, quantize_dynamic
        fp32 = Path(a["tmp"]) / "m.onnx"
        int8 = Path(a["tmp"]) / "m_int8.onnx"
        export_onnx(model, fp32)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QUInt8)
        for name, path in (("onnx", fp32), ("onnx_int8", int8)):
            m = OnnxModel(path)
            out[name] = timed(lambda: m(L))
            out[name + "_err"] = float(np.abs(m(L)["ab"].numpy() - ref).max())
            out[name + "_err_mean"] = float(np.abs(m(L)["ab"].numpy() - ref).mean())
            out[name + "_mb"] = path.stat().st_size / 1e6
    return out


def child_folder(a: dict) -> dict:
    from tinct.batch import colorize_paths, plan_jobs
    from tinct.onnxrt import load_backend
    from tinct.pipeline import ColorizeOptions
    model = load_backend(a.get("backend", "torch"), a["model"])
    jobs = plan_jobs([Path(a["src"])], Path(a["dest"]))
    t = time.perf_counter()
    failed = colorize_paths(model, jobs, ColorizeOptions(), overwrite=True, progress=False).failed
    dt = time.perf_counter() - t
    return {"img_s": (len(jobs) - failed) / dt, "n": len(jobs), "failed": failed}


def child_train(a: dict) -> dict:
    from tinct.train import Trainer, TrainConfig
    cfg = TrainConfig(model=a["family"], model_options=a["options"], data=[a["data"]], out=a["out"], steps=10 ** 6,
                      size=a["size"], batch=a["batch"], cache_size=256, val_images=1, cache_dir=a["cache"])
    tr = Trainer(cfg)
    times = []
    for step in range(a["warmup"] + a["steps"]):
        t = time.perf_counter()
        tr.model.train_step(tr.batch(step), step, tr.optims, tr.loss_fn)  # the trainer's step, without logging
        times.append(time.perf_counter() - t)
    per_step = sum(times[a["warmup"]:]) / a["steps"]
    return {"img_s": a["batch"] / per_step, "s_per_step": per_step,
            "params_m": sum(p.numel() for p in tr.model.parameters()) / 1e6}


CHILDREN = {"colorize": child_colorize, "forward": child_forward, "folder": child_folder, "train": child_train}


# -------------------------------------------------------------------- parent ---
def run(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; its wall time, CPU time and peak RSS (of that process alone), and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, error = out.read().decode(), err.read().decode()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {error[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "stdout": text}


def run_best(cmd: list[str], repeats: int) -> dict:
    """The fastest of ``repeats`` runs of ``cmd`` (peak RSS: the largest seen)."""
    runs = [run(cmd) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["wall"])
    return dict(best, rss_mb=max(r["rss_mb"] for r in runs))


def child(kind: str, args: dict, repeats: int = 1) -> dict:
    """The child's report from the fastest of ``repeats`` fresh processes (peak RSS: the largest seen)."""
    r = run_best([sys.executable, __file__, "--child", kind, json.dumps(args)], repeats)
    r.update(json.loads(r.pop("stdout").strip().splitlines()[-1]))
    return r


def gray_photo(path: Path, megapixels: float) -> tuple[int, int]:
    """A real photo (gray, 4:3) resized to ``megapixels``, saved as PNG."""
    from PIL import Image
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    with Image.open(SOURCE_PHOTO) as im:
        im.convert("L").resize((w, h), Image.Resampling.BICUBIC).save(path)
    return w, h


def folder_photos(dest: Path, count: int) -> None:
    from PIL import Image, ImageOps
    files = sorted(FOLDER_DATA.rglob("*.JPEG")) + sorted(FOLDER_DATA.rglob("*.jpg"))
    dest.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files[:: max(1, len(files) // count)][:count]):
        with Image.open(f) as im:
            ImageOps.fit(im.convert("L"), (256, 256)).save(dest / f"{i:03d}.png")


def eccv16_file(path: Path) -> None:
    import torch
    from tinct.models import create_model
    from tinct.weights import save_model
    torch.manual_seed(0)
    save_model(create_model("eccv16").eval(), path, trained_on="random init (speed only)")


def default_options(model: str) -> tuple[str, dict]:
    import json as _json
    from tinct.weights import read_header, resolve_model_path
    meta = read_header(resolve_model_path(model))
    return meta["model"], _json.loads(meta["config"])


def fmt(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.5, 2, 12, 24])
    ap.add_argument("--folder", type=int, default=64, help="Photos in the folder-throughput run.")
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3,
                    help="Fresh processes per colorize row; the fastest is reported (peak RSS: the largest).")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed.md"))
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    for name in ("folder", "train_steps", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](json.loads(args.child[1]))))
        return

    import torch
    from tinct.pipeline import DEFAULT_RENDER_FACTOR, working_size
    load_before = os.getloadavg()
    started = time.time()
    lines = []
    with tempfile.TemporaryDirectory(prefix="tinct-speed-") as tmp:
        tmp = Path(tmp)
        ecc = tmp / "eccv16.safetensors"
        eccv16_file(ecc)
        models = [("default", args.model), ("eccv16", str(ecc))]
        from tinct.onnxrt import cached_export
        from tinct.weights import resolve_model_path
        cached_export(resolve_model_path(args.model))  # what the first `tinct colorize` does, once: not timed

        # 1. one photo, each size, each model
        rows = []
        for mp in args.sizes:
            src = tmp / f"gray_{mp}mp.png"
            w, h = gray_photo(src, mp)
            for label, m, backend in (("default", args.model, "auto"), *((lb, m, "torch") for lb, m in models)):
                r = child("colorize", {"model": m, "backend": backend, "src": str(src), "dest": str(tmp / "out.png")},
                          args.repeats)
                rows.append((mp, w, h, label, backend, r))
                print(f"colorize {mp} MP {label} {backend}: {r['wall']:.2f} s wall, {r['colorize']:.2f} s colorize, "
                      f"{r['rss_mb']:.0f} MB", file=sys.stderr)
        lines += [f"## Colorize one photo (gray PNG -> color PNG) at render factor {DEFAULT_RENDER_FACTOR}, fastest of "
                  f"{args.repeats} fresh processes", "",
                  "auto = `tinct colorize`'s default backend: the shipped model's cached ONNX copy in onnxruntime; "
                  "'torch imported' says whether the process ever loaded torch.", "",
                  "| photo | model | backend | working size | process wall s | colorize s | read | network | recombine "
                  "| write | CPU s | peak RSS MB | torch imported |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for mp, w, h, label, backend, r in rows:
            lines.append(f"| {mp:g} MP ({w}x{h}) | {label} | {backend} | {r['working'][1]}x{r['working'][0]} "
                         f"| {fmt(r['wall'])} | {fmt(r['colorize'])} | {fmt(r['read'])} | {fmt(r['network'])} "
                         f"| {fmt(r['recombine'])} | {fmt(r['write'])} | {fmt(r['cpu'])} | {r['rss_mb']:.0f} "
                         f"| {'yes' if r['torch_imported'] else 'no'} |")

        # 2. the acceptance pair through the CLI
        small, big = tmp / "gray_800x600.png", tmp / "gray_4000x3000.png"
        from PIL import Image
        with Image.open(SOURCE_PHOTO) as im:
            im.convert("L").resize((800, 600), Image.Resampling.BICUBIC).save(small)
            im.convert("L").resize((4000, 3000), Image.Resampling.BICUBIC).save(big)
        cli = {}
        for backend in ("auto", "torch"):
            for name, src in (("800x600", small), ("4000x3000", big)):
                cli[name, backend] = run_best([sys.executable, "-m", "tinct", "colorize", str(src), "-o",
                                               str(tmp / f"cli_{name}.png"), "--model", args.model, "--overwrite",
                                               "--backend", backend], args.repeats)
        ratio = cli["4000x3000", "auto"]["wall"] / cli["800x600", "auto"]["wall"]
        lines += ["", f"## Acceptance: `tinct colorize` (CLI, start-up included, fastest of {args.repeats}; working size "
                  f"{'x'.join(map(str, work_hw()[::-1]))} for both)", "",
                  "| input | backend | wall s | CPU s | peak RSS MB |", "|---|---|---|---|---|"]
        lines += [f"| {k} gray PNG | {b} | {fmt(v['wall'])} | {fmt(v['cpu'])} | {v['rss_mb']:.0f} |"
                  for (k, b), v in cli.items()]
        lines.append(f"\n4000x3000 / 800x600 wall time (auto): {ratio:.2f}x (acceptance: <= 3x, <= 6 s, <= 2 GB); "
                     f"12 MP with start-up: {cli['4000x3000', 'auto']['wall']:.2f} s (acceptance: <= 2.5 s)")

        # 3. the network alone
        fw = {label: child("forward", {"model": m, "onnx": label == "default", "tmp": str(tmp)})
              for label, m in models}
        d, e = fw["default"], fw["eccv16"]
        hw = work_hw()
        lines += ["", f"## The network alone at {hw[1]}x{hw[0]}, the working size of a 4:3 photo at render factor "
                  f"{DEFAULT_RENDER_FACTOR} (fastest of 5, torch threads = cores)", "",
                  "| model | backend | ms | x ECCV16 speed | file MB | max / mean abs ab diff vs torch |",
                  "|---|---|---|---|---|---|",
                  f"| eccv16 | torch | {e['torch'] * 1e3:.0f} | 1.0 | | |",
                  f"| default | torch | {d['torch'] * 1e3:.0f} | {e['torch'] / d['torch']:.1f} | | |",
                  f"| eccv16 | torch, 1 thread | {e['torch_1t'] * 1e3:.0f} | 1.0 | | |",
                  f"| default | torch, 1 thread | {d['torch_1t'] * 1e3:.0f} | {e['torch_1t'] / d['torch_1t']:.1f} | | |"]
        for name in ("onnx", "onnx_int8"):
            if name in d:
                lines.append(f"| default | {name.replace('_', ' ')} | {d[name] * 1e3:.0f} | {e['torch'] / d[name]:.1f} "
                             f"| {d[name + '_mb']:.1f} | {d[name + '_err']:.2g} / {d[name + '_err_mean']:.2g} |")

        # 4. folder throughput
        folder = tmp / "folder"
        folder_photos(folder, args.folder)
        fr = [("default", "torch", child("folder", {"model": args.model, "src": str(folder), "dest": str(tmp / "fo")})),
              ("default", "onnx", child("folder", {"model": str(tmp / "m.onnx"), "backend": "onnx",
                                                   "src": str(folder), "dest": str(tmp / "fo")})),
              ("eccv16", "torch", child("folder", {"model": str(ecc), "src": str(folder), "dest": str(tmp / "fo")}))]
        wf = working_size(256, 256, DEFAULT_RENDER_FACTOR, 16)
        lines += ["", f"## Folder of {args.folder} photos, 256x256 gray PNG (model loaded once; working size "
                  f"{wf[1]}x{wf[0]})", "",
                  "| model | backend | img/s | peak RSS MB |", "|---|---|---|---|"]
        lines += [f"| {m} | {b} | {r['img_s']:.1f} | {r['rss_mb']:.0f} |" for m, b, r in fr]

        # 5. training
        fam, opts = default_options(args.model)
        tr = []
        for size in (128, 256):
            for label, family, o in (("default", fam, opts), ("eccv16", "eccv16", {})):
                r = child("train", {"family": family, "options": o, "data": str(TRAIN_DATA), "size": size, "batch": 8,
                                    "warmup": 1, "steps": args.train_steps, "out": str(tmp / f"run_{label}_{size}"),
                                    "cache": str(tmp / "cache")})
                tr.append((size, label, r))
                print(f"train {size} {label}: {r['img_s']:.2f} img/s", file=sys.stderr)
        lines += ["", f"## Training (batch 8, Adam, {args.train_steps} steps after 1 warm-up; working size = the crop)", "",
                  "| crop px | model | parameters M | img/s | s/step | peak RSS MB |", "|---|---|---|---|---|---|"]
        lines += [f"| {s} | {m} | {r['params_m']:.1f} | {r['img_s']:.2f} | {r['s_per_step']:.2f} | {r['rss_mb']:.0f} |"
                  for s, m, r in tr]

    load_after = os.getloadavg()
    head = ["# Speed (bench/speed.py)", "",
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
            f"{torch.__version__}, {torch.get_num_threads()} torch threads; {time.strftime('%Y-%m-%d %H:%M')}, "
            f"{time.time() - started:.0f} s in all.",
            f"Load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f} "
            f"(above 0.5 means other processes shared the CPU and wall times are inflated; CPU s is less affected).",
            "GPU: none on this machine.", ""]
    text = "\n".join(head + lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
