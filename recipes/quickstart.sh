#!/usr/bin/env bash
# Quick start on a small dataset folder, end to end: manifest with speaker-disjoint
# splits, log-mel features, a short protonet training, the few-shot table on the test
# speakers, a gallery of the test speakers and closest-speaker queries with their
# held-out clips. 7 to 18 minutes on WUW Corpus II with 2 CPU cores, idle to heavily
# shared (the 300 training steps are most of it).
#
# Usage: bash recipes/quickstart.sh [DATA_DIR] [OUT_DIR]
#   DATA_DIR  a folder-per-speaker tree DATA_DIR/<speaker>/**/<audio> (wav, flac, m4a,
#             mp3, ogg, ...), or a corpus folder whose MANIFEST.tsv has a split column
#             (default: ${SPKID_DATA:-../shared/data}/wuw_corpus_ii)
#   OUT_DIR   everything it writes (default: runs/quickstart)
# Smaller or larger (environment): QUICKSTART_STEPS (training steps, default 300),
# QUICKSTART_WAY / _SHOT / _QUERY (episodes: speakers, support and query clips per
# speaker; default 5 5 5), QUICKSTART_EPISODES (table episodes per cell, default 300),
# QUICKSTART_VAL_TASKS (validation episodes, default 100), QUICKSTART_FRACTIONS
# (speaker split of a plain folder, default train=0.6,dev=0.2,test=0.2).
# Running it again reuses the feature cache and resumes the training where it stopped.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=$(realpath -m -- "${1:-${SPKID_DATA:-$repo/../shared/data}/wuw_corpus_ii}")
out=$(realpath -m -- "${2:-$repo/runs/quickstart}")
if [[ ! -d "$data" ]]; then
    echo "error: $data: no such folder; pass DATA_DIR, a folder-per-speaker tree" \
        "(DATA_DIR/<speaker>/<audio files>), or set SPKID_DATA to the folder holding" \
        "wuw_corpus_ii" >&2
    exit 2
fi
cd "$repo"
source recipes/env.sh
steps=${QUICKSTART_STEPS:-300}
way=${QUICKSTART_WAY:-5}
shot=${QUICKSTART_SHOT:-5}
query=${QUICKSTART_QUERY:-5}
episodes=${QUICKSTART_EPISODES:-300}
val_tasks=${QUICKSTART_VAL_TASKS:-100}
fractions=${QUICKSTART_FRACTIONS:-train=0.6,dev=0.2,test=0.2}
run=$out/protonet
model=$run/best/model.keras
mkdir -p "$out"

# 1. Manifest with speaker-disjoint train/dev/test splits. Training reads manifest paths
# relative to the manifest's folder, so a plain tree is hard-linked (copied across file
# systems) speaker by speaker into OUT_DIR/data (nothing is written into DATA_DIR;
# symbolic links out of a data root are refused as escapes).
if [[ -f "$data/MANIFEST.tsv" ]] && head -n 1 "$data/MANIFEST.tsv" | tr '\t' '\n' | grep -qx split
then
    manifest=$data/MANIFEST.tsv
    echo "== 1. catalogue: $manifest (its own splits)"
    $spkid catalogue --manifest "$manifest"
else
    manifest=$out/data/MANIFEST.tsv
    echo "== 1. catalogue: $data -> $manifest"
    mkdir -p "$out/data"
    for speaker in "$data"/*/; do
        target=$out/data/$(basename "$speaker")
        [[ -e "$target" ]] || cp -al "${speaker%/}" "$target" 2>/dev/null \
            || cp -a "${speaker%/}" "$target"
    done
    $spkid catalogue --folder "$out/data" --split-by speaker --fractions "$fractions" \
        --output "$manifest"
fi
root=$(dirname "$manifest")

# 2. Log-mel features of every split (resumable; the training reads them from here).
echo "== 2. features"
$spkid features --manifest "$manifest" --cache "$out/cache"

# 3. Short training (meta-SR style: cosine prototypes + global classification), chosen
# on dev-speaker episodes; the same command resumes from the last checkpoint. The fixed
# settings are in recipes/configs/quickstart_protonet.json, the command line adds the data,
# the sizes above and where it writes.
echo "== 3. train-protonet: $steps steps, $way-way $shot-shot $query-query"
$spkid train-protonet --config recipes/configs/quickstart_protonet.json \
    --train-corpora "$manifest" --val-corpora "$manifest" --test-corpora "$manifest" \
    --cache "$out/cache" --num-way "$way" --num-support "$shot" --num-query "$query" \
    --num-train-iterations "$steps" --test-interval $(((steps + 2) / 3)) \
    --print-interval $(((steps + 9) / 10)) --val-tasks "$val_tasks" --log-dir "$run"

# Lists of the test speakers (never seen in training): all their clips, and per speaker
# with two clips or more, the last one held out of the gallery to query it.
awk -F '\t' -v OFS='\t' -v dir="$out" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["split"] == "test" { n++; spk[n] = $col["speaker"]; path[n] = $col["path"]
                              last[spk[n]] = n; count[spk[n]]++ }
    END {
        print "speaker", "path" > (dir "/test.tsv")
        print "speaker", "path" > (dir "/enrol.tsv")
        print "speaker", "path" > (dir "/heldout.tsv")
        for (i = 1; i <= n; i++) {
            print spk[i], path[i] > (dir "/test.tsv")
            held = count[spk[i]] > 1 && last[spk[i]] == i
            print spk[i], path[i] > (dir (held ? "/heldout.tsv" : "/enrol.tsv"))
        }
    }' "$manifest"

# 4. Few-shot table on the test speakers (embeddings of the trained model).
echo "== 4. few-shot table"
$spkid extract-embeds --model "$model" --manifest "$out/test.tsv" --root "$root" \
    --output "$out/embeddings/test.npz"
shots=(1)
[[ "$shot" != 1 ]] && shots+=("$shot")
$spkid eval fewshot --embeddings "$out/embeddings/test.npz" --ways "$way" --shots "${shots[@]}" \
    --queries "$query" --episodes "$episodes" --out "$out/eval"

# 5. Gallery of the test speakers (one prototype each from their other clips), then the
# closest speakers of the held-out clips.
echo "== 5. gallery and closest-speaker queries"
$spkid extract-embeds --model "$model" --manifest "$out/enrol.tsv" --root "$root" \
    --output "$out/embeddings/enrol.npz"
$spkid closest-celeb build --embeddings "$out/embeddings/enrol.npz" \
    --output "$out/gallery.npz"
mapfile -t clips < <(awk -F '\t' -v root="$root" 'NR > 1 { print root "/" $2 }' "$out/heldout.tsv")
$spkid closest-celeb query --gallery "$out/gallery.npz" --model "$model" --top-k 3 --json \
    --audio "${clips[@]}" > "$out/queries.jsonl"
head -n 1 "$out/queries.jsonl"
right=$($py - "$out/heldout.tsv" "$out/queries.jsonl" <<'EOF'
import csv, json, sys
speakers = [row["speaker"] for row in csv.DictReader(open(sys.argv[1]), delimiter="\t")]
answers = [json.loads(line) for line in open(sys.argv[2])]
print(sum(a["matches"][0]["speaker"] == s for s, a in zip(speakers, answers) if a.get("matches")))
EOF
)

echo "== done
few-shot table:  $out/eval/fewshot.md (.json, .png)
model:           $model
gallery:         $out/gallery.npz ($(($(wc -l < "$out/enrol.tsv") - 1)) clips of the test speakers)
queries:         $out/queries.jsonl: right speaker first for $right of ${#clips[@]} held-out clips
try:             $spkid closest-celeb query --gallery $out/gallery.npz --model $model --audio CLIP.wav"
