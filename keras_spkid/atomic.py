"""Atomic file writes: a result is either absent or complete, never half written.

Long jobs are killed, machines lose power; a reader (a resumed run, the demo reloading
its gallery) must never see a truncated file. Everything is written to a temporary name
in the same folder and renamed over the target, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    Args:
        path: the file to (re)place; its folder is created.
        suffix: extension of the temporary name (default: ``path``'s), for writers that
            insist on one (``np.savez`` appends ``.npz`` otherwise).

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix if suffix is None else suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
