"""Parallel m4a to wav conversion: the VoxCeleb2 ``aac`` tree to a ``wav`` tree.

VoxCeleb2 ships AAC in m4a files (``<split>/aac/<speaker>/<youtube_id>/<NNNNN>.m4a``);
training reads 16 kHz wav (``<split>/wav/...``, voxceleb_trainer's ``--convert``).
Each file is one ffmpeg process, so a thread pool keeps every core busy without the
cost of Python processes. The aac tree is left untouched (the reference code converts
in place, mixing both formats in one folder).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from keras_spkid.download.ffmpeg import to_wav
from keras_spkid.download.files import remove_partials
from keras_spkid.errors import AudioError

logger = logging.getLogger(__name__)


def convert_tree(
    source_root, target_root, workers: int = 4, progress: bool = True, suffix: str = ".m4a"
) -> tuple[int, dict[str, str]]:
    """Convert every ``*<suffix>`` under ``source_root`` to a wav under ``target_root``.

    Relative paths are kept (``id00012/_raOc3-IRsw/00001.m4a`` becomes
    ``id00012/_raOc3-IRsw/00001.wav``). Files already converted are skipped and
    leftover ``.part`` files removed, so an interrupted conversion resumes.

    Returns:
        ``(converted, failures)``: how many files were written now, and
        ``{relative source path: reason}`` for files ffmpeg could not decode.
    """
    source_root, target_root = Path(source_root), Path(target_root)
    remove_partials(target_root)
    sources = sorted(source_root.rglob(f"*{suffix}"))
    todo = [
        (source, target_root / source.relative_to(source_root).with_suffix(".wav"))
        for source in sources
    ]
    todo = [(source, target) for source, target in todo if not target.is_file()]
    if len(todo) < len(sources):
        logger.info(
            "%s: %d of %d files already converted",
            target_root,
            len(sources) - len(todo),
            len(sources),
        )

    def convert(item: tuple[Path, Path]) -> str | None:
        try:
            to_wav(*item)
        except AudioError as error:
            return error.reason
        return None

    failures: dict[str, str] = {}
    with (
        ThreadPoolExecutor(max(1, workers)) as pool,
        tqdm(
            total=len(todo), unit="file", desc="m4a->wav", disable=not progress, dynamic_ncols=True
        ) as bar,
    ):
        for (source, _), failure in zip(todo, pool.map(convert, todo)):
            if failure is not None:
                failures[source.relative_to(source_root).as_posix()] = failure
            bar.update(1)
    return len(todo) - len(failures), failures
