"""Restoration on damaged val photos with known clean truth: the network, the classical steps, and both.

    OMP_NUM_THREADS=1 nice -n 19 python3 bench/restore.py                   # val500, every kind + the mix
    OMP_NUM_THREADS=1 nice -n 19 python3 bench/restore.py --limit 100 --kinds-limit 50
    OMP_NUM_THREADS=1 python3 bench/restore.py --size 128 --thresholds 0.5 0.6 0.7 0.8   # mask threshold sweep, mix

Each val photo is grayed (CIE L), shrunk to ``--size`` px on the long side, and damaged by
``tinct.restore.degrade`` (each kind alone, seeded per photo, and the realistic mix). Methods:

- input: the damaged photo as it is (the per-kind table starts with "clean": no damage, input PSNR shown as 140, the metric's cap)
- classical: a top-hat damage mask + Telea inpainting, non-local means (automatic strength), auto levels
- model: the restoration network alone
- model + inpaint: the network, then Telea (or Navier-Stokes) inpainting inside its own mask
- model + inpaint + NLM: that, then non-local means (``tinct restore``'s default flow)

Scores: PSNR and SSIM of L against the clean photo; for damage that leaves a mask (scratches, dust, cracks
and the mix), pixel precision / recall / F1 of the network's mask and of the classical top-hat mask.
Writes bench/results/restore.md, restore_grid.png (val photos), degradations.png (each kind on one photo)
and restore_real.png (../shared/data/historical/old-photos before and after).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tinct.color import rgb_to_lab  # noqa: E402
from tinct.data import find_images  # noqa: E402
from tinct.restore import classical  # noqa: E402
from tinct.restore.degrade import AGED_PRINTS, KINDS, LOCAL, Degraded, apply_kind, degrade  # noqa: E402
from tinct.restore.metrics import mask_scores, psnr_l, ssim_l  # noqa: E402
from tinct.restore.run import RestoreOptions, load_restorer, restore_file, run_network  # noqa: E402

RESULTS = ROOT / "bench" / "results"
VAL = ROOT.parent / "shared" / "data" / "val" / "imagenette-val500"
REAL = ROOT.parent / "shared" / "data" / "historical" / "old-photos"


def gray_L(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        return rgb_to_lab(np.asarray(im, np.float64) / 255.0)[..., 0].astype(np.float32)


def classical_restore(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = classical.detect_damage(L)
    out = classical.inpaint(L, mask, "telea")
    out = classical.denoise(out)
    return classical.levels(out), mask


def methods(L_damaged: np.ndarray, net, with_ns: bool) -> tuple[dict, dict]:
    """Every method's output L, and the masks (network, classical)."""
    out = {"input": L_damaged}
    out["classical"], mask_classical = classical_restore(L_damaged)
    restored, prob = run_network(net, L_damaged)
    mask = prob > RestoreOptions().mask_threshold
    out["model"] = restored
    out["model + inpaint"] = classical.inpaint(restored, mask, "telea")
    if with_ns:
        out["model + inpaint (NS)"] = classical.inpaint(restored, mask, "ns")
    out["model + inpaint + NLM"] = classical.denoise(out["model + inpaint"])
    return out, {"model": mask, "classical top-hat": mask_classical}


def damaged(L: np.ndarray, kind: str, photo: int, kind_index: int = 0, seed_base: int = 0) -> Degraded:
    """``L`` damaged by ``kind`` ("clean", "mix" or one of ``KINDS``), seeded by (``seed_base``, ``photo``,
    ``kind_index``): the photo at the same index gets the same damage in every bench that asks for it."""
    rng = np.random.default_rng([seed_base, photo, kind_index])
    if kind == "clean":  # no damage at all: a restorer should leave the photo alone
        return Degraded(L.copy(), np.zeros(L.shape, bool))
    return degrade(L, rng) if kind == "mix" else apply_kind(kind, L, rng)


def run(files, kinds, size, net, seed_base=0, desc="") -> dict:
    """{kind: {"psnr": {method: [..]}, "ssim": {...}, "masks": {method: [pred, truth] pooled counts}}}."""
    res = {}
    for i, f in enumerate(tqdm(files, desc=desc, unit="img", mininterval=30)):
        L = gray_L(f, size)
        for k, kind in enumerate(kinds):
            d = damaged(L, kind, i, k, seed_base)
            outs, masks = methods(d.L, net, with_ns=kind == "mix")
            r = res.setdefault(kind, {"psnr": {}, "ssim": {}, "masks": {}})
            for name, pred in outs.items():
                r["psnr"].setdefault(name, []).append(psnr_l(pred, L))
                if kind == "mix":
                    r["ssim"].setdefault(name, []).append(ssim_l(pred, L))
            if kind in LOCAL or kind == "mix":
                for name, m in masks.items():
                    acc = r["masks"].setdefault(name, np.zeros(3))
                    s = mask_scores(m, d.mask)
                    acc += [s["tp"], s["fp"], s["fn"]]
    return res


def threshold_sweep(files, size, net, thresholds) -> str:
    """The mix with the same seeds as ``run``: pooled mask precision / recall / F1 and whole-flow PSNR (the
    network, inpainting inside ``prob > t``, non-local means) for each mask threshold ``t``; a markdown table."""
    acc = {t: np.zeros(3) for t in thresholds}
    psnr = {t: [] for t in thresholds}
    for i, f in enumerate(tqdm(files, desc="thresholds", unit="img", mininterval=30)):
        L = gray_L(f, size)
        d = damaged(L, "mix", i)
        restored, prob = run_network(net, d.L)
        for t in thresholds:
            s = mask_scores(prob > t, d.mask)
            acc[t] += [s["tp"], s["fp"], s["fn"]]
            psnr[t].append(psnr_l(classical.denoise(classical.inpaint(restored, prob > t, "telea")), L))
    lines = [f"Mask threshold, the realistic mix ({len(files)} photos at {size} px):", "",
             "| p > | precision | recall | F1 | whole flow PSNR dB |", "|---|---|---|---|---|"]
    for t in thresholds:
        p, r, f1 = _prf(acc[t])
        lines.append(f"| {t} | {p:.3f} | {r:.3f} | {f1:.3f} | {np.mean(psnr[t]):.2f} |")
    return "\n".join(lines) + "\n"


def _prf(acc) -> tuple[float, float, float]:
    tp, fp, fn = acc
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    return p, r, 2 * p * r / max(p + r, 1e-9)


def report(mix: dict, per_kind: dict, n_mix: int, n_kind: int, size: int, seconds: float) -> str:
    m = mix["mix"]
    names = list(m["psnr"])
    lines = ["# Restoration on damaged val photos", "",
             f"`OMP_NUM_THREADS=1 nice -n 19 python3 bench/restore.py {' '.join(sys.argv[1:])}` ({seconds / 60:.0f} min "
             "on the shared, loaded 2-core CPU, one thread). "
             f"Photos of `imagenette-val500` grayed (CIE L) and shrunk to {size} px on the long side, then damaged by "
             "`tinct.restore.degrade` with a seed per photo; scores against the clean L (PSNR peak 100).", "",
             f"## The realistic mix ({n_mix} photos)", "",
             "| method | PSNR dB | gain over input | SSIM |", "|---|---|---|---|"]
    base = float(np.mean(m["psnr"]["input"]))
    for name in names:
        p = float(np.mean(m["psnr"][name]))
        lines.append(f"| {name} | {p:.2f} | {p - base:+.2f} | {np.mean(m['ssim'][name]):.4f} |")
    lines += ["", "Damage mask (pixels that scratches, dust and cracks visibly changed), pooled over the photos:", "",
              "| mask | precision | recall | F1 |", "|---|---|---|---|"]
    for name, acc in m["masks"].items():
        p, r, f1 = _prf(acc)
        lines.append(f"| {name} | {p:.3f} | {r:.3f} | {f1:.3f} |")
    if per_kind:
        lines += ["", f"## Each kind of damage alone ({n_kind} photos), PSNR dB", "",
                  "| damage | " + " | ".join(n for n in names if "NS" not in n) + " | mask F1 model / top-hat |",
                  "|---|" + "---|" * (len([n for n in names if "NS" not in n]) + 1)]
        for kind, r in per_kind.items():
            cells = [f"{np.mean(r['psnr'][n]):.2f}" for n in names if "NS" not in n]
            f1 = " / ".join(f"{_prf(r['masks'][k])[2]:.3f}" for k in ("model", "classical top-hat")) if r["masks"] else ""
            lines.append(f"| {kind} | " + " | ".join(cells) + f" | {f1} |")
    return "\n".join(lines) + "\n"


def grid(files, size, net, dest: Path, n: int = 4):
    from tinct.report import image_grid
    rows = {k: [] for k in ("clean", "damaged (mix)", "classical", "restored", "true mask", "found mask")}
    for i, f in enumerate(files[:n]):
        L = gray_L(f, size)
        L = np.asarray(Image.fromarray(L).resize((size, size), Image.Resampling.BILINEAR))
        d = degrade(L, np.random.default_rng([7, i]))
        outs, masks = methods(d.L, net, False)
        for key, img in (("clean", L), ("damaged (mix)", d.L), ("classical", outs["classical"]),
                         ("restored", outs["model + inpaint + NLM"]), ("true mask", d.mask * 100.0),
                         ("found mask", masks["model"] * 100.0)):
            rows[key].append(np.repeat(np.clip(img * 2.55 + 0.5, 0, 255).astype(np.uint8)[..., None], 3, -1))
    image_grid([np.stack(v) for v in rows.values()], list(rows), dest)


def degradation_examples(path: Path, size: int, dest: Path):
    L = gray_L(path, size)
    L = np.asarray(Image.fromarray(L).resize((size, size), Image.Resampling.BILINEAR))
    imgs, names = [L], ["clean"]
    for k, kind in enumerate(KINDS):
        imgs.append(apply_kind(kind, L, np.random.default_rng([3, k])).L)
        names.append(kind)
    for s in range(2):
        imgs.append(degrade(L, np.random.default_rng([5, s])).L)
        names.append(f"mix {s + 1}")
    for s in range(2):  # the colorizer's `tinct train --damage-mix aged`
        imgs.append(degrade(L, np.random.default_rng([6, s]), AGED_PRINTS).L)
        names.append(f"aged mix {s + 1}")
    from PIL import ImageDraw
    cols = 4
    rows = (len(imgs) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (size + 4), rows * (size + 18)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, (x, name) in enumerate(zip(imgs, names)):
        r, c = divmod(j, cols)
        sheet.paste(Image.fromarray(np.clip(x * 2.55 + 0.5, 0, 255).astype(np.uint8)), (c * (size + 4), r * (size + 18)))
        draw.text((c * (size + 4) + 4, r * (size + 18) + size + 3), name, fill="black")
    sheet.save(dest)


def real_before_after(dest: Path, height: int = 320, model: str | None = None):
    """The real damaged prints before and after ``tinct restore`` (its default flow; ``model``: another network)."""
    import tempfile
    tiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in sorted(REAL.glob("scratch_*.png")) + [REAL / "h.png"]:
            if not f.exists():
                continue
            out = Path(tmp) / f.name
            r = restore_file(f, out, RestoreOptions(model=model))
            before = Image.open(f).convert("RGB")
            after = Image.open(out).convert("RGB")
            mask = Image.fromarray(r.mask.astype(np.uint8) * 255).convert("RGB")
            w = round(before.width * height / before.height)
            row = Image.new("RGB", (3 * w + 8, height), "white")
            for j, im in enumerate((before, after, mask)):
                row.paste(im.resize((w, height), Image.Resampling.LANCZOS), (j * (w + 4), 0))
            tiles.append(row)
    width = max(t.width for t in tiles)
    sheet = Image.new("RGB", (width, sum(t.height + 6 for t in tiles)), "white")
    y = 0
    for t in tiles:
        sheet.paste(t, (0, y))
        y += t.height + 6
    sheet.save(dest)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="photos for the mix (default: all of val500)")
    ap.add_argument("--kinds-limit", type=int, default=100, help="photos for each kind alone (0: skip)")
    ap.add_argument("--size", type=int, default=256, help="long side of the photos, px")
    ap.add_argument("--model", default=None, help="restoration model file (default: the shipped one)")
    ap.add_argument("--out", default=str(RESULTS / "restore.md"))
    ap.add_argument("--no-pictures", action="store_true")
    ap.add_argument("--pictures-dir", default=str(RESULTS), help="where the three pictures go (a candidate's apart)")
    ap.add_argument("--pictures-only", action="store_true", help="only the three pictures (no scores)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=None,
                    help="only a sweep of the mask threshold on the mix (printed, nothing written)")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    net = load_restorer(args.model)
    files = find_images(VAL)
    pictures = Path(args.pictures_dir)
    pictures.mkdir(parents=True, exist_ok=True)
    if args.pictures_only:
        real_before_after(pictures / "restore_real.png", model=args.model)
        degradation_examples(files[3], args.size, pictures / "degradations.png")
        grid(files[7::97], args.size, net, pictures / "restore_grid.png")
        return
    t0 = time.time()
    mix_files = files[:: max(1, len(files) // args.limit)][: args.limit] if args.limit else files
    if args.thresholds:
        print(threshold_sweep(mix_files, args.size, net, args.thresholds))
        return
    mix = run(mix_files, ["mix"], args.size, net, desc="mix")
    kind_files = files[:: max(1, len(files) // args.kinds_limit)][: args.kinds_limit] if args.kinds_limit else []
    per_kind = run(kind_files, ["clean", *KINDS], args.size, net, seed_base=1, desc="each kind") if kind_files else {}
    text = report(mix, per_kind, len(mix_files), len(kind_files), args.size, time.time() - t0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    if not args.no_pictures:
        grid(files[7::97], args.size, net, pictures / "restore_grid.png")
        degradation_examples(files[3], args.size, pictures / "degradations.png")
        real_before_after(pictures / "restore_real.png", model=args.model)


if __name__ == "__main__":
    main()
