"""``closest_celeb.py`` / ``spkid closest-celeb``: which enrolled voice is this closest to?

    closest_celeb.py build --embeddings OUT.npz [--names vox1_identities.txt] --output GALLERY.npz
    closest_celeb.py query --gallery GALLERY.npz [--model MODEL.keras] --audio FILE [FILE ...]
                           [--top_k 5] [--json]

``build`` makes one prototype per speaker (mean of L2-normalised embeddings), with
display names from a VoxCeleb identities file, and stores the open-set decision of
``--calibration`` (default: the calibration shipped with the embeddings' model, and its
AS-Norm cohort) and the model's SHA-256. ``query`` prints the top-k names with their
scores per file and "unknown" when the decision shared by every entry point
(:mod:`keras_spkid.scoring.decision`) says so; a gallery made with another model is
refused. ``--json`` prints one object per file per line:
``{"audio": FILE, "matches": [{"name": ..., "score": ...}, ...], "decision": ...}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from keras_spkid.cli.args import new_parser, nonnegative_int, output_file, positive_int, score
from keras_spkid.cli.reporting import run_command
from keras_spkid.errors import SpkidError


def build_parser(prog=None):
    from keras_spkid.search.index import BACKENDS

    parser = new_parser(prog, __doc__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and TensorFlow's messages"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="one prototype per speaker from an embeddings .npz")
    p.add_argument("--embeddings", required=True, help="from extract_embeds.py (with speakers)")
    p.add_argument("--names", help="VoxCeleb identities file ('id10001 A.J._Buckley')")
    p.add_argument(
        "--calibration",
        help="calibration.json whose threshold decides 'unknown' "
        "(default: the one next to the embeddings' model, if any)",
    )
    p.add_argument(
        "--threshold", type=score, help="set the cosine threshold by hand instead (-1 to 1)"
    )
    p.add_argument("--output", type=output_file, required=True, help="the gallery .npz to write")
    p.set_defaults(func=build)

    p = sub.add_parser("query", help="closest speakers of audio files")
    p.add_argument("--gallery", required=True, help="a gallery .npz from 'build'")
    p.add_argument("--model", help="the model the gallery was built with (default: built-in)")
    p.add_argument("--audio", required=True, nargs="+", help="audio files")
    p.add_argument("--top-k", type=positive_int, default=5, help="closest speakers to list")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="search: scikit-learn (for small galleries), TensorFlow brute force, FAISS "
        "exact, or FAISS IVF (approximate); auto picks FAISS IVF above 20,000 entries",
    )
    p.add_argument(
        "--crops", type=nonnegative_int, default=0, help="mean over N 3 s crops; 0 = whole file"
    )
    p.set_defaults(func=query)
    return parser


def build(args) -> int:
    from keras_spkid.data.voxceleb import display_name, read_identities
    from keras_spkid.inference.embedding_set import EmbeddingSet
    from keras_spkid.scoring.calibration import CALIBRATION_FILE, Calibration
    from keras_spkid.scoring.decision import load_cohort
    from keras_spkid.search.gallery import MODEL_KEY, Gallery

    embeddings = EmbeddingSet.load(args.embeddings)
    speakers = embeddings.require_speakers(args.embeddings)
    names = (
        {k: display_name(v) for k, v in read_identities(args.names).items()} if args.names else None
    )
    gallery = Gallery.from_embeddings(
        embeddings.embeddings,
        speakers,
        names,
        meta={
            "model": embeddings.info.get("model"),
            "embeddings": str(args.embeddings),
            MODEL_KEY: embeddings.info.get("model_sha256"),
        },
    )
    calibration = None
    if args.calibration:
        calibration = Calibration.load(args.calibration)
        folder = Path(args.calibration).parent
    elif embeddings.info.get("model"):
        shipped = Path(embeddings.info["model"]).with_name(CALIBRATION_FILE)
        calibration = Calibration.load(shipped) if shipped.is_file() else None
        folder = shipped.parent
    if calibration is not None:
        gallery.set_calibration(calibration, load_cohort(folder))
        if calibration.decision().score == "asnorm" and gallery.cohort is None:
            raise SpkidError(
                f"{folder}: the calibration decides on AS-Norm scores but has no "
                "cohort.npy beside it (run 'spkid eval calibrate-openset' for that model)"
            )
    if args.threshold is not None:
        gallery.threshold = args.threshold
    gallery.save(args.output)
    threshold = (
        "none: every query gets its closest speaker"
        if gallery.decision is None
        else gallery.decision.describe(len(gallery), int(gallery.counts.min()))
    )
    print(
        f"wrote {args.output}: {len(gallery)} speakers from {len(embeddings)} clips; "
        f"'unknown' decision: {threshold}"
    )
    return 0


def query(args) -> int:
    from keras_spkid.inference.encoder import SpeakerEncoder
    from keras_spkid.inference.gallery_fit import check_fits, model_fingerprint
    from keras_spkid.inference.model_io import load_embedding_model
    from keras_spkid.search.gallery import Gallery

    gallery = Gallery.load(args.gallery)
    model = load_embedding_model(args.model)
    check_fits(
        gallery,
        model,
        model_fingerprint(model),
        args.gallery,
        "give the --model it was built with, or rebuild the gallery",
    )
    encoder = SpeakerEncoder(model, crops=args.crops)
    failed = 0
    for path in args.audio:
        try:
            wave = encoder.load(path)  # a long WAV/FLAC is read in blocks, never whole
            encoder.check_query(wave, path)
            result = gallery.identify(encoder([wave], [path]), args.top_k, args.backend)[0]
        except SpkidError as error:
            failed += 1
            if args.json:
                print(json.dumps({"audio": path, "error": str(error)}))
            else:
                print(f"error: {error}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps({"audio": path, **result.as_dict()}))
        else:
            print(f"{path}: {result.decision}")
            for rank, match in enumerate(result.matches, 1):
                print(f"  {rank}. {match.name:<30s} {match.score:.3f}")
    return 2 if failed == len(args.audio) else (1 if failed else 0)


def main(argv=None, prog=None) -> int:
    args = build_parser(prog).parse_args(argv)
    return run_command(args.func, args, verbose=args.verbose)
