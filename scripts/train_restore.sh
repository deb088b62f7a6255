#!/usr/bin/env bash
# The shipped restoration network's recipe (`restore` family, residual design) on ../shared/data/train (our
# development data). Resumable: rerun after an interruption and the run in $OUT continues from its checkpoint.
# The shipped src/tinct/weights/_restore.safetensors is 4,100 steps: 1,100 of a first run, then 3,000 more with
# INIT=src/tinct/weights/_restore.safetensors STEPS=3000 (a run started from the shipped weights; THREADS=1 beside
# another training run). Session 7 fitted a tone stage onto it (scripts/fit_restore_tone.py, out
# runs/restore-tone/model.safetensors) and trained 1,500 more steps around it with
# INIT=runs/restore-tone/model.safetensors OUT=runs/restore3 STEPS=1500 THREADS=1, then 1,500 more with
# INIT=runs/restore3/model.safetensors OUT=runs/restore4, and session 10 twice 1,500 more with
# INIT=src/tinct/weights/_restore.safetensors OUT=runs/restore5 STEPS=1500 THREADS=2 (10 min on the idle
# 2-core CPU), then INIT=runs/restore5/model.safetensors OUT=runs/restore6, and session 11 1,500 more with
# INIT=src/tinct/weights/_restore.safetensors OUT=runs/restore7, and session 12 1,500 more with the mask's loss
# weighted twice as much: INIT=src/tinct/weights/_restore.safetensors OUT=runs/restore10 STEPS=1500 THREADS=1 SEED=15
# OPTIONS=mask_weight=1.0 (20 min beside a colorization run): the shipped file has 13,100 steps. A continuation keeps
# the options of the file it starts from; OPTIONS (space-separated key=value) changes them. Session 20 widened that
# network to 32 base channels (python scripts/widen.py src/tinct/weights/_restore.safetensors --channels 32
# --out runs/restore_grow_init/model.safetensors), trained it 5,000 steps with INIT=runs/restore_grow_init/model.safetensors
# OUT=runs/restore_grow STEPS=5000 THREADS=2 SEED=21 (64 min), then 1,000 with more undamaged and single-kind crops
# at a lower rate: INIT=runs/restore_grow/model.safetensors OUT=runs/restore_grow2 STEPS=1000 LR=5e-4 WARMUP=50
# SEED=22 OPTIONS="clean_fraction=0.2 single_fraction=0.4": the shipped file has 19,100 steps.
# SIZE=128 (crops the size of bench/restore.py's photos) was tried from the 11,600-step network: mask F1 up,
# PSNR and most kinds down (bench/results/restore.md). Ship a result with scripts/ship_restore.py.
set -euo pipefail
DATA=${DATA:-../shared/data/train}
VAL=${VAL:-../shared/data/val/imagenette-val500}
OUT=${OUT:-runs/restore}
STEPS=${STEPS:-2000}
SIZE=${SIZE:-96}  # training crop, px
SEED=${SEED:-14}
LR=${LR:-1.5e-3}
WARMUP=${WARMUP:-100}
args=(--data "$DATA" --val "$VAL" --out "$OUT" --steps "$STEPS" --size "$SIZE" --batch 8 --lr "$LR" --warmup "$WARMUP"
      --val-every 500 --checkpoint-every 100 --seed "$SEED" ${THREADS:+--threads "$THREADS"})
for option in ${OPTIONS:-}; do args+=(--option "$option"); done
if [ -f "$OUT/checkpoint.safetensors" ]; then
    tinct train "${args[@]}" --resume
elif [ -n "${INIT:-}" ]; then
    tinct train "${args[@]}" --init "$INIT"
else
    tinct train "${args[@]}" --model restore --option base_channels=16
fi
