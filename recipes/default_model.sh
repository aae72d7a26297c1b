#!/usr/bin/env bash
# Reproduce the built-in default model in keras_spkid/pretrained/default/ (interim: the
# meta-SR-style conv6 protonet of recipes/fewshot_wuw.sh, run 4), its calibrated
# threshold and its packaging. Needs ../shared/data (or SPKID_DATA). About 20 minutes on
# 2 CPU cores. Usage: bash recipes/default_model.sh [--skip-training]
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
spkid=.venv/bin/spkid
run=runs/protonet_gc

if [[ "${1:-}" != "--skip-training" ]]; then
    $py train_protonet.py --train_corpora wuw_corpus_ii librispeech_1utt \
        --val_corpora wuw_corpus_ii --test_corpora wuw_corpus_ii --segment_frames 200 \
        --num_way 5 --num_support 5 --num_query 5 --batch_size 1 --support_frames 200 \
        --query_frames 100 --test_interval 200 --print_interval 20 --val_tasks 100 --seed 0 \
        --num_train_iterations 1200 --loss proto_cosine --gc_weight 1.0 --variable_query \
        --min_query_frames 100 --log_dir "$run" --quiet
fi
# Threshold at the equal-error point of WUW dev-speaker trials (never used for training).
$spkid eval trials --corpus wuw_corpus_ii --split dev --same_recording \
    --output runs/default_model/dev_trials.txt
$spkid eval verify --trials runs/default_model/dev_trials.txt --corpus wuw_corpus_ii \
    --model "$run/best/model.keras" --calibrate eer --out runs/default_model/dev --quiet \
    --save_calibration "$run/best/calibration.json"
# Raw-audio model (front end inside) + calibration.json + config.json.
$spkid export --model "$run/best/model.keras" --output keras_spkid/pretrained/default
