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
data=(--train-corpora wuw_corpus_ii librispeech_1utt --val-corpora wuw_corpus_ii
      --test-corpora wuw_corpus_ii --segment-frames 200)
episode=(--num-way 5 --num-support 5 --num-query 5 --batch-size 1 --support-frames 200
         --query-frames 100 --test-interval 200 --print-interval 20 --val-tasks 100 --seed 0)
evaluate() {  # run name, then flags of the evaluation
    $py train_protonet.py "${data[@]}" --num-query 5 --query-frames 100 --test-tasks 1000 \
        --log-dir "runs/$1" --test "${@:2}" | tee -a "runs/$1/test.txt"
}

# 1. Masked-autoencoder pre-training of the conv6 encoder (CS330).
$py train_mae.py --train-corpora wuw_corpus_ii librispeech_1utt --mask strips \
    --mask-ratio 0.75 --batch-size 32 --num-train-iterations 600 --test-interval 200 \
    --crop-frames 192 --log-dir runs/mae_strips --quiet
# 2. Protonet from scratch (squared Euclidean, Snell et al.).
$py train_protonet.py "${data[@]}" "${episode[@]}" --num-train-iterations "$steps" \
    --log-dir runs/protonet --quiet
# 3. Protonet initialised from the MAE encoder.
$py train_protonet.py "${data[@]}" "${episode[@]}" --num-train-iterations "$steps" \
    --init-from runs/mae_strips/best/model.keras --log-dir runs/protonet_mae --quiet
# 4. meta-SR: cosine prototypes + global classification, variable-length queries.
$py train_protonet.py "${data[@]}" "${episode[@]}" --num-train-iterations "$steps" \
    --loss proto_cosine --gc-weight 1.0 --variable-query --min-query-frames 100 \
    --log-dir runs/protonet_gc --quiet
# 5. Self-attention CNN trained as a speaker classifier (softmax).
$py train_classifier.py --train-corpora wuw_corpus_ii librispeech_1utt \
    --val-corpora wuw_corpus_ii --segment-frames 200 --encoder sacnn --loss softmax \
    --speakers-per-batch 32 --clips-per-speaker 1 --frames 200 \
    --num-train-iterations 400 --test-interval 100 --val-tasks 100 --log-dir runs/sacnn_softmax --quiet

for run in protonet protonet_mae; do
    for shot in 1 5; do evaluate "$run" --num-support "$shot" --loss proto; done
done
for shot in 1 5; do evaluate protonet_gc --num-support "$shot" --loss proto_cosine; done
for shot in 1 5; do
    evaluate sacnn_softmax --num-support "$shot" --loss proto_cosine \
        --model runs/sacnn_softmax/best/model.keras
done
