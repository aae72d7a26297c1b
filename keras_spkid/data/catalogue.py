"""Catalogues: which audio files exist, who speaks in them, and from which recording.

A :class:`Catalogue` is the one in-memory description of a speech corpus that every
other part of keras-spkid consumes (feature cache, samplers, evaluation). It is built
from the ``MANIFEST.tsv`` files of ``../shared/data``, from a plain folder-per-speaker
tree, or from the VoxCeleb layouts and list files (:mod:`keras_spkid.data.voxceleb`).

Two kinds of split are offered, because they answer different questions:

* :meth:`Catalogue.speaker_disjoint_split`: no speaker on both sides. For few-shot and
  verification evaluation, where test speakers must never have been seen in training.
* :meth:`Catalogue.recording_disjoint_split`: every speaker on both sides, but no
  recording (YouTube video, phone session, book chapter) on both sides. For closed-set
  identification and kNN, where a random clip split is optimistically biased.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import math
import os
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Sequence

import numpy as np

from keras_spkid.atomic import atomic_path
from keras_spkid.errors import DataError, ListFormatError

logger = logging.getLogger(__name__)

# Components that cannot start with '.', no separators, spaces or drive colons: a path
# check_relative_path returns unchanged. Lets big lists (a VoxCeleb2 train list: about a
# million paths) skip pathlib, about 20x faster.
_CLEAN_RELATIVE_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")

AUDIO_EXTENSIONS = (".wav", ".flac", ".m4a", ".aac", ".mp3", ".ogg", ".opus", ".webm")


class TSV(csv.Dialect):
    """The one dialect of keras-spkid's lists: tab-separated, no quoting, ``\\n`` line ends.

    Quotes are ordinary characters (a stray ``"`` never merges two rows); a field that
    holds a tab or a line end cannot be written.
    """

    delimiter = "\t"
    quoting = csv.QUOTE_NONE
    quotechar = None
    escapechar = None
    doublequote = False
    skipinitialspace = False
    lineterminator = "\n"
    strict = True


def read_tsv(path, what: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-blank line of a tab-separated text file.

    A UTF-8 byte order mark and ``\\r\\n`` line ends are accepted; quotes are not
    special (:class:`TSV`).

    Args:
        path: the file.
        what: what the file is, for messages ("manifest", "list").

    Raises:
        DataError: the file is missing or not UTF-8 text (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: the {what} is not UTF-8 text (byte 0x{raw[error.start]:02x}); "
            "save it as UTF-8"
        ) from None
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield number, line.split("\t")


def check_unique_paths(paths: Iterable[tuple[int, str]], source) -> None:
    """Raise :class:`ListFormatError` at the second line that lists a path again.

    Args:
        paths: ``(line number, path)`` pairs.
    """
    seen: dict[str, int] = {}
    for number, rel in paths:
        first = seen.setdefault(rel, number)
        if first != number:
            raise ListFormatError(source, number, rel, f"a path not listed before (line {first})")


def check_inside_root(root, paths: Iterable[str], source) -> None:
    """Raise :class:`DataError` if a path leaves ``root`` through a symbolic link.

    Paths are already relative and free of ``..`` (:func:`check_relative_path`); this
    resolves the links on the way (one ``realpath`` per folder, one ``lstat`` per file).
    """
    real_root = os.path.realpath(root)
    inside = real_root.rstrip(os.sep) + os.sep
    folders: dict[str, str] = {}
    for rel in paths:
        parent, _, name = rel.rpartition("/")
        real_parent = folders.get(parent)
        if real_parent is None:
            real_parent = folders[parent] = os.path.realpath(os.path.join(root, parent))
        full = os.path.join(real_parent, name)
        if os.path.islink(full):
            full = os.path.realpath(full)
        if not full.startswith(inside):
            raise DataError(
                f"{source}: {rel} leads outside the data root {root} (to {full}) through a "
                "symbolic link; copy the file under the root or change the root"
            )


def check_relative_path(path: str, source="", line_number: int = 0) -> str:
    """Return ``path`` as a clean relative POSIX path, or raise.

    Paths that come from list files, manifests, URLs or uploads are untrusted: an
    absolute path or a ``..`` component could read or write outside the data root.

    Raises:
        ListFormatError: naming ``source`` and ``line_number`` when given.
    """
    if _CLEAN_RELATIVE_PATH.fullmatch(path):
        return path
    cleaned = path.strip().replace("\\", "/")
    parts = PurePosixPath(cleaned).parts
    bad = (
        not cleaned
        or cleaned.startswith("/")
        or re.match(r"^[A-Za-z]:", cleaned) is not None
        or any(part == ".." for part in parts)
        or "\x00" in cleaned
    )
    if bad:
        raise ListFormatError(
            source or "<input>",
            line_number,
            path,
            "a relative path inside the data root (no absolute paths, no '..')",
        )
    return str(PurePosixPath(*[p for p in parts if p != "."]))


def content_key(root, paths: Iterable[str], labels: Iterable[str] | None = None) -> str:
    """SHA-256 (hex) of what decides anything computed from files under ``root``.

    Covers the resolved root, and each path in order with its file's size and
    modification time (``missing`` when absent) and its label (speaker) when given, so a
    cache keyed on it is never reused for another root, a grown or reordered list, or a
    file replaced in place.
    """
    digest = hashlib.sha256(os.path.realpath(root).encode())
    labels = iter(labels) if labels is not None else None
    for rel in paths:
        try:
            stat = os.stat(os.path.join(root, rel))
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        label = next(labels) if labels is not None else ""
        digest.update(f"\n{rel}\t{stamp}\t{label}".encode())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One audio file (or one segment of it) of one speaker.

    Attributes:
        path: path relative to the catalogue root, POSIX separators.
        speaker: speaker id (``id10270``, ``n0011b1d878``, ``103``).
        recording: id of the recording session the clip comes from (YouTube id for
            VoxCeleb, phone session for WUW, chapter for LibriSpeech); clips that share
            it share channel and acoustics, so recording-disjoint splits keep them
            together.
        seconds: duration when known from metadata, else ``None``.
        split: split label from the metadata (``train``/``dev``/``test``) or ``None``.
    """

    path: str
    speaker: str
    recording: str
    seconds: float | None = None
    split: str | None = None


def infer_recording(speaker: str, path: str) -> str:
    """Derive a recording id from a path, using the conventions of known corpora.

    * ``speaker/<recording>/<utt>.wav`` (VoxCeleb): the middle folder.
    * LibriSpeech ``<speaker>-<chapter>-<utt>``: the chapter.
    * WUW Corpus II ``<session>_<utt>``: the 5-digit phone session.
    * Anything else: the file itself is its own recording (no grouping is assumed).
    """
    parts = PurePosixPath(path).parts
    if len(parts) >= 3:
        return f"{speaker}/{parts[-2]}"
    stem = PurePosixPath(path).stem
    librispeech = re.fullmatch(rf"{re.escape(speaker)}-(\d+)-\d+", stem)
    if librispeech:
        return f"{speaker}/{librispeech.group(1)}"
    wuw = re.fullmatch(r"(\d{5})_\d{3}", stem)
    if wuw:
        return f"{speaker}/{wuw.group(1)}"
    return f"{speaker}/{stem}"


@dataclasses.dataclass
class Catalogue:
    """An ordered list of :class:`Utterance` under one root folder.

    Utterance order is kept as given (manifests are read in file order, folders in
    sorted order), so everything derived from a catalogue is reproducible.
    """

    root: Path
    utterances: list[Utterance]
    name: str = ""

    def __post_init__(self):
        self.root = Path(self.root)

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self):
        return iter(self.utterances)

    @property
    def speakers(self) -> list[str]:
        """Sorted speaker ids (the index of an id here is its integer label)."""
        return sorted({u.speaker for u in self.utterances})

    def by_speaker(self) -> dict[str, list[Utterance]]:
        """Utterances grouped by speaker, speakers sorted, utterances in catalogue order."""
        groups: dict[str, list[Utterance]] = defaultdict(list)
        for utt in self.utterances:
            groups[utt.speaker].append(utt)
        return {spk: groups[spk] for spk in sorted(groups)}

    def content_key(self) -> str:
        """:func:`content_key` of the clips and their speakers (keys caches of this catalogue)."""
        return content_key(self.root, (u.path for u in self), (u.speaker for u in self))

    def abspath(self, utterance: Utterance) -> Path:
        """Absolute path of an utterance's audio file."""
        return self.root / utterance.path

    def subset(self, utterances: Iterable[Utterance], suffix: str = "") -> "Catalogue":
        """A catalogue over the same root with the given utterances."""
        name = f"{self.name}:{suffix}" if suffix else self.name
        return Catalogue(self.root, list(utterances), name)

    def filter(
        self,
        split: str | Sequence[str] | None = None,
        speakers: Iterable[str] | None = None,
    ) -> "Catalogue":
        """Keep utterances of the given metadata split(s) and/or speakers."""
        splits = {split} if isinstance(split, str) else set(split or ())
        keep_speakers = set(speakers) if speakers is not None else None
        kept = [
            u
            for u in self.utterances
            if (not splits or u.split in splits)
            and (keep_speakers is None or u.speaker in keep_speakers)
        ]
        return self.subset(kept, ",".join(sorted(splits)))

    def speaker_disjoint_split(
        self, fractions: dict[str, float], seed: int = 0
    ) -> dict[str, "Catalogue"]:
        """Split speakers (not clips) into named parts of roughly the given fractions.

        Args:
            fractions: e.g. ``{"train": 0.8, "dev": 0.1, "test": 0.1}``; must sum to 1.
            seed: shuffles the speakers reproducibly.

        Returns:
            One catalogue per name; every speaker is in exactly one of them.
        """
        names = _check_fractions(fractions)
        speakers = self.speakers
        order = np.random.default_rng(seed).permutation(len(speakers))
        counts = _largest_remainder([fractions[n] for n in names], len(speakers))
        assignment, start = {}, 0
        for name, count in zip(names, counts):
            for index in order[start : start + count]:
                assignment[speakers[index]] = name
            start += count
        return {
            name: self.subset([u for u in self if assignment[u.speaker] == name], name)
            for name in names
        }

    def recording_disjoint_split(
        self, fractions: dict[str, float], seed: int = 0
    ) -> dict[str, "Catalogue"]:
        """Split each speaker's recordings into named parts; no recording is in two.

        Each part with a non-zero fraction gets at least one recording of a speaker
        whenever the speaker has enough recordings. A speaker with a single recording
        cannot be split and is placed whole in the first part (usually ``train``); how
        many such speakers there were is logged.
        """
        names = _check_fractions(fractions)
        rng = np.random.default_rng(seed)
        assignment: dict[str, str] = {}
        unsplittable = 0
        for speaker, utts in self.by_speaker().items():
            recordings = sorted({u.recording for u in utts})
            if len(recordings) < 2:
                unsplittable += 1
                assignment.update({r: names[0] for r in recordings})
                continue
            order = rng.permutation(len(recordings))
            counts = _largest_remainder([fractions[n] for n in names], len(recordings))
            for i, name in enumerate(names):
                if fractions[name] > 0 and counts[i] == 0:
                    donor = int(np.argmax(counts))
                    if counts[donor] > 1:
                        counts[donor] -= 1
                        counts[i] += 1
            start = 0
            for name, count in zip(names, counts):
                for index in order[start : start + count]:
                    assignment[recordings[index]] = name
                start += count
        if unsplittable:
            logger.warning(
                "%s: %d speaker(s) have a single recording and were put whole in '%s'",
                self.name or self.root,
                unsplittable,
                names[0],
            )
        return {
            name: self.subset([u for u in self if assignment[u.recording] == name], name)
            for name in names
        }


def _check_fractions(fractions: dict[str, float]) -> list[str]:
    if not fractions or any(f < 0 for f in fractions.values()):
        raise DataError(f"split fractions must be non-negative, got {fractions}")
    if not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
        raise DataError(f"split fractions must sum to 1, got {fractions}")
    return list(fractions)


def _largest_remainder(fractions: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to ``total`` in proportion to ``fractions``."""
    raw = [f * total for f in fractions]
    counts = [int(math.floor(r)) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


MANIFEST_COLUMNS = ("speaker", "path")


def _table_rows(path, lines, width: int):
    """The non-blank ``(line number, cells)`` rows of :func:`read_tsv` after the header.

    Raises:
        ListFormatError: a row that is not ``width`` cells wide.
    """
    for line_number, row in lines:
        if all(not cell.strip() for cell in row):
            continue
        if len(row) != width:
            raise ListFormatError(
                path, line_number, "\t".join(row), f"{width} tab-separated fields"
            )
        yield line_number, row


def read_manifest(path, root=None) -> Catalogue:
    """Read a tab-separated manifest with a header (``MANIFEST.tsv`` of ``../shared/data``).

    Required columns: ``speaker``, ``path`` (relative to ``root``, by default the
    manifest's folder). Optional: ``seconds``, ``split``, ``recording``; other columns
    (``sample_rate``) are ignored.

    Raises:
        FileNotFoundError-like DataError when the manifest is missing;
        ListFormatError naming the line for a malformed row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found (give the path of a MANIFEST.tsv)")
    root = Path(root) if root is not None else path.parent
    lines = read_tsv(path, "manifest")
    number, header = next(lines, (1, None))
    if header is None:
        raise DataError(f"{path}: manifest is empty (expected a header line)")
    header = [h.strip() for h in header]
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise ListFormatError(
            path, number, "\t".join(header), f"a header with columns {list(MANIFEST_COLUMNS)}"
        )
    column = {name: i for i, name in enumerate(header)}
    utterances, numbers = [], []
    for line_number, row in _table_rows(path, lines, len(header)):
        speaker = row[column["speaker"]].strip()
        rel = check_relative_path(row[column["path"]], path, line_number)
        seconds = None
        if "seconds" in column and row[column["seconds"]].strip():
            try:
                seconds = float(row[column["seconds"]])
            except ValueError:
                raise ListFormatError(
                    path, line_number, "\t".join(row), "a number in the 'seconds' column"
                ) from None
        if not speaker:
            raise ListFormatError(path, line_number, "\t".join(row), "a speaker id")
        recording = (
            row[column["recording"]].strip()
            if "recording" in column
            else infer_recording(speaker, rel)
        )
        split = row[column["split"]].strip() if "split" in column else None
        utterances.append(Utterance(rel, speaker, recording, seconds, split or None))
        numbers.append(line_number)
    check_unique_paths(zip(numbers, (u.path for u in utterances)), path)
    check_inside_root(root, (u.path for u in utterances), path)
    return Catalogue(root, utterances, name=path.parent.name)


def scan_folder(root, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> Catalogue:
    """Catalogue a folder-per-speaker tree: ``root/<speaker>/**/<file>``.

    Works for plain layouts (``alice/clip1.wav``) and VoxCeleb ones
    (``id10270/x6uYqmx31kE/00001.wav``). Hidden files and folders are skipped; files
    and speakers are sorted so the catalogue does not depend on the file system.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (expected <root>/<speaker>/<audio files>)")
    wanted = tuple(e.lower() for e in extensions)
    utterances = []
    for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if speaker_dir.name.startswith("."):
            continue
        for dirpath, dirnames, filenames in os.walk(speaker_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith(".") or not filename.lower().endswith(wanted):
                    continue
                rel = Path(dirpath, filename).relative_to(root).as_posix()
                speaker = speaker_dir.name
                utterances.append(Utterance(rel, speaker, infer_recording(speaker, rel)))
    utterances.sort(key=lambda u: u.path)
    check_inside_root(root, (u.path for u in utterances), root)
    if not utterances:
        raise DataError(
            f"{root}: no audio files ({', '.join(wanted)}) found under <root>/<speaker>/"
        )
    return Catalogue(root, utterances, name=root.name)


def write_manifest(catalogue: Catalogue, path) -> None:
    """Write a catalogue as a MANIFEST.tsv (atomically: temp file then rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, TSV)
        writer.writerow(["speaker", "path", "recording", "seconds", "split"])
        for u in catalogue:
            seconds = "" if u.seconds is None else f"{u.seconds:.3f}"
            writer.writerow([u.speaker, u.path, u.recording, seconds, u.split or ""])


def read_path_list(path, root=None) -> tuple[list[str], list[str] | None]:
    """Read a tab-separated list with a header holding a ``path`` column.

    The input format of ``extract_embeds.py``: ``path`` (relative to an audio root) is
    required; a ``speaker`` column is optional. Other columns are ignored, so a full
    ``MANIFEST.tsv`` is accepted too.

    Returns:
        ``(paths, speakers)``: the paths as given (checked to be relative and free of
        ``..``), and the speakers in the same order, or ``None`` without the column.

    Args:
        path: the list.
        root: the folder its paths are relative to; when given, a path that leads
            outside it through a symbolic link is refused.

    Raises:
        DataError: the file is missing, empty, not UTF-8 or lists no path, or a path
            leads outside ``root``.
        ListFormatError: no ``path`` column, a row of the wrong width, an empty or
            unsafe path, or an empty speaker.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: list not found (give a TSV file with a 'path' column)")
    lines = read_tsv(path, "list")
    number, header = next(lines, (1, None))
    if header is None:
        raise DataError(f"{path}: list is empty (expected a header line with a 'path' column)")
    header = [h.strip() for h in header]
    if "path" not in header:
        raise ListFormatError(path, number, "\t".join(header), "a header with a 'path' column")
    column = {name: i for i, name in enumerate(header)}
    paths, speakers, numbers = [], [] if "speaker" in column else None, []  # numbers: (n, path)
    for line_number, row in _table_rows(path, lines, len(header)):
        given = row[column["path"]].strip()
        paths.append(given)
        numbers.append((line_number, check_relative_path(given, path, line_number)))
        if speakers is not None:
            speaker = row[column["speaker"]].strip()
            if not speaker:
                raise ListFormatError(path, line_number, "\t".join(row), "a speaker id")
            speakers.append(speaker)
    if not paths:
        raise DataError(f"{path}: list has a header but no rows (add one audio path per line)")
    check_unique_paths(numbers, path)
    if root is not None:
        check_inside_root(root, (rel for _, rel in numbers), path)
    return paths, speakers
