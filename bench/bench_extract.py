"""Embedding extraction: real-time factor on one CPU thread, vs a naive per-clip loop.

What is measured, on the same decoded real clips (WUW telephone speech and LibriSpeech
read speech, resampled to 16 kHz before timing), with TensorFlow limited to **one
thread** (intra- and inter-op) as the issue asks:

* **ours**: :class:`keras_spkid.SpeakerEncoder` with the built-in default
  model: full utterances trimmed to a 2% length grid, grouped by length into batches,
  one traced ``tf.function``;
* **baseline**: the obvious loop, ``model(clip[None])`` eagerly for every clip in turn.
* **end to end**: :func:`keras_spkid.inference.extract.extract_embeddings` on the files
  (decoding, resampling, writing the ``.npz``) with one decoding thread, as
  ``extract_embeds.py --workers 1`` runs.

The real-time factor is processing seconds per second of audio (target <= 0.01 for the
default model); the ratio is baseline time / our time in the same repetition.

Run: ``.venv/bin/python bench/bench_extract.py [--record]``
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import _common  # first: it quiets TensorFlow's start-up logging
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from keras_spkid.audio.io import SAMPLE_RATE, load_audio  # noqa: E402
from keras_spkid.data.corpora import load_corpus  # noqa: E402
from keras_spkid.inference.encoder import SpeakerEncoder  # noqa: E402
from keras_spkid.inference.extract import extract_embeddings  # noqa: E402
from keras_spkid.inference.model_io import load_embedding_model  # noqa: E402


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument("--wuw-clips", type=int, default=120)
    parser.add_argument("--libri-clips", type=int, default=20)
    parser.add_argument(
        "--model",
        default="conv6",
        help="preset or .keras file (the recorded results are conv6's; the built-in default "
        "is campplus_zh_en)",
    )
    args = parser.parse_args(argv)
    env = _common.environment()
    env["model"] = args.model
    env["TensorFlow threads"] = "1 intra-op, 1 inter-op"

    rng = random.Random(args.seed)
    files = []
    for corpus, count in (
        ("wuw_corpus_ii", args.wuw_clips),
        ("librispeech_1utt", args.libri_clips),
    ):
        catalogue = load_corpus(corpus, args.data)
        files += [(catalogue.root, u.path) for u in rng.sample(list(catalogue), count)]
    clips = [load_audio(root / path) for root, path in files]
    seconds = sum(c.size for c in clips) / SAMPLE_RATE
    print(f"{len(clips)} clips, {seconds:.0f} s of audio")

    model = load_embedding_model(args.model)
    embedder = SpeakerEncoder(model)

    def ours():
        return embedder(clips)

    def naive():
        return [model.model(c[None], training=False).numpy() for c in clips]

    out = Path(tempfile.mkdtemp()) / "e.npz"

    def end_to_end():
        out.unlink(missing_ok=True)
        # files from two corpora: give absolute paths relative to the file system root
        return extract_embeddings(
            model,
            [str((r / p).relative_to("/")) for r, p in files],
            "/",
            out,
            workers=1,
            progress=False,
        )

    ours(), naive()[0], end_to_end()  # warm-up: tracing, page cache
    times = _common.repeat_paired(
        {
            "naive eager loop": naive,
            "ours": ours,
            "end to end (decode + embed + write)": end_to_end,
        },
        args.repeats,
    )
    rows = []
    for name, t in times.items():
        ratio = (
            "1 (baseline)"
            if name == "naive eager loop"
            else f"{_common.paired_ratio(times['naive eager loop'], t):.2f}"
        )
        rows.append(
            [
                name,
                _common.median(t),
                _common.spread(t),
                f"{_common.median(t) / seconds:.4f}",
                ratio,
            ]
        )
    rtf = _common.median(times["ours"]) / seconds
    body = f"""{len(clips)} real clips ({args.wuw_clips} WUW, {args.libri_clips} LibriSpeech), \
{seconds:.0f} s of audio; built-in default model ({model.dim}-d); TensorFlow on one thread.

{_common.table(["method", "median s", "min-max s", "real-time factor", "speed-up vs naive"], rows)}

Real-time factor of the embedder: **{rtf:.4f}** (target <= 0.01: \
{"met" if rtf <= 0.01 else "not met"})."""
    _common.finish(args, "extract", "Embedding extraction (`bench/bench_extract.py`)", env, body)


if __name__ == "__main__":
    main()
