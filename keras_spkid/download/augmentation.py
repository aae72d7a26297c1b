"""MUSAN and simulated room impulse responses on disk, in voxceleb_trainer's layout.

::

    <out>/musan/<category>/<subset>/<file>.wav                  the MUSAN release
    <out>/musan_split/<category>/<subset>/<file>/<SSSSS>.wav    5 s chunks, 3 s hop
    <out>/RIRS_NOISES/simulated_rirs/<room>/<RoomNNN>/<file>.wav

``category`` is ``music``, ``speech`` or ``noise``; ``SSSSS`` is the chunk's start in
whole seconds (``00000``, ``00003``, ...). Short chunks make random access cheap: the
reader takes one 5 s file per noise instead of seeking in a 10-minute recording.
Only the small and medium simulated rooms are kept, as voxceleb_trainer does.

Two differences from voxceleb_trainer's ``split_musan``, whose loop is
``range(0, len - 80000, 48000)``: the last chunk that fits exactly is kept, and a file
shorter than one chunk is kept whole rather than dropped (noise is tiled to the
utterance length when mixed anyway). Chunks are 16 kHz mono 16-bit PCM whatever the
source (MUSAN is already 16 kHz), the format ``tf.audio.decode_wav`` reads.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from keras_spkid.atomic import atomic_path, write_text_atomic
from keras_spkid.audio.io import SAMPLE_RATE, prepare_waveform
from keras_spkid.download.archives import Part, extract, fetch_verified, remove_verified
from keras_spkid.download.fetch import Fetcher
from keras_spkid.download.files import remove_partials
from keras_spkid.errors import AudioError, DataError

logger = logging.getLogger(__name__)

MUSAN = Part(
    "musan.tar.gz",
    "0c472d4fc0c5141eca47ad1ffeb2a7df",
    "https://www.openslr.org/resources/17/musan.tar.gz",
)
RIRS = Part(
    "rirs_noises.zip",
    "e6f48e257286e05de56413b4779d8ffb",
    "https://www.openslr.org/resources/28/rirs_noises.zip",
)
RIR_ROOMS = ("smallroom", "mediumroom")
SIMULATED_RIRS = "RIRS_NOISES/simulated_rirs"


def split_musan(
    musan_root,
    split_root,
    chunk_seconds: int = 5,
    hop_seconds: int = 3,
    workers: int = 4,
    progress: bool = True,
) -> int:
    """Cut every ``<musan_root>/<category>/<subset>/<file>.wav`` into overlapping chunks.

    Each file's chunks are written into ``<file>.part/`` and the folder is renamed
    when complete, so an interrupted split resumes with the files not yet done.

    Returns:
        The number of chunks written by this call.

    Raises:
        DataError: no wav file at the expected depth.
        AudioError: a file cannot be read.
    """
    if chunk_seconds < 1 or hop_seconds < 1:
        raise ValueError("chunk_seconds and hop_seconds must be whole seconds >= 1")
    musan_root, split_root = Path(musan_root), Path(split_root)
    sources = sorted(musan_root.glob("*/*/*.wav"))
    if not sources:
        raise DataError(
            f"{musan_root}: no <category>/<subset>/<file>.wav found "
            "(is it the unpacked MUSAN folder?)"
        )
    remove_partials(split_root)
    todo = [
        (source, split_root / source.relative_to(musan_root).with_suffix("")) for source in sources
    ]
    todo = [(source, folder) for source, folder in todo if not folder.is_dir()]

    def split_one(item: tuple[Path, Path]) -> int:
        source, folder = item
        audio = _read_pcm16(source)
        chunk, hop = chunk_seconds * SAMPLE_RATE, hop_seconds * SAMPLE_RATE
        starts = range(0, max(audio.size - chunk, 0) + 1, hop)
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            for start in starts:
                sf.write(
                    tmp / f"{start // SAMPLE_RATE:05d}.wav",
                    audio[start : start + chunk],
                    SAMPLE_RATE,
                    subtype="PCM_16",
                )
        return len(starts)

    with (
        ThreadPoolExecutor(max(1, workers)) as pool,
        tqdm(
            total=len(todo),
            unit="file",
            desc="musan split",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar,
    ):
        written = 0
        for count in pool.map(split_one, todo):
            written += count
            bar.update(1)
    return written


def _read_pcm16(path: Path) -> np.ndarray:
    """``int16 [samples]`` at 16 kHz mono; other rates and channel counts are converted."""
    try:
        info = sf.info(path)
        if info.samplerate == SAMPLE_RATE and info.channels == 1:
            return sf.read(path, dtype="int16")[0]
        samples, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(
            path, f"cannot read it ({error})", "delete it, or unpack MUSAN again"
        ) from None
    waveform = prepare_waveform(samples, rate, source=path, allow_clipping=True)  # loud music
    return np.round(waveform * 32767).astype(np.int16)


def prepare_musan(
    out_root,
    fetcher: Fetcher,
    part: Part = MUSAN,
    workers: int = 4,
    keep_archive: bool = False,
    progress: bool = True,
) -> Path:
    """Download and unpack MUSAN (11 GB) under ``out_root`` and split it; return
    ``<out>/musan_split``. Every step resumes after an interruption."""
    out_root = Path(out_root)
    done = out_root / "musan" / ".extracted"
    if not done.is_file():
        archive = fetch_verified(part, out_root / "archives", part.url, fetcher)
        remove_partials(out_root / "musan")
        extract(
            archive,
            out_root,
            select=lambda name: (
                name if (name.startswith("musan/") and name.endswith(".wav")) else None
            ),
        )
        write_text_atomic(done, f"{part.name}\n")
        if not keep_archive:
            remove_verified(archive)
    split_musan(out_root / "musan", out_root / "musan_split", workers=workers, progress=progress)
    return out_root / "musan_split"


def prepare_rirs(
    out_root,
    fetcher: Fetcher,
    part: Part = RIRS,
    rooms: tuple[str, ...] = RIR_ROOMS,
    keep_archive: bool = False,
) -> Path:
    """Download ``rirs_noises.zip`` and unpack the simulated RIRs of ``rooms``; return
    ``<out>/RIRS_NOISES/simulated_rirs``."""
    out_root = Path(out_root)
    target = out_root / SIMULATED_RIRS
    done = target / f".extracted-{'-'.join(rooms)}"
    if not done.is_file():
        archive = fetch_verified(part, out_root / "archives", part.url, fetcher)
        prefixes = tuple(f"{SIMULATED_RIRS}/{room}/" for room in rooms)
        remove_partials(target)
        extract(
            archive,
            out_root,
            select=lambda name: (
                name if (name.startswith(prefixes) and name.endswith(".wav")) else None
            ),
        )
        write_text_atomic(done, f"{part.name}\n")
        if not keep_archive:
            remove_verified(archive)
    return target


def musan_files(split_root) -> dict[str, list[str]]:
    """``{category: sorted chunk paths}`` of a ``musan_split`` folder.

    Like voxceleb_trainer, the category is the folder four levels above each file
    (``<category>/<subset>/<file>/<chunk>.wav``); every category found is returned.
    """
    files: dict[str, list[str]] = {}
    for path in sorted(Path(split_root).glob("*/*/*/*.wav")):
        files.setdefault(path.parts[-4], []).append(str(path))
    return files


def rir_files(rir_root) -> list[str]:
    """Sorted ``<room>/<RoomNNN>/<file>.wav`` paths of a ``simulated_rirs`` folder."""
    return [str(path) for path in sorted(Path(rir_root).glob("*/*/*.wav"))]
