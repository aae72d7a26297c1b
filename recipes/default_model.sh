#!/usr/bin/env bash
# Reproduce the built-in conv6 preset in keras_spkid/pretrained/conv6/: its weights,
# its calibrated threshold and its packaging (raw-audio .keras with the front end inside,
# calibration.json, config.json). Needs ../shared/data (or SPKID_DATA); trains on the
# train splits of wuw_corpus_ii (8 kHz telephone) and librispeech_1utt (16 kHz read speech,
# cut into 2 s segments), everything at 16 kHz, and selects on wuw_corpus_ii dev speakers.
# The encoder is the meta-SR-style conv6 protonet (cosine prototypes + global
# classification, 2 s supports, 1-2 s queries), trained in three resumable stages, each
# starting from the best model of the one before:
#   1. runs/protonet_gc       1,200 steps, 5-way 5-shot, no augmentation      (~7 min)
#   2. runs/default_candidate 4,000 steps, + SpecAugment, 1 s queries         (~25 min)
#   3. runs/default_v2        12,000 steps, 10-way 3-shot 2-query (so 287 of the 322
#      training speakers qualify instead of 140), + ChannelAugment (telephone band,
#      stationary noise, babble), 1-2 s queries                               (~75 min)
# Times are for 2 idle CPU cores. Rerunning a stage resumes it from its checkpoints.
# Usage: bash recipes/default_model.sh [--skip-training]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
source recipes/env.sh
run=runs/default_v2
# Each stage's settings are in recipes/configs/default_model_stage<N>.json; the command
# line adds only where it starts from and where it writes.
if [[ "${1:-}" != "--skip-training" ]]; then
    $py train_protonet.py --config recipes/configs/default_model_stage1.json \
        --log-dir runs/protonet_gc --quiet
    $py train_protonet.py --config recipes/configs/default_model_stage2.json \
        --init-from runs/protonet_gc/best/model.keras --log-dir runs/default_candidate --quiet
    $py train_protonet.py --config recipes/configs/default_model_stage3.json \
        --init-from runs/default_candidate/best/model.keras --log-dir "$run" --quiet
fi
# Threshold at the equal-error point of the dev speakers of both corpora (never used for
# training), each corpus weighted equally: all pairs of WUW dev clips, all pairs of 2 s
# segments of the LibriSpeech dev clips.
$spkid eval calibrate --model "$run/best/model.keras" --corpora wuw_corpus_ii librispeech_1utt \
    --split dev --out runs/default_model/calibration --quiet \
    --save-calibration "$run/best/calibration.json"
# Raw-audio model (front end inside) + calibration.json + config.json.
$spkid export --model "$run/best/model.keras" --output keras_spkid/pretrained/conv6
