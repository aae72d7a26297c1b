"""The demo's two galleries: where they live and whether they fit the model being served.

* the **enrolment gallery** (the people enrolled on the Enrol tab), by default
  ``$XDG_DATA_HOME/keras-spkid/demo_gallery.npz`` so that it survives restarts and
  upgrades; ``--gallery`` chooses another file;
* the **celebrity gallery** searched by the "Closest celebrity" tab: one built by
  ``closest_celeb.py build`` (e.g. VoxCeleb1 with its names) or, by default, the small
  built-in one of LibriSpeech readers (:data:`DEFAULT_CELEBRITIES`, rebuilt by
  :mod:`keras_spkid.app.default_gallery`).

Prototypes are only comparable with embeddings of the model that made them. A gallery
written by the demo records a SHA-256 of that model's weights (:data:`MODEL_KEY` in its
``meta``); a gallery of another model (another file, or another embedding size) is
refused with a message saying what to do, rather than giving meaningless scores.

Several demo processes may serve one enrolment gallery: each change is made under an
exclusive lock of the file (:func:`gallery_lock`) on what is on disk at that moment, so
no process overwrites another's enrolments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from keras_spkid.inference.model_io import EmbeddingModel
from keras_spkid.search.gallery import MODEL_KEY, Gallery

DEFAULT_CELEBRITIES = (
    Path(__file__).resolve().parent.parent / "pretrained" / "default" / "gallery.npz"
)
"""The built-in celebrity gallery (LibriSpeech readers, embedded with the default model)."""


def default_enrolment_path() -> Path:
    """Where the demo keeps enrolled people unless ``--gallery`` says otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "keras-spkid" / "demo_gallery.npz"


def new_gallery(model: EmbeddingModel, fingerprint: str) -> Gallery:
    """An empty gallery for ``model``, deciding "unknown" as its calibration says."""
    gallery = Gallery.empty(meta={"model": str(model.path), MODEL_KEY: fingerprint})
    if model.calibration is not None:
        gallery.set_calibration(model.calibration, model.cohort)
    return gallery


def open_enrolment_gallery(path, model: EmbeddingModel, fingerprint: str) -> Gallery:
    """The enrolment gallery at ``path``, or a new empty one when there is no file yet.

    A gallery without a decision of its own, or whose decision came from an earlier
    calibration of the model (e.g. the pair threshold before open-set calibration), gets
    the model's current one; a threshold set by hand is kept.

    Raises:
        DataError: the file exists but is not a readable gallery.
    """
    path = Path(path)
    if not path.is_file():
        return new_gallery(model, fingerprint)
    gallery = Gallery.load(path)
    calibration = model.calibration
    if calibration is not None:
        recorded = gallery.meta.get("calibration")
        if gallery.decision is None or (
            recorded is not None and recorded != dataclasses.asdict(calibration)
        ):
            gallery.set_calibration(calibration, model.cohort)
    return gallery


def lock_path(path) -> Path:
    """The lock file of the gallery ``path``: ``<path>.lock`` (kept: it holds no data)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def gallery_lock(path) -> Iterator[None]:
    """Hold an exclusive lock of the gallery file ``path`` against other processes.

    An advisory ``fcntl.flock`` of :func:`lock_path`, released when the block ends or
    the process dies. Read, change and save the gallery inside the block.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def file_stamp(path) -> tuple[int, int, int] | None:
    """``(inode, size, mtime_ns)`` of ``path``, or ``None`` without a file: it changes
    whenever a process saves (atomic saves replace the inode) or deletes the gallery."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
