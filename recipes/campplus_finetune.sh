#!/usr/bin/env bash
# Fine-tune the CAM++ preset (campplus_zh_en) with the episodic loop on the train speakers
# of WUW and LibriSpeech (recipes/configs/campplus_finetune.json), then compare it with the
# preset on the same episodes of test speakers (bench/bench_finetune.py; bench/RESULTS.md,
# "Episodic fine-tuning"). Resumable: run it again to continue. About 10-13 s a training
# step on 2 CPU cores.
#
# Usage: recipes/campplus_finetune.sh [LOG_DIR] [trainer flags, e.g. --num-train-iterations 120]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
source recipes/env.sh
log_dir=${1:-runs/campplus_ft}
shift || true
$py train_protonet.py --config recipes/configs/campplus_finetune.json --log-dir "$log_dir" "$@"
$py bench/bench_finetune.py --model "$log_dir/best/model.keras" --baseline campplus_zh_en
