"""Flag groups shared by several commands: which corpus, which front end, which cache.

``spkid features``, ``episodes``, ``eval ...`` and ``download youtube --features`` all
read corpora and compute features the same way; their flags are defined once here
(``add_*_args``) with the function that turns the parsed flags into objects
(``*_from_args``). Heavy modules are imported inside those functions, so building a
parser stays fast.
"""

from __future__ import annotations

import argparse
import os

from keras_spkid.cli.args import n_mels, nonnegative_float, positive_float, positive_int
from keras_spkid.errors import SpkidError

SOURCE_FLAGS = (
    "corpus", "manifest", "folder", "voxceleb", "speech_commands", "train_list", "iden_split"
)  # fmt: skip
"""Destinations of the corpus-source flags (exactly one is given)."""


def add_catalogue_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """Flags that say which corpus to read (exactly one source, or none if not ``required``)."""
    group = parser.add_argument_group("corpus (one of)")
    source = group.add_mutually_exclusive_group(required=required)
    source.add_argument(
        "--corpus",
        help="name of a corpus under $SPKID_DATA (e.g. ../shared/data) "
        "(wuw_corpus_ii, librispeech_1utt, fsdd)",
    )
    source.add_argument("--manifest", help="MANIFEST.tsv with speaker and path columns")
    source.add_argument(
        "--folder",
        "--input",
        help="folder-per-speaker tree: <folder>/<speaker>/**/audio",
    )
    source.add_argument(
        "--voxceleb",
        help="VoxCeleb root holding wav/ or aac/ (<root>/wav/<id>/<youtube id>/<NNNNN>.wav)",
    )
    source.add_argument(
        "--speech-commands",
        help="Speech Commands root (<root>/<keyword>/<speaker>_nohash_<n>.wav; its "
        "validation/testing lists become the dev/test splits)",
    )
    source.add_argument(
        "--train-list",
        help="voxceleb_trainer train list ('id00012 id00012/21Uxsk56VDQ/00001.wav'); needs --root",
    )
    source.add_argument(
        "--iden-split",
        help="VoxCeleb1 iden_split.txt ('1 id10001/<yt>/"
        "00001.wav'; splits train/val/test); needs --root (the wav folder)",
    )
    group.add_argument(
        "--root",
        help="audio root for --manifest (default: its folder), --train-list and --iden-split",
    )
    group.add_argument(
        "--split", nargs="+", help="keep only these manifest splits (e.g. train dev)"
    )


def has_source(args) -> bool:
    """True when one of the corpus-source flags was given."""
    return any(getattr(args, flag, None) for flag in SOURCE_FLAGS)


def catalogue_from_args(args):
    """Build the Catalogue that ``add_catalogue_args`` flags describe."""
    from keras_spkid.data import catalogue, corpora, speech_commands, voxceleb

    if args.corpus:
        result = corpora.load_corpus(args.corpus)
    elif args.manifest:
        result = catalogue.read_manifest(args.manifest, args.root)
    elif args.folder:
        result = catalogue.scan_folder(args.folder)
    elif args.voxceleb:
        result = voxceleb.scan_voxceleb(args.voxceleb)
    elif args.speech_commands:
        result = speech_commands.scan_speech_commands(args.speech_commands)
    else:
        if not args.root:
            flag = "--train-list" if args.train_list else "--iden-split"
            raise SpkidError(f"{flag} needs --root, the folder its paths are relative to")
        if args.train_list:
            result = voxceleb.read_train_list(args.train_list, args.root)
        else:
            parts = voxceleb.read_iden_split(args.iden_split, args.root)
            result = catalogue.Catalogue(
                args.root, [u for part in parts.values() for u in part], "voxceleb1_iden"
            )
    if args.split:
        result = result.filter(split=args.split)
        if not len(result):
            raise SpkidError(f"no utterances in split(s) {args.split}")
    return result


def add_frontend_args(parser: argparse.ArgumentParser) -> None:
    """Flags of the LogMel front end (they key the feature cache)."""
    group = parser.add_argument_group("front end (log-mel filterbanks)")
    group.add_argument("--n-mels", type=n_mels, default=64, help="mel bands (1-512)")
    group.add_argument("--n-fft", type=positive_int, default=512, help="FFT size (samples)")
    group.add_argument("--win-length", type=positive_int, default=400, help="samples (25 ms)")
    group.add_argument("--hop-length", type=positive_int, default=160, help="samples (10 ms)")
    group.add_argument("--fmin", type=nonnegative_float, default=20.0, help="lowest mel edge, Hz")
    group.add_argument("--fmax", type=positive_float, default=7600.0, help="highest mel edge, Hz")
    group.add_argument("--window", choices=("hann", "hamming"), default="hann", help="window")
    group.add_argument(
        "--normalize",
        choices=("mean", "mean_var", "none"),
        default="mean",
        help="per-utterance normalisation over time",
    )


def frontend_from_args(args):
    """The LogMel layer that ``add_frontend_args`` flags describe."""
    from keras_spkid.audio.frontend import LogMel

    bins = args.n_fft // 2 + 1
    if args.n_mels > bins:
        raise SpkidError(
            f"--n-mels {args.n_mels}: more mel bands than the {bins} frequency bins of "
            f"--n-fft {args.n_fft} (use at most {bins}, or a larger --n-fft)"
        )
    try:
        return LogMel(
            n_mels=args.n_mels, n_fft=args.n_fft, win_length=args.win_length,
            hop_length=args.hop_length, fmin=args.fmin, fmax=args.fmax, window=args.window,
            normalize=None if args.normalize == "none" else args.normalize,
        )  # fmt: skip
    except ValueError as error:
        raise SpkidError(f"front end: {error}") from None


def add_cache_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", default="cache", help="feature cache folder")
    parser.add_argument(
        "--dtype", choices=("float16", "float32"), default="float16", help="stored precision"
    )
    parser.add_argument(
        "--min-seconds",
        type=nonnegative_float,
        default=0.2,
        help="shorter clips go to failures.tsv",
    )


def cache_from_args(args):
    from keras_spkid.data.feature_cache import FeatureCache

    return FeatureCache(
        os.path.join(args.cache, _catalogue_slug(args)), frontend_from_args(args),
        dtype=args.dtype, min_seconds=args.min_seconds,
        shard_size=getattr(args, "shard_size", 256),
    )  # fmt: skip


def _catalogue_slug(args) -> str:
    """Cache sub-folder of a corpus, so two corpora never share shards."""
    source = next(getattr(args, flag) for flag in SOURCE_FLAGS if getattr(args, flag, None))
    name = os.path.basename(os.path.normpath(source))
    if name == "MANIFEST.tsv":
        name = os.path.basename(os.path.dirname(os.path.abspath(source)))
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
