"""``spkid download``: VoxCeleb (YouTube re-scrape or official archives), MUSAN, RIRs.

``spkid download youtube``  re-scrape VoxCeleb audio with the URL + timestamp txt files
``spkid download archive``  the official zip parts: MD5, join, extract, m4a -> wav
``spkid download musan``    MUSAN, split into 5 s chunks with a 3 s hop
``spkid download rirs``     the simulated room impulse responses (small, medium rooms)

Every command can be interrupted and run again: it resumes where it stopped.
Credentials for the archives come from ``--user/--password/--key`` or, better (flags
show in the process list), from ``$SPKID_VOX_USER``, ``$SPKID_VOX_PASSWORD`` and
``$SPKID_VOX_KEY``; they are never printed or logged.

Also runnable as ``python -m keras_spkid.cli.download <command> ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keras_spkid.errors import SpkidError


def add_download_parser(subparsers) -> None:
    """Register ``download`` and its sub-commands on an argparse ``subparsers`` object."""
    from keras_spkid.cli.args import nonnegative_float, nonnegative_int, positive_int
    from keras_spkid.cli.sources import add_cache_args, add_frontend_args
    from keras_spkid.download.official import DEFAULT_MIRROR, RELEASES

    parser = subparsers.add_parser(
        "download",
        help="get VoxCeleb (YouTube or archives), MUSAN and RIRs (resumable)",
        description="Download VoxCeleb (YouTube re-scrape or official archives), MUSAN "
        "and RIRs. Interrupt and rerun at will: every command resumes.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="debug logging (also yt-dlp's messages)",
    )
    commands = parser.add_subparsers(dest="download_command", required=True, metavar="WHAT")

    def network_args(p: argparse.ArgumentParser, workers: int) -> None:
        p.add_argument(
            "--workers",
            type=positive_int,
            default=workers,
            help="parallel downloads / conversions",
        )
        p.add_argument(
            "--retries",
            type=nonnegative_int,
            default=3,
            help="retries of a transient network error",
        )
        p.add_argument(
            "--backoff",
            type=nonnegative_float,
            default=2.0,
            help="seconds before the first retry, doubled each time",
        )
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = commands.add_parser(
        "youtube",
        help="re-scrape VoxCeleb from YouTube (yt-dlp + ffmpeg)",
        description="Re-scrape VoxCeleb from YouTube. CS330's voxcelebdownloader.py flags "
        "work too: --url-directory is --txt, --audio-directory is --out (the cut clips), "
        "--output-directory (--output-dir) is the feature cache (--features --cache).",
    )
    p.add_argument(
        "--txt",
        "--url-directory",
        action="append",
        required=True,
        metavar="[SPLIT=]PATH",
        help="unzipped URL+timestamp archive (vox1_dev_txt, holding txt/); "
        "repeat for several splits. SPLIT defaults to dev/test from the name",
    )
    p.add_argument(
        "--out",
        "--audio-directory",
        required=True,
        help="output root: <out>/<split>/wav/<speaker>/<youtube id>/<NNNNN>.wav",
    )
    p.add_argument(
        "--output-directory",
        help="CS330: compute the feature cache into this folder (--features --cache DIR)",
    )
    p.add_argument(
        "--force-post-process",
        action="store_true",
        help="CS330: accepted; features are recomputed whenever the front end changes",
    )
    p.add_argument(
        "--url-template",
        default=None,
        help="video URL with {id} (default: YouTube's watch URL)",
    )
    p.add_argument(
        "--keep-audio",
        action="store_true",
        help="keep each video's downloaded audio in <out>/downloads",
    )
    p.add_argument(
        "--retry-lost",
        action="store_true",
        help="try again the utterances an earlier run found unavailable "
        "(private or removed video) or too short",
    )
    network_args(p, workers=4)
    p.add_argument(
        "--features",
        action="store_true",
        help="then compute the log-mel feature cache of each split",
    )
    add_frontend_args(p)
    add_cache_args(p)
    p.set_defaults(func=cmd_youtube)

    p = commands.add_parser("archive", help="official VoxCeleb archives (parts, MD5, unzip)")
    p.add_argument(
        "--dataset",
        nargs="+",
        required=True,
        choices=sorted(RELEASES),
        help="which releases (vox2 ones are converted from m4a to wav)",
    )
    p.add_argument("--out", default="data", help="output root")
    p.add_argument(
        "--mirror",
        default=DEFAULT_MIRROR,
        help=f"base URL, or a template with {{name}} and {{key}} (default {DEFAULT_MIRROR})",
    )
    p.add_argument(
        "--parts",
        help="part list '<URL or name> <md5>' per line, instead of "
        "the built-in one (one --dataset only)",
    )
    p.add_argument("--archive-md5", help="MD5 of the joined archive, with --parts")
    p.add_argument("--user", help="user name (or $SPKID_VOX_USER)")
    p.add_argument("--password", help="password (better: $SPKID_VOX_PASSWORD)")
    p.add_argument("--key", help="access key for {key} in --mirror (better: $SPKID_VOX_KEY)")
    p.add_argument(
        "--keep-archives", action="store_true", help="keep parts and zips after extraction"
    )
    network_args(p, workers=4)
    p.set_defaults(func=cmd_archive)

    for name, what in (
        ("musan", "MUSAN noise/speech/music, split into 5 s chunks"),
        ("rirs", "simulated room impulse responses (RIRS_NOISES)"),
    ):
        p = commands.add_parser(name, help=what)
        p.add_argument("--out", default="data", help="output root")
        p.add_argument("--url", help="download URL (default: openslr.org)")
        p.add_argument("--md5", help="MD5 of the file at --url (default: the published one)")
        p.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive")
        network_args(p, workers=4)
        p.set_defaults(func=cmd_musan if name == "musan" else cmd_rirs)
        if name == "musan":
            p.add_argument(
                "--from-folder",
                help="split an already unpacked musan/ folder instead of downloading",
            )
        else:
            p.add_argument(
                "--rooms",
                nargs="+",
                default=["smallroom", "mediumroom"],
                choices=["smallroom", "mediumroom", "largeroom"],
                help="room sizes to keep",
            )


def _retry(args):
    from keras_spkid.download.retry import RetryPolicy

    if args.retries < 0 or args.backoff < 0:
        raise SpkidError("--retries and --backoff must be >= 0")
    return RetryPolicy(args.retries, args.backoff)


def _fetcher(args, credentials=None):
    from keras_spkid.download.fetch import Fetcher

    return Fetcher(credentials, _retry(args), progress=not args.quiet)


def _parse_splits(values: list[str]):
    """``--txt [SPLIT=]PATH`` values as :class:`Split` objects."""
    from keras_spkid.download.rescrape import Split, check_split_name, infer_split_name

    splits = []
    for value in values:
        name, sep, path = value.partition("=")
        name, path = (name, path) if sep else (infer_split_name(value), value)
        splits.append(Split(check_split_name(name), Path(path)))
    return splits


def cmd_youtube(args) -> int:
    from keras_spkid.download.rescrape import (
        COVERAGE_FILE,
        FAILURES_FILE,
        format_coverage,
        rescrape,
    )
    from keras_spkid.download.youtube import DEFAULT_URL_TEMPLATE

    args.url_template = args.url_template or DEFAULT_URL_TEMPLATE
    if "{id}" not in args.url_template:
        raise SpkidError(f"--url-template {args.url_template!r} needs an {{id}} placeholder")
    splits = _parse_splits(args.txt)
    out = Path(args.out)
    if args.output_directory:  # CS330's spectrogram folder: our feature cache
        args.features, args.cache = True, args.output_directory
    coverage = rescrape(
        splits,
        out,
        url_template=args.url_template,
        retry=_retry(args),
        workers=args.workers,
        keep_audio=args.keep_audio,
        retry_lost=args.retry_lost,
        progress=not args.quiet,
    )
    print(format_coverage(coverage))
    print(f"lost utterances: {out / FAILURES_FILE}; report: {out / COVERAGE_FILE}")
    if args.features:
        _build_features(args, out, [split.name for split in splits], coverage)
    return 0


def _build_features(args, out: Path, names: list[str], coverage: dict) -> None:
    """The feature cache of every split that has audio, as ``spkid features`` makes it."""
    from keras_spkid.cli.sources import frontend_from_args
    from keras_spkid.data.feature_cache import FeatureCache
    from keras_spkid.data.voxceleb import scan_voxceleb

    frontend = frontend_from_args(args)
    for name in names:
        if not coverage[name]["recovered"]:
            print(f"{name}: no audio, no features")
            continue
        # CS330's --output-directory holds one data set: S/<split>, where the trainers'
        # --spectrogram_directory looks; else <out name>-<split> keeps data sets apart.
        folder = name if args.output_directory else f"{out.name}-{name}"
        cache = FeatureCache(
            Path(args.cache) / folder,
            frontend,
            dtype=args.dtype,
            min_seconds=args.min_seconds,
        )
        index = cache.build(
            scan_voxceleb(out / name), num_workers=args.workers, progress=not args.quiet
        )
        print(f"{name}: cached {index['num_utterances']} utterances in {cache.directory}")


def cmd_archive(args) -> int:
    import dataclasses

    from keras_spkid.download.archives import read_part_list
    from keras_spkid.download.fetch import Credentials
    from keras_spkid.download.official import RELEASES, prepare_release

    releases = [RELEASES[name] for name in dict.fromkeys(args.dataset)]
    if args.parts:
        if len(releases) != 1:
            raise SpkidError("--parts replaces the parts of one --dataset; give only one")
        parts = tuple(read_part_list(args.parts))
        if len(parts) > 1 and not args.archive_md5:
            raise SpkidError(
                "--parts lists several parts: give the MD5 of the joined archive with --archive-md5"
            )
        releases = [
            dataclasses.replace(
                releases[0],
                parts=parts,
                md5=(args.archive_md5 or parts[0].md5).lower(),
                archive=releases[0].archive if len(parts) > 1 else parts[0].name,
            )
        ]
    credentials = Credentials.resolve(args.user, args.password, args.key)
    fetcher = _fetcher(args, credentials)
    for release in releases:
        target = prepare_release(
            release,
            args.out,
            fetcher,
            mirror=args.mirror,
            workers=args.workers,
            keep_archives=args.keep_archives,
            progress=not args.quiet,
        )
        print(f"{release.name}: {target / 'wav'}")
    return 0


def _part(args, default):
    from keras_spkid.download.archives import Part

    if args.url and not args.md5:
        raise SpkidError("--url needs --md5, the MD5 sum of that file")
    return Part(default.name, (args.md5 or default.md5).lower(), args.url or default.url)


def cmd_musan(args) -> int:
    from keras_spkid.download.augmentation import MUSAN, prepare_musan, split_musan

    if args.from_folder:
        target = Path(args.out) / "musan_split"
        written = split_musan(
            args.from_folder, target, workers=args.workers, progress=not args.quiet
        )
        print(f"musan: {written} chunks written to {target}")
        return 0
    target = prepare_musan(
        args.out,
        _fetcher(args),
        _part(args, MUSAN),
        workers=args.workers,
        keep_archive=args.keep_archive,
        progress=not args.quiet,
    )
    print(f"musan: {target}")
    return 0


def cmd_rirs(args) -> int:
    from keras_spkid.download.augmentation import RIRS, prepare_rirs

    target = prepare_rirs(
        args.out,
        _fetcher(args),
        _part(args, RIRS),
        tuple(args.rooms),
        keep_archive=args.keep_archive,
    )
    print(f"rirs: {target}")
    return 0


def main(argv=None) -> int:
    """``python -m keras_spkid.cli.download ...``: the same as ``spkid download ...``."""
    from keras_spkid.cli.args import new_parser
    from keras_spkid.cli.reporting import run_command

    parser = new_parser("spkid")
    add_download_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["download", *(sys.argv[1:] if argv is None else argv)])
    return run_command(args.func, args, verbose=getattr(args, "verbose", False))


if __name__ == "__main__":
    sys.exit(main())
