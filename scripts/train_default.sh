#!/usr/bin/env bash
# The next default's recipe (a candidate, not shipped yet): an ImageNet EfficientNet-Lite0 encoder, U-Net decoder, Zhang et al.'s
# classification head, user color points; trained in stages on ../shared/data/train (our development data).
#   stage 1: decoder only; the encoder and its batch-norm statistics frozen (encoder_frozen=5)
#   stage 2: the upper encoder levels (strides 8..32) too, at a tenth of the learning rate (encoder_frozen=2)
#   stage 3: everything, at a tenth of the learning rate for the encoder (encoder_frozen=0)
#   stage 4: the decoder again (encoder_frozen=5), points pooled "normalized" into the coarse decoder levels and
#            given to 80% of the photos: after stage 3 the model all but ignored small color points
#   stage 5: everything again (encoder at 0.3x), points pooled "normalized", 80% of photos with points
#   stage 6: a hint branch (hint_branch=16: a small conv encoder on L and the points at full resolution, added
#            to the decoder through zero-initialised convs) grown onto stage 5, at 10x the learning rate (zero-
#            initialised outputs start slowly); encoder frozen, 75% of photos with points: stages 4-5 could not
#            teach the pooled decoder inputs to follow points
# Each stage is its own resumable run folder (rerun this script after an interruption: finished stages are
# skipped, an interrupted one resumes). RUNS, STEPS1..6, STAGE5_WEIGHTS and DATA can be set from the environment.
# Across sessions (a new machine has no runs/): the committed checkpoints/default-candidate.safetensors is
# stage 5's result (5,400 steps); to go on from it, train with --init checkpoints/default-candidate.safetensors.
set -euo pipefail
DATA=${DATA:-../shared/data/train}
VAL=${VAL:-../shared/data/val/imagenette-val500}
RUNS=${RUNS:-runs/default}
STEPS1=${STEPS1:-1250}; STEPS2=${STEPS2:-1250}; STEPS3=${STEPS3:-1500}; STEPS4=${STEPS4:-400}; STEPS5=${STEPS5:-1000}
STEPS6=${STEPS6:-1500}
# stage 6 starts from stage 5; on a machine without runs/, from the committed candidate (stage 5's weights)
STAGE5_WEIGHTS=${STAGE5_WEIGHTS:-$RUNS/stage5/model.safetensors}
common=(--data "$DATA" --val "$VAL" --batch 16 --size 128 --val-every 250 --checkpoint-every 100 --threads 2)

stage() {  # stage N STEPS LR [train args...]
    local n=$1 steps=$2 lr=$3; shift 3
    local out="$RUNS/stage$n"
    [ "$steps" -gt 0 ] || return 0
    if [ -f "$out/model.safetensors" ] && [ ! -f "$out/checkpoint.safetensors" -o -f "$out/curves.png" ]; then
        echo "stage $n: done ($out)"; return 0
    fi
    local resume=(); [ -f "$out/checkpoint.safetensors" ] && resume=(--resume)
    tinct train "${common[@]}" --out "$out" --steps "$steps" --lr "$lr" --seed "$n" "$@" "${resume[@]}"
}

stage 1 "$STEPS1" 1e-3 --model encoder-decoder --head classification --backbone-weights imagenet --warmup 100 \
    --option backbone=efficientnet-lite0 --option hint_channels=3 --option hint_decoder=true \
    --option bottleneck_channels=256 --option encoder_frozen=5
stage 2 "$STEPS2" 3e-4 --init "$RUNS/stage1/model.safetensors" --warmup 100 \
    --option encoder_frozen=2 --option encoder_lr_scale=0.1
stage 3 "$STEPS3" 1.5e-4 --init "$RUNS/stage2/model.safetensors" --warmup 100 \
    --option encoder_frozen=0 --option encoder_lr_scale=0.1
stage 4 "$STEPS4" 3e-4 --init "$RUNS/stage3/model.safetensors" --warmup 40 --checkpoint-every 50 --val-every 200 \
    --option encoder_frozen=5 --option hint_pool=normalized --hint-probability 0.8
stage 5 "$STEPS5" 2e-4 --init "$RUNS/stage4/model.safetensors" --warmup 50 --checkpoint-every 50 \
    --option encoder_frozen=0 --option encoder_lr_scale=0.3 --hint-probability 0.8
stage 6 "$STEPS6" 3e-4 --init "$STAGE5_WEIGHTS" --warmup 50 --checkpoint-every 50 \
    --option hint_branch=16 --option hint_lr_scale=10 --option encoder_frozen=5 --hint-probability 0.75
