"""MD5 sums and the clean-up of what an interrupted download left behind.

Every file a download step produces is written through
:func:`keras_spkid.atomic.atomic_path` as ``<name>.part`` and renamed once complete, so
whatever ends in ``.part`` after a kill is garbage that :func:`remove_partials` deletes
on the next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from keras_spkid.atomic import (
    PART_SUFFIX,
    atomic_path,
    part_path,
    remove,
    write_text_atomic,
)

__all__ = [
    "PART_SUFFIX",
    "atomic_path",
    "md5sum",
    "part_path",
    "remove_partials",
    "write_text_atomic",
]


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
                remove(leftover)
                removed += 1
    return removed


def md5sum(path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
