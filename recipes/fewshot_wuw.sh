#!/usr/bin/env bash
# Train every method on the train splits of ../shared/data (WUW Corpus II + LibriSpeech
# segments), select on WUW dev speakers, and evaluate on WUW test speakers (never seen):
# 5-way 1-shot and 5-shot, 5 queries of 1 s per speaker, 1,000 episodes, 95% CI.
# CPU budget: about 10 minutes per method on 2 cores. Results go to runs/<method>/.
#
# Usage: recipes/fewshot_wuw.sh [steps]   (default 1200 protonet steps)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
source recipes/env.sh
steps=${1:-1200}
# Each method's settings are in recipes/configs/fewshot_wuw_<method>.json (the test
# episodes' in fewshot_wuw_test.json); the command line adds the steps, where a run
# starts from and where it writes.
configs=recipes/configs
evaluate() {  # run name, then flags of the evaluation
    $py train_protonet.py --config "$configs/fewshot_wuw_test.json" --log-dir "runs/$1" \
        --test "${@:2}" | tee -a "runs/$1/test.txt"
}

# 1. Masked-autoencoder pre-training of the conv6 encoder (CS330).
$py train_mae.py --config "$configs/fewshot_wuw_mae.json" --log-dir runs/mae_strips --quiet
# 2. Protonet from scratch (squared Euclidean, Snell et al.).
$py train_protonet.py --config "$configs/fewshot_wuw_protonet.json" \
    --num-train-iterations "$steps" --log-dir runs/protonet --quiet
# 3. Protonet initialised from the MAE encoder.
$py train_protonet.py --config "$configs/fewshot_wuw_protonet.json" \
    --num-train-iterations "$steps" --init-from runs/mae_strips/best/model.keras \
    --log-dir runs/protonet_mae --quiet
# 4. meta-SR: cosine prototypes + global classification, variable-length queries.
$py train_protonet.py --config "$configs/fewshot_wuw_protonet_gc.json" \
    --num-train-iterations "$steps" --log-dir runs/protonet_gc --quiet
# 5. Self-attention CNN trained as a speaker classifier (softmax).
$py train_classifier.py --config "$configs/fewshot_wuw_sacnn_softmax.json" \
    --log-dir runs/sacnn_softmax --quiet

for run in protonet protonet_mae; do
    for shot in 1 5; do evaluate "$run" --num-support "$shot" --loss proto; done
done
for shot in 1 5; do evaluate protonet_gc --num-support "$shot" --loss proto_cosine; done
for shot in 1 5; do
    evaluate sacnn_softmax --num-support "$shot" --loss proto_cosine \
        --model runs/sacnn_softmax/best/model.keras
done
