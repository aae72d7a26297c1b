"""The ``spkid`` command: one entry point with a subcommand per job.

``spkid catalogue``  summarise a corpus (and write a manifest, with optional splits)
``spkid features``   compute the log-mel feature cache (parallel, resumable)
``spkid episodes``   draw few-shot episodes from the cache and report their rate
``spkid train-protonet | train-mae | train-classifier``  the training commands
(the same as ``train_protonet.py``, ``train_mae.py``, ``train_classifier.py``)
``spkid download youtube | archive | musan | rirs``  get VoxCeleb and augmentation sets
``spkid export``     package a trained model (raw audio in, calibration beside it)
``spkid convert campplus``  import a PyTorch CAM++ checkpoint (.pt) as a Keras model
``spkid eval fewshot | verify | identify | knn | trials``  evaluation reports
``spkid extract-embeds``  embed a list or folder (the same as ``extract_embeds.py``)
``spkid closest-celeb build | query``  speaker galleries (the same as ``closest_celeb.py``)

Bad input ends with one line on stderr (``error: <file>: <what> (<what to do>)``) and
exit status 2; nothing already written is lost.
"""

from __future__ import annotations

import argparse
import os
import sys

from keras_spkid.cli.reporting import run_command
from keras_spkid.errors import SpkidError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_catalogue_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """Flags that say which corpus to read (exactly one source, or none if not ``required``)."""
    group = parser.add_argument_group("corpus (one of)")
    source = group.add_mutually_exclusive_group(required=required)
    source.add_argument(
        "--corpus",
        help="name of a corpus under $SPKID_DATA / ../shared/data "
        "(wuw_corpus_ii, librispeech_1utt, fsdd)",
    )
    source.add_argument("--manifest", help="MANIFEST.tsv with speaker and path columns")
    source.add_argument("--folder", help="folder-per-speaker tree: <folder>/<speaker>/**/audio")
    source.add_argument(
        "--voxceleb",
        help="VoxCeleb root holding wav/ or aac/ (<root>/wav/<id>/<youtube id>/<NNNNN>.wav)",
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


def catalogue_from_args(args):
    """Build the Catalogue that ``add_catalogue_args`` flags describe."""
    from keras_spkid.data import catalogue, corpora, voxceleb

    if args.corpus:
        result = corpora.load_corpus(args.corpus)
    elif args.manifest:
        result = catalogue.read_manifest(args.manifest, args.root)
    elif args.folder:
        result = catalogue.scan_folder(args.folder)
    elif args.voxceleb:
        result = voxceleb.scan_voxceleb(args.voxceleb)
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
    group.add_argument("--n-mels", type=_positive_int, default=64)
    group.add_argument("--n-fft", type=_positive_int, default=512)
    group.add_argument("--win-length", type=_positive_int, default=400, help="samples (25 ms)")
    group.add_argument("--hop-length", type=_positive_int, default=160, help="samples (10 ms)")
    group.add_argument("--fmin", type=float, default=20.0)
    group.add_argument("--fmax", type=float, default=7600.0)
    group.add_argument("--window", choices=("hann", "hamming"), default="hann")
    group.add_argument("--normalize", choices=("mean", "mean_var", "none"), default="mean")


def frontend_from_args(args):
    """The LogMel layer that ``add_frontend_args`` flags describe."""
    from keras_spkid.audio.frontend import LogMel

    try:
        return LogMel(
            n_mels=args.n_mels, n_fft=args.n_fft, win_length=args.win_length,
            hop_length=args.hop_length, fmin=args.fmin, fmax=args.fmax, window=args.window,
            normalize=None if args.normalize == "none" else args.normalize,
        )  # fmt: skip
    except ValueError as error:
        raise SpkidError(f"front end: {error}") from None


def add_cache_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", default="cache", help="feature cache folder (default: cache)")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=0.2,
        help="shorter clips go to failures.tsv (default 0.2)",
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
    source = (
        args.corpus
        or args.manifest
        or args.folder
        or args.voxceleb
        or args.train_list
        or args.iden_split
    )
    name = os.path.basename(os.path.normpath(source))
    if name == "MANIFEST.tsv":
        name = os.path.basename(os.path.dirname(os.path.abspath(source)))
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def cmd_catalogue(args) -> int:
    from keras_spkid.data.catalogue import write_manifest

    catalogue = catalogue_from_args(args)
    parts = {"all": catalogue}
    if args.split_by:
        fractions = _parse_fractions(args.fractions)
        split = (
            catalogue.speaker_disjoint_split
            if args.split_by == "speaker"
            else catalogue.recording_disjoint_split
        )
        parts = split(fractions, seed=args.seed)
    for name, part in parts.items():
        seconds = [u.seconds for u in part if u.seconds is not None]
        hours = f", {sum(seconds) / 3600:.2f} h" if len(seconds) == len(part) else ""
        recordings = len({u.recording for u in part})
        print(
            f"{name}: {len(part.speakers)} speakers, {len(part)} utterances, "
            f"{recordings} recordings{hours}"
        )
    if args.output:
        if args.split_by:
            from keras_spkid.data.catalogue import Catalogue, Utterance

            merged = [
                Utterance(u.path, u.speaker, u.recording, u.seconds, name)
                for name, part in parts.items()
                for u in part
            ]
            catalogue = Catalogue(catalogue.root, merged, catalogue.name)
        write_manifest(catalogue, args.output)
        print(f"wrote {args.output}")
    return 0


def _parse_fractions(text: str) -> dict[str, float]:
    try:
        fractions = {k: float(v) for k, v in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise SpkidError(
            f"--fractions {text!r}: expected name=fraction,... (e.g. train=0.8,test=0.2)"
        ) from None
    return fractions


def cmd_features(args) -> int:
    catalogue = catalogue_from_args(args)
    cache = cache_from_args(args)
    print(f"{len(catalogue)} utterances of {len(catalogue.speakers)} speakers -> {cache.directory}")
    import time

    start = time.perf_counter()
    index = cache.build(catalogue, num_workers=args.workers, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    print(
        f"cached {index['num_utterances']} utterances in {len(index['shards'])} shards "
        f"({index['num_failures']} failures, listed in {cache.directory / 'failures.tsv'}) "
        f"in {elapsed:.1f} s"
    )
    return 0


def cmd_episodes(args) -> int:
    import time

    from keras_spkid.data.episodes import (
        EpisodeSpec,
        eligible_speakers,
        episode_dataset,
        episode_purpose,
    )
    from keras_spkid.data.store import UtteranceStore

    catalogue = catalogue_from_args(args)
    query = (args.query_frames[0] if len(args.query_frames) == 1
             else tuple(args.query_frames[:2]))  # fmt: skip
    spec = EpisodeSpec(args.num_way, args.num_support, args.num_query, args.support_frames, query)
    if not args.segment_frames:  # fail before computing features if it cannot work
        counts = [len(utts) for utts in catalogue.by_speaker().values()]
        eligible_speakers(
            counts, spec.clips_per_speaker, spec.n_way, episode_purpose(spec), log=False
        )
    cache = cache_from_args(args)
    if not cache.is_complete:
        print(f"computing the feature cache first ({cache.directory})")
        cache.build(catalogue, progress=not args.quiet)
    store = UtteranceStore.from_cache(cache, catalogue, segment_frames=args.segment_frames)
    dataset = episode_dataset(store, spec, args.batch_size, args.seed, args.count)
    start, count = time.perf_counter(), 0
    for batch in dataset:
        count += args.batch_size
    elapsed = time.perf_counter() - start
    print(
        f"{store.num_speakers} speakers, {len(store)} items; last batch: "
        + ", ".join(f"{k} {list(v.shape)}" for k, v in batch.items())
    )
    print(f"{count} episodes in {elapsed:.2f} s: {count / elapsed:.0f} episodes/s")
    return 0


def cmd_export(args) -> int:
    from keras_spkid.inference.export import export_model
    from keras_spkid.scoring.calibration import Calibration

    calibration = Calibration.load(args.calibration) if args.calibration else None
    command = "spkid " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["export"] else None
    for path in export_model(
        args.model,
        args.output,
        calibration,
        args.format,
        {"export_command": command} if command else None,
    ):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spkid", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("catalogue", help="summarise a corpus; write a manifest with splits")
    add_catalogue_args(p)
    p.add_argument(
        "--split-by",
        choices=("speaker", "recording"),
        help="make speaker-disjoint or recording-disjoint splits",
    )
    p.add_argument("--fractions", default="train=0.8,dev=0.1,test=0.1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", help="write the catalogue (with splits) as MANIFEST.tsv")
    p.set_defaults(func=cmd_catalogue)

    p = sub.add_parser("features", help="compute the log-mel feature cache (resumable)")
    add_catalogue_args(p)
    add_frontend_args(p)
    add_cache_args(p)
    p.add_argument("--shard-size", type=_positive_int, default=256)
    p.add_argument("--workers", type=_positive_int, default=None, help="decoding threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("episodes", help="draw N-way K-shot episodes from the cache")
    add_catalogue_args(p)
    add_frontend_args(p)
    add_cache_args(p)
    p.add_argument("--num_way", type=_positive_int, default=5)
    p.add_argument("--num_support", type=_positive_int, default=5)
    p.add_argument("--num_query", type=int, default=15)
    p.add_argument("--support_frames", type=_positive_int, default=200)
    p.add_argument(
        "--query_frames",
        type=_positive_int,
        nargs="+",
        default=[200],
        help="one length, or MIN MAX for variable-length queries",
    )
    p.add_argument(
        "--segment_frames",
        type=_positive_int,
        default=None,
        help="cut long clips into segments of this many frames",
    )
    p.add_argument("--batch_size", type=_positive_int, default=4, help="episodes per batch")
    p.add_argument("--count", type=_positive_int, default=100, help="episodes to draw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_episodes)

    p = sub.add_parser(
        "export",
        help="package a trained model: raw-audio .keras (+ SavedModel, "
        "LiteRT .tflite) with its calibration and config",
    )
    p.add_argument("--model", required=True, help="e.g. runs/NAME/best/model.keras")
    p.add_argument("--output", required=True, help="folder to write")
    p.add_argument(
        "--calibration",
        help="calibration.json to ship with it (default: the one beside --model, if any)",
    )
    p.add_argument(
        "--format",
        nargs="+",
        choices=("keras", "savedmodel", "tflite"),
        default=["keras"],
        help="model.keras is always written; savedmodel adds "
        "saved_model/, tflite adds model.tflite (LiteRT, builtin ops)",
    )
    p.set_defaults(func=cmd_export)

    from keras_spkid.cli.convert import add_convert_parser
    from keras_spkid.cli.download import add_download_parser
    from keras_spkid.cli.evaluate import add_eval_parser

    add_convert_parser(sub)
    add_download_parser(sub)
    add_eval_parser(sub)

    for command in OWN_PARSER_COMMANDS:  # listed in the help; dispatched in main()
        sub.add_parser(command, help=f"see spkid {command} --help")
    return parser


OWN_PARSER_COMMANDS = {  # command -> (module, function) with its own argument parser
    "train-protonet": ("keras_spkid.cli.train", "protonet_main"),
    "train-mae": ("keras_spkid.cli.train", "mae_main"),
    "train-classifier": ("keras_spkid.cli.train", "classifier_main"),
    "extract-embeds": ("keras_spkid.cli.embed", "main"),
    "closest-celeb": ("keras_spkid.cli.celeb", "main"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in OWN_PARSER_COMMANDS:
        import importlib

        module, function = OWN_PARSER_COMMANDS[argv[0]]
        entry = getattr(importlib.import_module(module), function)
        return entry(argv[1:], prog=f"spkid {argv[0]}")
    args = build_parser().parse_args(argv)
    return run_command(args.func, args, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
