"""Atomic writes, MD5 sums and the clean-up of what an interrupted run left behind.

Every file a download step produces is first written as ``<name>.part`` in the same
folder and renamed onto ``<name>`` once complete (``os.replace`` is atomic on one file
system). A final name therefore always holds complete data, and whatever ends in
``.part`` after a kill is garbage that :func:`remove_partials` deletes on the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

PART_SUFFIX = ".part"


def part_path(path) -> Path:
    """The temporary name of ``path`` while it is being written: ``<path>.part``."""
    path = Path(path)
    return path.with_name(path.name + PART_SUFFIX)


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield ``<path>.part`` to write; rename it onto ``path`` when the block succeeds.

    On any exception (or interruption) the temporary file or folder is removed and
    ``path`` is left as it was. Parent folders are created.
    """
    path = Path(path)
    tmp = part_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_text_atomic(path, text: str) -> None:
    """Write a small text file (report, stamp) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_partials(root, patterns: Iterable[str] = ("*" + PART_SUFFIX,)) -> int:
    """Delete files and folders under ``root`` matching ``patterns``; return how many.

    Called at the start of every resumable step: a ``.part`` entry only exists when a
    previous run was interrupted while writing it.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    removed = 0
    for pattern in patterns:
        # Deepest first, so a .part folder's own .part children go before it.
        for leftover in sorted(root.rglob(pattern), key=lambda p: len(p.parts), reverse=True):
            if leftover.exists() or leftover.is_symlink():
                _remove(leftover)
                removed += 1
    return removed


def md5sum(path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
