"""Embed every file of a list, resumably, and write an :class:`EmbeddingSet`.

The list is processed in chunks (default 512 files). Each finished chunk is written
atomically to ``<output>.parts/part-NNNNN.npz``, so a killed run loses at most one chunk
and the same command resumes where it stopped; the parts are merged into ``<output>``
and removed at the end. ``job.json`` in that folder records what decides the parts (model,
root, list and each file's size and modification time, crops) and the chunk size: parts
of another job are discarded, and a resume keeps the interrupted run's chunk size
whatever ``chunk_size`` it is given. Before anything is written, every input must be
either embedded or listed as a failure, or the run fails loudly (no file is silently
lost).

Files that cannot be read (missing, corrupt, silent, shorter than the front end's window)
are skipped with a warning and listed, with the reason, in ``<output stem>.failures.tsv``;
the rest is processed. A run where every file failed leaves no parts behind.

Audio is decoded by a thread pool (soundfile releases the GIL) while the model runs.
"""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from keras_spkid.atomic import atomic_path, remove, write_text_atomic
from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.data.catalogue import check_inside_root, content_key
from keras_spkid.errors import DataError, SpkidError
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.inference.encoder import SpeakerEncoder
from keras_spkid.inference.model_io import EmbeddingModel

logger = logging.getLogger(__name__)


@dataclass
class ExtractionReport:
    """What an extraction did: counts, and the audio and wall time of this run.

    ``audio_seconds`` counts only what this run embedded (not resumed parts).
    """

    embedded: int
    failed: int
    audio_seconds: float
    wall_seconds: float
    failures_path: Path | None

    @property
    def real_time_factor(self) -> float:
        """Processing seconds per second of audio (lower is faster)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else float("nan")

    def __str__(self) -> str:
        text = (
            f"embedded {self.embedded} files ({self.audio_seconds / 60:.1f} min of audio) in "
            f"{self.wall_seconds:.1f} s: real-time factor {self.real_time_factor:.4f}"
        )
        if self.failed:
            text += f"; {self.failed} failed, listed in {self.failures_path}"
        return text


def failures_path_for(output) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".failures.tsv")


PARTS_FORMAT = 2
"""Version of the part files (2: parts record their rows and failed rows)."""


def parts_dir_for(output) -> Path:
    """The folder of resumable parts of ``output``: ``<output>.parts``."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def _fingerprint(model: EmbeddingModel, paths, root, crops, crop_seconds) -> str:
    """Identifies an extraction job, so parts of a different job are never mixed in: the
    model, the crops and :func:`~keras_spkid.data.catalogue.content_key` of the files (the
    resolved root, each path with its size and modification time), so a file replaced
    between a kill and the resume is embedded again."""
    digest = hashlib.sha256()
    items = (PARTS_FORMAT, model.sha256, content_key(root, paths), crops, crop_seconds)
    for item in items:
        digest.update(str(item).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _open_job(parts_dir: Path, fingerprint: str, chunk_size: int) -> int:
    """Prepare ``parts_dir`` for the job ``fingerprint``; return the chunk size to use.

    Parts of another job (or of an older format) are deleted. A resumed job keeps the
    chunk size its parts were cut with, so changing ``--chunk_size`` between runs loses
    nothing.
    """
    stamp = parts_dir / "job.json"
    if parts_dir.is_dir():
        try:
            job = json.loads(stamp.read_text())
        except (OSError, ValueError):
            job = {}
        if job.get("fingerprint") != fingerprint or not isinstance(job.get("chunk_size"), int):
            logger.warning("%s: left by a different extraction job; starting afresh", parts_dir)
            remove(parts_dir)
        elif job["chunk_size"] != chunk_size:
            logger.warning(
                "%s: resuming with the chunk size of the interrupted run (%d, not %d)",
                parts_dir,
                job["chunk_size"],
                chunk_size,
            )
            chunk_size = job["chunk_size"]
    parts_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(stamp, json.dumps({"fingerprint": fingerprint, "chunk_size": chunk_size}))
    return chunk_size


def _check_count(paths, rows: np.ndarray, failed_rows: np.ndarray, parts_dir: Path) -> None:
    """Raise unless every input is embedded or listed as failed, exactly once."""
    done = np.concatenate([rows, failed_rows])
    counts = np.bincount(done, minlength=len(paths)) if done.size else np.zeros(len(paths))
    if len(counts) == len(paths) and np.all(counts == 1):
        return
    lost = np.flatnonzero(counts[: len(paths)] == 0)
    remove(parts_dir)
    example = f", e.g. {paths[lost[0]]!r}" if lost.size else ""
    raise DataError(
        f"{parts_dir}: the parts account for {done.size} of {len(paths)} files "
        f"({lost.size} neither embedded nor failed{example}); they were deleted, run the "
        "same command again"
    )


def _read(encoder: SpeakerEncoder, path: Path):
    """``(waveform or BlockAudio, None)`` (:meth:`SpeakerEncoder.load`), or ``(None, error)``."""
    try:
        return encoder.load(path), None
    except SpkidError as error:
        return None, str(error)


def extract_embeddings(
    model: EmbeddingModel,
    paths: list[str],
    root,
    output,
    speakers: list[str] | None = None,
    crops: int = 0,
    crop_seconds: float = 3.0,
    chunk_size: int = 512,
    workers: int | None = None,
    progress: bool = True,
    info: dict | None = None,
) -> ExtractionReport:
    """Embed ``root / path`` for every path and save an EmbeddingSet to ``output``.

    Args:
        model: a loaded raw-audio model.
        paths: relative paths (already checked: no absolute paths, no ``..``).
        root: folder the paths are relative to.
        output: the ``.npz`` to write.
        speakers: speaker of each path, or ``None``.
        crops, crop_seconds: full utterances (0) or the mean over fixed crops.
        chunk_size: files per resumable part.
        workers: decoding threads (default: CPU count, at most 8).
        info: more provenance to record in the set's ``info`` (e.g. a cache key).

    Raises:
        DataError: the list is empty, a path leads outside ``root`` through a symbolic
            link, no file at all could be embedded, or the parts do not account for
            every file.
    """
    if not paths:
        raise DataError(f"{output}: nothing to embed (the list is empty)")
    if chunk_size < 1:
        raise DataError(f"chunk_size must be at least 1, got {chunk_size}")
    root, output = Path(root), Path(output)
    check_inside_root(root, paths, root)
    parts_dir = parts_dir_for(output)
    fingerprint = _fingerprint(model, paths, root, crops, crop_seconds)
    chunk_size = _open_job(parts_dir, fingerprint, chunk_size)

    embedder = SpeakerEncoder(model, crops=crops, crop_seconds=crop_seconds)
    workers = workers or min(8, os.cpu_count() or 1)
    chunks = range(0, len(paths), chunk_size)
    start_time = time.perf_counter()
    audio_seconds = 0.0
    bar = tqdm(total=len(paths), unit="file", desc="embedding", disable=not progress)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for number, start in enumerate(chunks):
            part = parts_dir / f"part-{number:05d}.npz"
            names = paths[start : start + chunk_size]
            if part.is_file():
                bar.update(len(names))
                continue
            loaded = list(pool.map(lambda path: _read(embedder, path), [root / p for p in names]))
            good, failures = [], []
            for i, (wave, error) in enumerate(loaded):
                if wave is not None:
                    try:
                        embedder.check(wave, root / names[i])
                    except SpkidError as problem:
                        wave, error = None, str(problem)
                if wave is None:
                    logger.warning("skipped %s", error)
                    failures.append((names[i], error))
                else:
                    good.append(i)
            waves = [loaded[i][0] for i in good]
            embeddings = embedder(waves) if waves else np.zeros((0, model.dim), np.float32)
            seconds = np.asarray([w.size / SAMPLE_RATE for w in waves], np.float32)
            audio_seconds += float(seconds.sum())
            with atomic_path(part, ".npz") as tmp:
                np.savez(
                    tmp,
                    start=np.int64(start),
                    stop=np.int64(start + len(names)),
                    rows=np.asarray([start + i for i in good], np.int64),
                    failed_rows=np.asarray(
                        sorted(set(range(start, start + len(names))) - {start + i for i in good}),
                        np.int64,
                    ),
                    embeddings=embeddings,
                    seconds=seconds,
                    failures=np.asarray(json.dumps(failures)),
                )
            bar.update(len(names))
    bar.close()
    wall = time.perf_counter() - start_time

    rows, failed_rows, embeddings, seconds, failures = [], [], [], [], []
    for number, start in enumerate(chunks):
        stop = min(start + chunk_size, len(paths))
        with np.load(parts_dir / f"part-{number:05d}.npz") as data:
            if (int(data["start"]), int(data["stop"])) != (start, stop):
                break  # a part out of place: the count check below fails
            rows.append(data["rows"])
            failed_rows.append(data["failed_rows"])
            embeddings.append(data["embeddings"])
            seconds.append(data["seconds"])
            failures.extend(json.loads(str(data["failures"])))
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    _check_count(paths, rows, np.concatenate(failed_rows or [rows[:0]]), parts_dir)
    failures_file = failures_path_for(output)
    if failures:
        with (
            atomic_path(failures_file) as tmp,
            open(tmp, "w", newline="", encoding="utf-8") as handle,
        ):
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["path", "reason"])
            writer.writerows(failures)
    elif failures_file.exists():
        failures_file.unlink()
    if rows.size == 0:
        remove(parts_dir)  # nothing to resume: every file failed, the reasons are listed
        raise DataError(
            f"{output}: none of the {len(paths)} files could be embedded; "
            f"reasons in {failures_file}"
        )
    result = EmbeddingSet(
        np.asarray(paths)[rows],
        np.concatenate(embeddings),
        None if speakers is None else np.asarray(speakers)[rows],
        np.concatenate(seconds),
        {
            **(info or {}),
            "model": str(model.path),
            "model_sha256": model.sha256,
            "crops": crops,
            "crop_seconds": crop_seconds if crops else None,
            "dim": model.dim,
        },
    )
    result.save(output)
    remove(parts_dir)
    return ExtractionReport(
        len(result), len(failures), audio_seconds, wall, failures_file if failures else None
    )
