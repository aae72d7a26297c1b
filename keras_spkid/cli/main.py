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

import sys
from pathlib import Path

from keras_spkid.cli.args import (
    existing_file,
    new_parser,
    nonnegative_int,
    output_file,
    positive_int,
)
from keras_spkid.cli.reporting import run_command
from keras_spkid.cli.sources import (
    add_cache_args,
    add_catalogue_args,
    add_frontend_args,
    cache_from_args,
    catalogue_from_args,
)
from keras_spkid.errors import SpkidError


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
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
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
    if not cache.is_complete_for(catalogue):
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


def build_parser():
    parser = new_parser("spkid", __doc__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and TensorFlow's own messages"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("catalogue", help="summarise a corpus; write a manifest with splits")
    add_catalogue_args(p)
    p.add_argument(
        "--split-by",
        choices=("speaker", "recording"),
        help="make speaker-disjoint or recording-disjoint splits",
    )
    p.add_argument(
        "--fractions",
        default="train=0.8,dev=0.1,test=0.1",
        help="split names and shares, with --split-by",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the split")
    p.add_argument(
        "--output", type=output_file, help="write the catalogue (with splits) as MANIFEST.tsv"
    )
    p.set_defaults(func=cmd_catalogue)

    p = sub.add_parser("features", help="compute the log-mel feature cache (resumable)")
    add_catalogue_args(p)
    add_frontend_args(p)
    add_cache_args(p)
    p.add_argument(
        "--shard-size", type=positive_int, default=256, help="utterances per resumable shard"
    )
    p.add_argument(
        "--workers", type=positive_int, default=None, help="decoding threads (default: CPUs)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("episodes", help="draw N-way K-shot episodes from the cache")
    add_catalogue_args(p)
    add_frontend_args(p)
    add_cache_args(p)
    p.add_argument("--num-way", type=positive_int, default=5, help="speakers per episode (N)")
    p.add_argument(
        "--num-support", type=positive_int, default=5, help="support clips per speaker (K)"
    )
    p.add_argument("--num-query", type=nonnegative_int, default=5, help="queries per speaker (Q)")
    p.add_argument("--support-frames", type=positive_int, default=200, help="support crop length")
    p.add_argument(
        "--query-frames",
        type=positive_int,
        nargs="+",
        default=[200],
        help="one length, or MIN MAX for variable-length queries",
    )
    p.add_argument(
        "--segment-frames",
        type=positive_int,
        default=None,
        help="cut long clips into segments of this many frames",
    )
    p.add_argument("--batch-size", type=positive_int, default=4, help="episodes per batch")
    p.add_argument("--count", type=positive_int, default=100, help="episodes to draw")
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_episodes)

    p = sub.add_parser(
        "export",
        help="package a trained model: raw-audio .keras (+ SavedModel, "
        "LiteRT .tflite, ONNX) with its calibration and config",
    )
    p.add_argument(
        "--model",
        required=True,
        help="a .keras file (e.g. runs/NAME/best/model.keras) or a preset name (conv6, "
        "campplus_zh_en)",
    )
    p.add_argument("--out", "--output", dest="output", required=True, help="folder to write")
    p.add_argument(
        "--calibration",
        type=existing_file,
        help="calibration.json to ship with it (default: the one beside --model, if any)",
    )
    p.add_argument(
        "--format",
        nargs="+",
        choices=("keras", "savedmodel", "tflite", "onnx"),
        default=["keras"],
        help="model.keras is always written; savedmodel adds saved_model/, tflite adds "
        "model.tflite (LiteRT, builtin ops), onnx adds model.onnx (onnxruntime)",
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
    return run_command(args.func, args, verbose=getattr(args, "verbose", False))


if __name__ == "__main__":
    sys.exit(main())
