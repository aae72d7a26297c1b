"""Atomic file writes: a result is either absent or complete, never half written.

Long jobs are killed, machines lose power; a reader (a resumed run, the demo reloading
its gallery) must never see a truncated file. Everything is first written as
``<name>.part`` (plus an extension for writers that insist on one) in the same folder
and renamed onto ``<name>`` once complete (``os.replace`` is atomic on one file system).
Whatever ends in ``.part`` after a kill is garbage that a resumed job may delete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

PART_SUFFIX = ".part"


def part_path(path, suffix: str = "") -> Path:
    """The temporary name of ``path`` while it is written: ``<path>.part<suffix>``."""
    path = Path(path)
    return path.with_name(path.name + PART_SUFFIX + suffix)


@contextlib.contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """Yield ``<path>.part<suffix>`` to write; rename it onto ``path`` when the block succeeds.

    Args:
        path: the file or folder to (re)place; its parent folder is created.
        suffix: appended to the temporary name for writers that infer the format from
            the extension (``".npz"`` for ``np.savez``, ``".keras"``, ``".png"``).

    On any exception (or interruption) the temporary file or folder is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    tmp = part_path(path, suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        remove(tmp)
        raise


def write_text_atomic(path, text: str) -> None:
    """Write a small text file (report, stamp, JSON) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove(path: Path) -> None:
    """Delete a file, link or folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
