"""Does episodic fine-tuning help a strong pretrained encoder? A fine-tuned model against its
starting point, paired, on test speakers neither saw.

Both models embed the same clips and are scored on the same seeded N-way K-shot episodes,
so each cell's difference (model - baseline, points) has a paired 95% CI (over episodes).
Sets: the WUW test callers (1-2 s wake words, telephone), the LibriSpeech test readers cut
into 2 s and, for short utterances, 1 s segments, FSDD's six speakers (digits) and, when
``--speech-commands`` is given, the Speech Commands v0.02 test set (1 s keywords of 647
speakers on their own devices: out of domain for every model here). Fine-tuning used the
``train`` splits of WUW and LibriSpeech and selected on their ``dev`` speakers.

    .venv/bin/python bench/bench_finetune.py --model runs/campplus_ft/best/model.keras \\
        --baseline campplus_zh_en --speech-commands /tmp/sc/MLTK_keyworkSpotting/dataset
"""

from __future__ import annotations

import json
from pathlib import Path

import _common  # first: it quiets TensorFlow's start-up logging

from keras_spkid.data.corpora import corpus_split
from keras_spkid.data.speech_commands import scan_speech_commands
from keras_spkid.evaluation.embeddings import corpus_embeddings
from keras_spkid.evaluation.table import MODELS, paired_fewshot
from keras_spkid.inference.model_io import load_embedding_model

QUERIES = 2
"""Queries per speaker and episode (WUW and Speech Commands speakers have few clips)."""


def sets(args):
    """``(label, catalogue, segment_seconds)`` of every set to score."""
    librispeech = corpus_split("librispeech_1utt", "test", args.data)
    out = [
        ("WUW test callers", corpus_split("wuw_corpus_ii", "test", args.data), None),
        ("LibriSpeech test, 2 s", librispeech, 2.0),
        ("LibriSpeech test, 1 s", librispeech, 1.0),
        ("FSDD digits", corpus_split("fsdd", "test", args.data), None),
    ]
    if args.speech_commands:
        out.append(("Speech Commands test", scan_speech_commands(args.speech_commands), None))
    return out


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument("--model", required=True, help="the fine-tuned .keras model")
    parser.add_argument("--baseline", default="campplus_zh_en", help="its starting point")
    parser.add_argument("--speech-commands", type=Path, help="Speech Commands root (optional)")
    parser.add_argument("--ways", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("runs/finetune"))
    args = parser.parse_args(argv)
    env = _common.environment()
    models = {"model": load_embedding_model(args.model), "baseline": load_embedding_model(
        args.baseline
    )}  # fmt: skip
    rows, data = [], []
    for label, catalogue, segment in sets(args):
        embeddings = {
            key: corpus_embeddings(
                models[key], catalogue, args.out / key, segment_seconds=segment, progress=False
            )
            for key in MODELS
        }
        speakers = len(catalogue.speakers)
        for way in [w for w in args.ways if w <= speakers]:
            for shot in args.shots:
                cell = paired_fewshot(embeddings, way, shot, QUERIES, args.episodes, args.seed)
                data.append(dict(set=label, way=way, shot=shot, **cell))
                if "note" in cell:
                    continue
                rows.append(
                    [label, way, shot, cell["speakers"]]
                    + [f"{100 * cell[k]['mean']:.2f} ± {100 * cell[k]['ci95']:.2f}" for k in MODELS]
                    + [f"{100 * cell['difference']['mean']:+.2f} ± "
                       f"{100 * cell['difference']['ci95']:.2f}"]
                )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "finetune.json").write_text(json.dumps(data, indent=1))
    body = (
        f"Model `{args.model}` (sha256 {models['model'].sha256[:12]}) against `{args.baseline}` "
        f"(sha256 {models['baseline'].sha256[:12]}). {args.episodes} seeded episodes per cell "
        f"(seed {args.seed}), {QUERIES} queries per speaker; accuracy % ± 95% CI.\n\n"
        + _common.table(
            ["set", "way", "shot", "speakers", "model (%)", "baseline (%)", "difference"], rows
        )
    )
    _common.finish(args, "finetune", "Episodic fine-tuning vs its starting point", env, body)


if __name__ == "__main__":
    main()
