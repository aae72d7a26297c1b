"""Rebuild the built-in "closest celebrity" gallery from open data.

Without VoxCeleb the demo still has voices to compare with: the 251 LibriSpeech readers
of ``librispeech_1utt`` (LibriSpeech train-clean-100, CC BY 4.0, Panayotov et al. 2015),
named "LibriSpeech <reader id>" to credit the corpus. Each reader has one 5-35 s clip,
cut into up to :data:`MAX_SEGMENTS` segments of :data:`SEGMENT_SECONDS` whose embeddings
are averaged into the reader's prototype. The gallery records a SHA-256 of the model's
weights, so the demo refuses it once the default model changes; rebuild it then with

    bash recipes/default_gallery.sh        # or: python -m keras_spkid.app.default_gallery

No threshold is stored: everyone has a closest celebrity.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CORPUS = "librispeech_1utt"
SEGMENT_SECONDS = 3.0
MAX_SEGMENTS = 4
CREDIT = "LibriSpeech train-clean-100 readers (CC BY 4.0, Panayotov et al. 2015)"


def build_default_gallery(model, data_root=None):
    """One prototype per ``librispeech_1utt`` reader, embedded with ``model``.

    Args:
        model: an :class:`~keras_spkid.inference.model_io.EmbeddingModel`.
        data_root: the folder holding ``librispeech_1utt/`` (default: the data root).

    Returns:
        the :class:`~keras_spkid.search.gallery.Gallery` (not yet saved).
    """
    from keras_spkid.app.galleries import MODEL_KEY
    from keras_spkid.audio.io import SAMPLE_RATE, load_audio
    from keras_spkid.data.corpora import load_corpus
    from keras_spkid.data.store import segment_starts
    from keras_spkid.inference.encoder import SpeakerEncoder
    from keras_spkid.inference.gallery_fit import model_fingerprint
    from keras_spkid.search.gallery import Gallery

    catalogue = load_corpus(CORPUS, data_root)
    size = int(SEGMENT_SECONDS * SAMPLE_RATE)
    segments, speakers = [], []
    for utterance in catalogue:
        x = load_audio(catalogue.abspath(utterance))
        pieces = [x[s : s + size] for s in segment_starts(len(x), size)[:MAX_SEGMENTS]]
        segments += pieces
        speakers += [utterance.speaker] * len(pieces)
    embeddings = SpeakerEncoder(model)(segments)
    names = {s: f"LibriSpeech {s}" for s in set(speakers)}
    try:
        shown_model = str(model.path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown_model = model.path.name
    return Gallery.from_embeddings(
        embeddings,
        speakers,
        names,
        meta={
            "source": CREDIT,
            "corpus": CORPUS,
            "segments": len(segments),
            "segment_seconds": SEGMENT_SECONDS,
            "model": shown_model,
            MODEL_KEY: model_fingerprint(model),
        },
    )


def build_parser() -> argparse.ArgumentParser:
    """The recipe's flags; nothing heavy is imported, so ``--help`` is fast."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        help="data root holding librispeech_1utt/ (default: $SPKID_DATA)",
    )
    parser.add_argument("--model", help="model .keras or preset name (default: the built-in one)")
    parser.add_argument(
        "--output",
        help="gallery to write (default: the built-in one, "
        "keras_spkid/pretrained/default/gallery.npz)",
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from keras_spkid.app.galleries import DEFAULT_CELEBRITIES
    from keras_spkid.errors import run_command

    if args.output is None:
        args.output = str(DEFAULT_CELEBRITIES)

    def run(args) -> int:
        from keras_spkid.inference.model_io import load_embedding_model

        gallery = build_default_gallery(load_embedding_model(args.model), args.data)
        gallery.save(args.output)
        print(
            f"wrote {args.output}: {len(gallery)} LibriSpeech readers from "
            f"{gallery.meta['segments']} segments of {SEGMENT_SECONDS:g} s "
            f"({Path(args.output).stat().st_size / 1024:.0f} KiB)"
        )
        return 0

    return run_command(run, args)


if __name__ == "__main__":
    sys.exit(main())
