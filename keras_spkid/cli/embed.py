"""``extract_embeds.py`` / ``spkid extract-embeds``: embed every file of a list or folder.

    python extract_embeds.py --model MODEL.keras --manifest LIST.tsv --root DIR --output OUT.npz
    python extract_embeds.py --input DIR --output OUT.npz          # folder-per-speaker tree

``LIST.tsv`` has a header with a ``path`` column (relative to ``--root``, default the
list's folder) and optionally ``speaker``. ``OUT.npz`` holds ``paths`` (as given),
``embeddings`` (float32 ``[n, d]``, L2-normalised) and ``speakers`` when known.
Without ``--model`` the built-in default model is used. A killed run resumes with the
same command; unreadable files are listed in ``<OUT stem>.failures.tsv``.
"""

from __future__ import annotations

from pathlib import Path

from keras_spkid.cli.args import (
    existing_folder,
    new_parser,
    nonnegative_int,
    output_file,
    positive_float,
    positive_int,
)
from keras_spkid.cli.reporting import run_command


def build_parser(prog=None):
    parser = new_parser(prog, __doc__)
    parser.add_argument("--model", help="a .keras model (default: the built-in model)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", help="TSV with a 'path' column (and optionally 'speaker')")
    source.add_argument(
        "--input",
        "--folder",
        type=existing_folder,
        help="folder-per-speaker tree: DIR/<speaker>/**/<audio>",
    )
    parser.add_argument(
        "--root",
        help="folder the manifest's paths are relative to (default: the manifest's folder)",
    )
    parser.add_argument(
        "--output",
        type=output_file,
        required=True,
        help="the .npz to write",
    )
    parser.add_argument(
        "--crops",
        type=nonnegative_int,
        default=0,
        help="mean over N fixed crops (voxceleb_trainer: 10); 0 = full utterances",
    )
    parser.add_argument(
        "--crop-seconds", type=positive_float, default=3.0, help="length of each crop, with --crops"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="audio decoding threads (default: CPUs)"
    )
    parser.add_argument(
        "--chunk-size", type=positive_int, default=512, help="files per resumable part"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and TensorFlow's messages"
    )
    return parser


def extract(args) -> int:
    from keras_spkid.data.catalogue import read_path_list, scan_folder
    from keras_spkid.inference.extract import extract_embeddings
    from keras_spkid.inference.model_io import DEFAULT_MODEL, load_embedding_model

    if args.manifest:
        root = Path(args.root) if args.root else Path(args.manifest).parent
        paths, speakers = read_path_list(args.manifest, root)
    else:
        catalogue = scan_folder(args.input)
        paths, speakers = [u.path for u in catalogue], [u.speaker for u in catalogue]
        root = Path(args.input)
    if args.model is None:
        print(f"no --model given: using the built-in default model ({DEFAULT_MODEL})")
    model = load_embedding_model(args.model)
    report = extract_embeddings(
        model,
        paths,
        root,
        args.output,
        speakers,
        args.crops,
        args.crop_seconds,
        args.chunk_size,
        args.workers,
        progress=not args.quiet,
    )
    print(f"{report}\nwrote {args.output}: {report.embedded} x {model.dim} embeddings")
    return 0


def main(argv=None, prog=None) -> int:
    args = build_parser(prog).parse_args(argv)
    return run_command(extract, args, verbose=args.verbose)
