"""Re-scrape VoxCeleb from YouTube with the "URLs and timestamps" txt trees.

For each split (a txt tree such as ``vox1_dev_txt``) every utterance file
``txt/<speaker>/<youtube_id>/<NNNNN>.txt`` names a video and the video frames (25 fps)
in which the speaker talks. :func:`rescrape` downloads each video's audio once
(:class:`~keras_spkid.download.youtube.AudioDownloader`, a bounded number in
parallel), cuts every utterance at ``first_frame * 640`` to ``(last_frame + 1) * 640``
samples of the 16 kHz audio (exact: 16000 / 25 = 640), and writes it in the official
layout::

    <out>/<split>/wav/<speaker>/<youtube_id>/<NNNNN>.wav     16 kHz mono int16
    <out>/downloads/                                         working folder
    <out>/failures.tsv       split, path, youtube_id, status, reason
    <out>/coverage.json      per split: utterances listed, recovered, lost

The ``Offset`` field (audio-visual sync found by SyncNet) is not applied: the
timestamps are positions in the video, and the official audio was cut the same way.

Lost utterances are listed in ``failures.tsv`` with a status: ``unavailable`` (the
video is private or removed), ``too_short`` (the utterance ends after the end of the
audio, e.g. the video was edited) or ``error`` (download or decoding kept failing).
The first two will not change: a rerun reads them from ``failures.tsv`` and does not
download those videos again unless asked (``retry_lost``); ``error`` is retried.

Resumable: wav files are written as ``.part`` and renamed, a rerun removes leftover
``.part`` files, skips utterances whose wav exists and reuses complete downloads.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import soundfile as sf
import yt_dlp
from tqdm.auto import tqdm

from keras_spkid.atomic import atomic_path, write_text_atomic
from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.data.voxceleb import FRAME_RATE, read_timestamp_tree
from keras_spkid.download.files import remove_partials
from keras_spkid.download.retry import RetryPolicy
from keras_spkid.download.youtube import (
    DEFAULT_URL_TEMPLATE,
    YOUTUBE_ID,
    AudioDownloader,
    VideoUnavailable,
)
from keras_spkid.errors import AudioError, ListFormatError, SpkidError

logger = logging.getLogger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE // FRAME_RATE
"""640 samples of 16 kHz audio per 25 fps video frame."""

END_TOLERANCE = SAMPLES_PER_FRAME
"""An utterance may end up to one frame after the decoded audio (codec padding
differs between formats); it is then written that much shorter."""

WORK_FOLDER = "downloads"
FAILURES_FILE = "failures.tsv"
COVERAGE_FILE = "coverage.json"
FAILURE_COLUMNS = ("split", "path", "youtube_id", "status", "reason")
LASTING = ("unavailable", "too_short")
"""Failure statuses that a rerun keeps instead of downloading the video again."""

_SPLIT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class Split:
    """One txt tree to re-scrape.

    Attributes:
        name: split name in reports and in the output path (``dev``, ``test``).
        txt_root: the unzipped txt archive (holding ``txt/``) or its ``txt`` folder.
    """

    name: str
    txt_root: Path


@dataclasses.dataclass(frozen=True)
class Segment:
    """One utterance to cut out of a video's audio.

    Attributes:
        split: split name.
        rel: ``<speaker>/<youtube_id>/<NNNNN>.wav``, relative to the split's wav root.
        path: the wav file to write.
        youtube_id: the video.
        start, stop: sample range ``[start, stop)`` in the 16 kHz audio.
    """

    split: str
    rel: str
    path: Path
    youtube_id: str
    start: int
    stop: int


@dataclasses.dataclass(frozen=True)
class Failure:
    """A lost utterance and why (``status`` is unavailable, error or too_short)."""

    segment: Segment
    status: str
    reason: str


def check_split_name(name: str) -> str:
    """Return ``name`` if it can be a folder name under the output root, else raise.

    Raises:
        SpkidError: empty, ``.``/``..``, the working folder's name, or characters
            other than letters, digits, ``.``, ``-`` and ``_``.
    """
    if not _SPLIT_NAME.fullmatch(name) or name in (".", "..", WORK_FOLDER):
        raise SpkidError(
            f"split name {name!r}: use letters, digits, '.', '-' or '_' "
            "(name the tree with SPLIT=PATH)"
        )
    return name


def infer_split_name(txt_root) -> str:
    """``dev`` or ``test`` from an archive folder name (``vox1_dev_txt``), else its name."""
    name = Path(txt_root).resolve().name
    if name == "txt":
        name = Path(txt_root).resolve().parent.name
    match = re.search(r"(?:^|[_-])(dev|test)(?:[_-]|$)", name)
    return match.group(1) if match else name


def plan_segments(splits: list[Split], out_root) -> dict[str, list[Segment]]:
    """Read the txt trees; return ``{youtube_id: [Segment, ...]}`` sorted by id.

    Raises:
        DataError: a txt tree is missing or empty.
        ListFormatError: a malformed txt file, a folder name that is not an
            11-character YouTube id, or a ``Reference`` that differs from it.
    """
    videos: dict[str, list[Segment]] = defaultdict(list)
    for split in splits:
        wav_root = Path(out_root) / split.name / "wav"
        for entry in read_timestamp_tree(split.txt_root):
            if not YOUTUBE_ID.fullmatch(entry.youtube_id):
                raise ListFormatError(
                    entry.txt_path.parent,
                    0,
                    entry.youtube_id,
                    "an 11-character YouTube id ([A-Za-z0-9_-])",
                )
            if entry.timestamps.reference != entry.youtube_id:
                raise ListFormatError(
                    entry.txt_path,
                    2,
                    entry.timestamps.reference,
                    f"the YouTube id of its folder, {entry.youtube_id}",
                )
            frames = entry.timestamps.frames
            videos[entry.youtube_id].append(
                Segment(
                    split=split.name,
                    rel=entry.wav_path,
                    path=wav_root / entry.wav_path,
                    youtube_id=entry.youtube_id,
                    start=int(frames[0]) * SAMPLES_PER_FRAME,
                    stop=(int(frames[-1]) + 1) * SAMPLES_PER_FRAME,
                )
            )
    return dict(sorted(videos.items()))


def rescrape(
    splits: list[Split],
    out_root,
    url_template: str = DEFAULT_URL_TEMPLATE,
    retry: RetryPolicy | None = None,
    workers: int = 4,
    keep_audio: bool = False,
    retry_lost: bool = False,
    progress: bool = True,
) -> dict:
    """Download and cut every utterance of ``splits`` under ``out_root``.

    Args:
        splits: txt trees; their names must differ.
        out_root: output root (see the module docstring for the layout).
        url_template: video URL with ``{id}``.
        retry: retries and back-off for transient download errors.
        workers: videos downloaded and cut at the same time.
        keep_audio: keep each video's downloaded audio in ``<out>/downloads``.
        retry_lost: try again the utterances an earlier run found unavailable or
            too short (by default they are reported again without a download).
        progress: show a progress bar (utterances).

    Returns:
        The coverage report (also written to ``coverage.json``).
    """
    if len({check_split_name(split.name) for split in splits}) != len(splits):
        raise SpkidError(
            f"split names must differ: {[split.name for split in splits]} "
            "(name the trees with SPLIT=PATH)"
        )
    out_root = Path(out_root)
    videos = plan_segments(splits, out_root)
    downloader = AudioDownloader(out_root / WORK_FOLDER, url_template, retry)
    leftovers = downloader.clean() + sum(
        remove_partials(out_root / split.name / "wav") for split in splits
    )
    if leftovers:
        logger.info("removed %d partial file(s) left by an interrupted run", leftovers)
    known = {} if retry_lost else read_lasting_failures(out_root / FAILURES_FILE)

    failures: list[Failure] = []
    total = sum(len(segments) for segments in videos.values())
    bar = tqdm(total=total, unit="utt", desc="re-scrape", disable=not progress, dynamic_ncols=True)
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        futures = {
            pool.submit(_process_video, segments, downloader, known, keep_audio): segments
            for segments in videos.values()
        }
        for future in as_completed(futures):
            failures += future.result()
            bar.update(len(futures[future]))
            bar.set_postfix(lost=len(failures))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()

    write_failures(out_root / FAILURES_FILE, failures)
    coverage = coverage_report(splits, videos, failures)
    write_text_atomic(out_root / COVERAGE_FILE, json.dumps(coverage, indent=1) + "\n")
    return coverage


def _process_video(
    segments: list[Segment],
    downloader: AudioDownloader,
    known: dict[tuple[str, str], tuple[str, str]],
    keep_audio: bool,
) -> list[Failure]:
    """Download one video (unless no utterance of it is left to do) and cut it.

    ``known`` holds the lasting failures of an earlier run, ``{(split, rel): (status,
    reason)}``; they are reported again instead of being retried.
    """
    youtube_id = segments[0].youtube_id
    missing = [segment for segment in segments if not segment.path.is_file()]
    failures = [Failure(s, *known[s.split, s.rel]) for s in missing if (s.split, s.rel) in known]
    todo = [s for s in missing if (s.split, s.rel) not in known]
    if not todo:
        if not keep_audio:  # an earlier run may have stopped before deleting it
            downloader.discard(youtube_id)
        return failures
    try:
        audio = downloader.audio(youtube_id)
    except VideoUnavailable as error:
        logger.debug("%s: unavailable (%s)", youtube_id, error)
        return failures + [Failure(segment, "unavailable", str(error)) for segment in todo]
    except (yt_dlp.utils.DownloadError, AudioError) as error:
        logger.warning(
            "%s: giving up after %d retries (%s)", youtube_id, downloader.retry.retries, error
        )
        return failures + [Failure(segment, "error", str(error)) for segment in todo]
    failures += [failure for segment in todo if (failure := cut(audio, segment)) is not None]
    if not keep_audio:
        downloader.discard(youtube_id)
    return failures


def cut(audio: np.ndarray, segment: Segment) -> Failure | None:
    """Write ``audio[start:stop]`` (``int16 [samples]``) as the segment's wav, atomically.

    Returns:
        ``None`` when written, a ``too_short`` :class:`Failure` when the segment
        ends more than :data:`END_TOLERANCE` samples after the audio.
    """
    if segment.stop > audio.size + END_TOLERANCE:
        return Failure(
            segment,
            "too_short",
            f"utterance ends at {segment.stop / SAMPLE_RATE:.2f} s, after the end "
            f"of the audio ({audio.size / SAMPLE_RATE:.2f} s)",
        )
    with atomic_path(segment.path) as tmp:
        sf.write(
            tmp, audio[segment.start : segment.stop], SAMPLE_RATE, subtype="PCM_16", format="WAV"
        )
    return None


def write_failures(path, failures: list[Failure]) -> None:
    """Write ``failures.tsv`` (header :data:`FAILURE_COLUMNS`), sorted by split and path."""
    rows = sorted(
        (f.segment.split, f.segment.rel, f.segment.youtube_id, f.status, " ".join(f.reason.split()))
        for f in failures
    )
    text = "\t".join(FAILURE_COLUMNS) + "\n" + "".join("\t".join(row) + "\n" for row in rows)
    write_text_atomic(path, text)


def read_lasting_failures(path) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(split, rel): (status, reason)}`` of an earlier ``failures.tsv``, for the
    statuses in :data:`LASTING` (rows of another shape are ignored)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return {
        (row[0], row[1]): (row[3], row[4])
        for row in rows[1:]
        if len(row) == len(FAILURE_COLUMNS) and row[3] in LASTING
    }


def coverage_report(
    splits: list[Split], videos: dict[str, list[Segment]], failures: list[Failure]
) -> dict:
    """Per split: utterances and videos listed, recovered, and lost by status.

    ``recovered`` counts the wav files that exist at the end of the run, whichever
    run wrote them.
    """
    lost: dict[tuple[str, str], int] = defaultdict(int)
    for failure in failures:
        lost[failure.segment.split, failure.status] += 1
    report = {}
    for split in splits:
        segments = [s for group in videos.values() for s in group if s.split == split.name]
        recovered = [s for s in segments if s.path.is_file()]
        listed_videos = {s.youtube_id for s in segments}
        report[split.name] = {
            "utterances": len(segments),
            "recovered": len(recovered),
            "coverage": round(len(recovered) / len(segments), 4) if segments else 0.0,
            "unavailable": lost[split.name, "unavailable"],
            "error": lost[split.name, "error"],
            "too_short": lost[split.name, "too_short"],
            "videos": len(listed_videos),
            "videos_recovered": len({s.youtube_id for s in recovered}),
        }
    return report


def format_coverage(report: dict) -> str:
    """The coverage report as a small text table."""
    lines = [f"{'split':<8} {'videos':>14} {'utterances':>20} {'coverage':>9}   lost"]
    for name, row in report.items():
        lost = ", ".join(f"{row[k]} {k}" for k in ("unavailable", "error", "too_short") if row[k])
        lines.append(
            f"{name:<8} {row['videos_recovered']:>6} of {row['videos']:<6} "
            f"{row['recovered']:>8} of {row['utterances']:<8} {100 * row['coverage']:>8.1f}%"
            f"   {lost or '-'}"
        )
    return "\n".join(lines)
