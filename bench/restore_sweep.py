"""Sweep of the restoration steps on the realistic mix (10 val photos, 160 px): mask thresholds, auto levels,
top-hat thresholds, inpainting with the true mask. Prints one line per variant (PSNR dB of L) and the masks'
precision / recall / F1. Run from the repository root: nice -n 10 python3 bench/restore_sweep.py
"""
import sys, numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from restore import damaged, gray_L, VAL
from tinct.data import find_images
from tinct.restore import classical
from tinct.restore.metrics import psnr_l, mask_scores
from tinct.restore.run import load_restorer, run_network
import torch; torch.set_num_threads(1)
net = load_restorer(None)
files = find_images(VAL)[::50][:10]
acc = {}
def add(k, v): acc.setdefault(k, []).append(v)
masks = {}
for i, f in enumerate(files):
    L = gray_L(f, 160)
    d = damaged(L, "mix", i)
    r, p = run_network(net, d.L)
    add("input", psnr_l(d.L, L)); add("model", psnr_l(r, L))
    add("levels", psnr_l(classical.levels(d.L), L))
    add("levels0", psnr_l(classical.levels(d.L, black=0, white=100), L))
    add("model+levels", psnr_l(classical.levels(r), L))
    add("nlm", psnr_l(classical.denoise(d.L), L))
    add("levels+nlm", psnr_l(classical.denoise(classical.levels(d.L)), L))
    for t in (0.5, 0.7, 0.8, 0.9, 0.95):
        m = p > t
        masks.setdefault(t, np.zeros(3)); s = mask_scores(m, d.mask); masks[t] += [s["tp"], s["fp"], s["fn"]]
        add(f"model+inp{t}", psnr_l(classical.inpaint(r, m, grow=0), L))
        add(f"levels+inpaint(model mask {t})", psnr_l(classical.inpaint(classical.levels(d.L), m, grow=0), L))
    for th in (12, 20, 30):
        m = classical.detect_damage(d.L, 5, th)
        s = mask_scores(m, d.mask); masks.setdefault(f"tophat{th}", np.zeros(3)); masks[f"tophat{th}"] += [s["tp"], s["fp"], s["fn"]]
        add(f"levels+inpaint(tophat {th})+nlm", psnr_l(classical.denoise(classical.inpaint(classical.levels(d.L), m, grow=0)), L))
    add("truthmask inpaint", psnr_l(classical.inpaint(d.L, d.mask, grow=0), L))
for k, v in acc.items(): print(f"{k:40s} {np.mean(v):.2f}")
for k, (tp, fp, fn) in masks.items():
    pr, rc = tp / max(tp + fp, 1), tp / max(tp + fn, 1); print(k, round(pr, 3), round(rc, 3), round(2 * pr * rc / max(pr + rc, 1e-9), 3))
