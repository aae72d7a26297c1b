"""Embed every file of a list, resumably, and write an :class:`EmbeddingSet`.

The list is processed in chunks (default 512 files). Each finished chunk is written
atomically to ``<output>.parts/part-NNNNN.npz``, so a killed run loses at most one chunk
and the same command resumes where it stopped; the parts are merged into ``<output>``
and removed at the end. Files that cannot be read (missing, corrupt, silent, shorter
than the front end's window) are skipped with a warning and listed, with the reason, in
``<output stem>.failures.tsv``; the rest is processed.

Audio is decoded by a thread pool (soundfile releases the GIL) while the model runs.
"""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from keras_spkid.atomic import atomic_path
from keras_spkid.audio.io import SAMPLE_RATE, load_audio
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


def _fingerprint(model: EmbeddingModel, paths, root, crops, crop_seconds) -> str:
    """Identifies an extraction job, so parts of a different job are never mixed in."""
    digest = hashlib.sha256()
    for item in (model.sha256, str(Path(root).resolve()), crops, crop_seconds, "\n".join(paths)):
        digest.update(str(item).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _read(path: Path):
    try:
        return load_audio(path), None
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

    Raises:
        DataError: the list is empty, or no file at all could be embedded.
    """
    if not paths:
        raise DataError(f"{output}: nothing to embed (the list is empty)")
    root, output = Path(root), Path(output)
    parts_dir = output.with_name(output.name + ".parts")
    fingerprint = _fingerprint(model, paths, root, crops, crop_seconds)
    stamp = parts_dir / "job.json"
    if parts_dir.is_dir() and (
        not stamp.is_file() or json.loads(stamp.read_text()).get("fingerprint") != fingerprint
    ):
        logger.warning("%s: left by a different extraction job; starting afresh", parts_dir)
        shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint}))

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
            loaded = list(pool.map(_read, [root / p for p in names]))
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
                    rows=np.asarray([start + i for i in good], np.int64),
                    embeddings=embeddings,
                    seconds=seconds,
                    failures=np.asarray(json.dumps(failures)),
                )
            bar.update(len(names))
    bar.close()
    wall = time.perf_counter() - start_time

    rows, embeddings, seconds, failures = [], [], [], []
    for number in range(len(chunks)):
        with np.load(parts_dir / f"part-{number:05d}.npz") as data:
            rows.append(data["rows"])
            embeddings.append(data["embeddings"])
            seconds.append(data["seconds"])
            failures.extend(json.loads(str(data["failures"])))
    rows = np.concatenate(rows)
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
        raise DataError(
            f"{output}: none of the {len(paths)} files could be embedded; "
            f"reasons in {failures_file}"
        )
    info = {
        "model": str(model.path),
        "model_sha256": model.sha256,
        "crops": crops,
        "crop_seconds": crop_seconds if crops else None,
        "dim": model.dim,
    }
    result = EmbeddingSet(
        np.asarray(paths)[rows],
        np.concatenate(embeddings),
        None if speakers is None else np.asarray(speakers)[rows],
        np.concatenate(seconds),
        info,
    )
    result.save(output)
    shutil.rmtree(parts_dir)
    return ExtractionReport(
        len(result), len(failures), audio_seconds, wall, failures_file if failures else None
    )
