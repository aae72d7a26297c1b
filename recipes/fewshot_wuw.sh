#!/usr/bin/env bash
# Train every method on the train splits of ../shared/data (WUW Corpus II + LibriSpeech
# segments), select on WUW dev speakers, and evaluate on WUW test speakers (never seen):
# 5-way 1-shot and 5-shot, 5 queries of 1 s per speaker, 1,000 episodes, 95% CI.
# CPU budget: about 10 minutes per method on 2 cores. Results go to runs/<method>/.
#
# Usage: recipes/fewshot_wuw.sh [steps]   (default 1200 protonet steps)
set -euo pipefail
cd "$(dirname "$0")/.."
export SPKID_DATA="${SPKID_DATA:-$PWD/../shared/data}"
py=.venv/bin/python
steps=${1:-1200}
data=(--train_corpora wuw_corpus_ii librispeech_1utt --val_corpora wuw_corpus_ii
      --test_corpora wuw_corpus_ii --segment_frames 200)
episode=(--num_way 5 --num_support 5 --num_query 5 --batch_size 1 --support_frames 200
         --query_frames 100 --test_interval 200 --print_interval 20 --val_tasks 100 --seed 0)
evaluate() {  # run name, then flags of the evaluation
    $py train_protonet.py "${data[@]}" --num_query 5 --query_frames 100 --test_tasks 1000 \
        --log_dir "runs/$1" --test "${@:2}" | tee -a "runs/$1/test.txt"
}

# 1. Masked-autoencoder pre-training of the conv6 encoder (CS330).
$py train_mae.py --train_corpora wuw_corpus_ii librispeech_1utt --mask strips \
    --mask_ratio 0.75 --batch_size 32 --num_train_iterations 600 --test_interval 200 \
    --crop_frames 192 --log_dir runs/mae_strips --quiet
# 2. Protonet from scratch (squared Euclidean, Snell et al.).
$py train_protonet.py "${data[@]}" "${episode[@]}" --num_train_iterations "$steps" \
    --log_dir runs/protonet --quiet
# 3. Protonet initialised from the MAE encoder.
$py train_protonet.py "${data[@]}" "${episode[@]}" --num_train_iterations "$steps" \
    --init_from runs/mae_strips/best/model.keras --log_dir runs/protonet_mae --quiet
# 4. meta-SR: cosine prototypes + global classification, variable-length queries.
$py train_protonet.py "${data[@]}" "${episode[@]}" --num_train_iterations "$steps" \
    --loss proto_cosine --gc_weight 1.0 --variable_query --min_query_frames 100 \
    --log_dir runs/protonet_gc --quiet
# 5. Self-attention CNN trained as a speaker classifier (softmax).
$py train_classifier.py --train_corpora wuw_corpus_ii librispeech_1utt \
    --val_corpora wuw_corpus_ii --segment_frames 200 --encoder sacnn --loss softmax \
    --speakers_per_batch 32 --clips_per_speaker 1 --frames 200 \
    --num_train_iterations 400 --test_interval 100 --val_tasks 100 --log_dir runs/sacnn_softmax --quiet

for run in protonet protonet_mae; do
    for shot in 1 5; do evaluate "$run" --num_support "$shot" --loss proto; done
done
for shot in 1 5; do evaluate protonet_gc --num_support "$shot" --loss proto_cosine; done
for shot in 1 5; do
    evaluate sacnn_softmax --num_support "$shot" --loss proto_cosine \
        --model runs/sacnn_softmax/best/model.keras
done
