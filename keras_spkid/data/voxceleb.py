"""Readers for the real VoxCeleb file formats and on-disk layouts.

VoxCeleb ships its metadata as many small text formats (see
``../shared/docs/voxceleb-formats.md``): per-utterance YouTube timestamp files in two
incompatible dialects, trial lists, an identification split, train lists and an
identity table. Every reader here is strict: a
malformed line raises :class:`~keras_spkid.errors.ListFormatError` naming the file and
the line number, and every path or id that will later be joined to a data root is
checked (no absolute paths, no ``..``), because these files are downloaded, not written
by the user.

Audio lists become :class:`~keras_spkid.data.catalogue.Catalogue` objects whose
utterance paths are relative to the ``wav`` folder (``id10270/x6uYqmx31kE/00001.wav``),
the same convention as the trial lists, and whose recording id is
``<speaker>/<youtube_id>``.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import re
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from keras_spkid.data.catalogue import (
    Catalogue,
    Utterance,
    check_inside_root,
    check_relative_path,
    check_unique_paths,
    infer_recording,
    scan_folder,
)
from keras_spkid.errors import DataError, ListFormatError

FRAME_RATE = 25
"""Video frame rate of the VoxCeleb timestamp files (frames per second)."""

UNKNOWN_LABEL = -1
"""Trial label of a 2-column trial line (``enrol test``), whose answer is not given."""

IDEN_SETS = {"1": "train", "2": "val", "3": "test"}
"""Set digits of ``iden_split.txt`` and the catalogue names they map to."""


_TIMESTAMP_KEYS = ("Identity", "Reference", "Offset", "FV Conf", "ASD Conf")
_FRAME_COLUMNS = ["FRAME", "X", "Y", "W", "H"]
_CONFIDENCE_INDEX = re.compile(r"\(\d+\)")


# --------------------------------------------------------------------------- helpers


def _read_lines(path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a text file, 1-based, line ends removed.

    Gzip files are recognised by their magic bytes, not their name. Bytes that are not
    UTF-8 become U+FFFD so that a corrupt file fails on the line that holds the
    garbage, with the usual :class:`ListFormatError`, rather than with a decode error
    that names no line. A UTF-8 byte order mark and ``\\r\\n`` line ends are accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: corrupt gzip file ({error})") from None
    text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line.removesuffix("\r")


def _fields(path, count: int, expected: str) -> Iterator[tuple[int, str, list[str]]]:
    """Yield ``(line_number, line, fields)`` of the non-blank lines of a whitespace-separated
    list, each of exactly ``count`` fields.

    Raises:
        ListFormatError: a line of another width, saying ``expected``.
    """
    for number, line in _read_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != count:
            raise ListFormatError(path, number, line, expected)
        yield number, line, tokens


def _check_id(value: str, source, line_number: int, line: str, what: str) -> str:
    """Return ``value`` if it is usable as one path component, else raise.

    Speaker, YouTube and utterance ids become folder and file names of output paths
    and parts of URLs, so they must be non-empty single components: no ``/`` or ``\\``,
    no whitespace or NUL, and not ``.`` or ``..``.
    """
    bad = not value or value in (".", "..") or re.search(r"[/\\\s\x00]", value) is not None
    if bad:
        raise ListFormatError(source, line_number, line, f"{what} (one path component)")
    return value


def _parse_float(token: str, source, line_number: int, line: str, expected: str) -> float:
    """A finite float, or a :class:`ListFormatError` saying what was expected."""
    try:
        value = float(token)
    except ValueError:
        raise ListFormatError(source, line_number, line, expected) from None
    if not math.isfinite(value):
        raise ListFormatError(source, line_number, line, expected)
    return value


def _voxceleb_path(token: str, source, line_number: int, line: str, expected: str) -> str:
    """Return ``token`` as a checked ``<speaker>/<youtube_id>/<utterance>`` path, or raise.

    Absolute and ``..`` paths raise in :func:`check_relative_path`; the path must then
    have exactly three components.
    """
    rel = check_relative_path(token, source, line_number)
    if rel.count("/") != 2:
        raise ListFormatError(source, line_number, line, expected)
    return rel


def _voxceleb_utterance(
    token: str, source, line_number: int, line: str, expected: str, speaker=None, split=None
) -> Utterance:
    """An :class:`Utterance` for a ``<speaker>/<youtube_id>/<utt>.<ext>`` list entry.

    ``speaker`` defaults to the first path component (train lists give it explicitly).
    """
    rel = _voxceleb_path(token, source, line_number, line, expected)
    speaker = speaker if speaker is not None else rel.split("/", 1)[0]
    return Utterance(rel, speaker, infer_recording(speaker, rel), split=split)


# ------------------------------------------------------------------ timestamp files


@dataclasses.dataclass(frozen=True, eq=False)
class TimestampFile:
    """One VoxCeleb "URLs and timestamps" txt file: where an utterance is in a video.

    Attributes:
        identity: speaker id as written in the file (``id10661``).
        reference: YouTube video id (``lSI69L4DidQ``); the video URL is
            ``https://www.youtube.com/watch?v=<reference>``.
        offset: audio-visual offset in frames found by SyncNet (may be negative).
        fv_conf: face-verification confidence.
        asd_conf: active-speaker-detection confidence.
        frames: ``int64`` array of shape ``(n_frames,)``, the video frame numbers
            (25 fps) of the face track, strictly increasing.

    Face boxes are validated as numbers but not kept: pixel coordinates in the
    VoxCeleb1 dialect, normalised ones in the VoxCeleb2 dialect, and not needed for
    audio.
    """

    identity: str
    reference: str
    offset: int
    fv_conf: float
    asd_conf: float
    frames: np.ndarray

    @property
    def start_seconds(self) -> float:
        """Start of the utterance in the video: ``first_frame / 25``."""
        return float(self.frames[0]) / FRAME_RATE

    @property
    def end_seconds(self) -> float:
        """End of the utterance in the video: ``(last_frame + 1) / 25``.

        Frame ``n`` is shown during ``[n/25, (n+1)/25)``, so the segment ends when the
        last listed frame ends; for a contiguous track ``end - start`` is then exactly
        ``n_frames / 25``, and a one-frame track is not empty.
        """
        return float(self.frames[-1] + 1) / FRAME_RATE


def parse_timestamp_txt(path) -> TimestampFile:
    """Parse one VoxCeleb timestamp txt file, in the VoxCeleb1 or VoxCeleb2 dialect.

    Layout (``·`` = space, ``→`` = TAB)::

        Identity··:·→id10661
        Reference·:·→lSI69L4DidQ
        Offset····:·→-1
        FV·Conf···:·→17.997            (VoxCeleb2: 20.230→(1))
        ASD·Conf··:·→6.338

        FRAME·→X·→Y·→W·→H              (VoxCeleb2: trailing space)
        002316·→223·→80·→130·→130      (VoxCeleb2: normalised floats, trailing space)

    Both dialects are read because VoxCeleb1 and VoxCeleb2 releases differ and the
    official YouTube re-scraper reads only the first. Fields are separated by any
    whitespace; the five header lines must come in this order, blank lines are skipped.

    Raises:
        DataError: the file does not exist.
        ListFormatError: naming the first malformed line; a file that ends early
            (truncated) names the line after its last one.
    """
    lines = [(n, line) for n, line in _read_lines(path) if line.strip()]
    end_of_file = (lines[-1][0] if lines else 0) + 1
    cursor = iter(lines)

    def next_line(expected: str) -> tuple[int, str]:
        item = next(cursor, None)
        if item is None:
            raise ListFormatError(path, end_of_file, "", f"{expected} (file ends early)")
        return item

    header: dict[str, tuple[int, str, list[str]]] = {}
    for key in _TIMESTAMP_KEYS:
        number, line = next_line(f"'{key} : <value>'")
        name, colon, value = line.partition(":")
        tokens = value.split()
        if not colon or name.strip() != key or not tokens:
            raise ListFormatError(path, number, line, f"'{key} : <value>'")
        header[key] = (number, line, tokens)

    def single(key: str, expected: str) -> tuple[str, int, str]:
        number, line, tokens = header[key]
        if len(tokens) != 1:
            raise ListFormatError(path, number, line, expected)
        return tokens[0], number, line

    identity, number, line = single("Identity", "'Identity : <speaker id>'")
    _check_id(identity, path, number, line, "a speaker id")
    reference, number, line = single("Reference", "'Reference : <YouTube id>'")
    _check_id(reference, path, number, line, "a YouTube id")
    offset_token, number, line = single("Offset", "'Offset : <integer>'")
    if re.fullmatch(r"[+-]?\d+", offset_token) is None:
        raise ListFormatError(path, number, line, "'Offset : <integer>'")
    number, line, tokens = header["FV Conf"]
    expected = "'FV Conf : <number>' or 'FV Conf : <number> (<n>)'"
    if len(tokens) > 2 or (len(tokens) == 2 and not _CONFIDENCE_INDEX.fullmatch(tokens[1])):
        raise ListFormatError(path, number, line, expected)
    fv_conf = _parse_float(tokens[0], path, number, line, expected)
    asd_token, number, line = single("ASD Conf", "'ASD Conf : <number>'")
    asd_conf = _parse_float(asd_token, path, number, line, "'ASD Conf : <number>'")

    number, line = next_line("the column header 'FRAME X Y W H'")
    if line.split() != _FRAME_COLUMNS:
        raise ListFormatError(path, number, line, "the column header 'FRAME X Y W H'")

    row_expected = "'<frame number> <x> <y> <w> <h>'"
    frames: list[int] = []
    for number, line in cursor:
        tokens = line.split()
        if len(tokens) != 5 or not tokens[0].isdigit():
            raise ListFormatError(path, number, line, row_expected)
        for token in tokens[1:]:
            _parse_float(token, path, number, line, row_expected)
        frame = int(tokens[0])
        if frames and frame <= frames[-1]:
            raise ListFormatError(path, number, line, f"a frame number greater than {frames[-1]}")
        frames.append(frame)
    if not frames:
        raise ListFormatError(path, end_of_file, "", f"{row_expected} (no frame rows)")
    return TimestampFile(
        identity=identity,
        reference=reference,
        offset=int(offset_token),
        fv_conf=fv_conf,
        asd_conf=asd_conf,
        frames=np.asarray(frames, dtype=np.int64),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class TimestampEntry:
    """One txt file of a timestamp tree, with where its audio belongs.

    Attributes:
        speaker: speaker folder name (``id10001``).
        youtube_id: video folder name (``1zcIwhmdeo4``).
        utterance: file stem (``00001``).
        wav_path: relative output path ``<speaker>/<youtube_id>/<utterance>.wav``,
            the path trial lists and :func:`scan_voxceleb` use for that clip.
        txt_path: the txt file that was parsed.
        timestamps: its parsed content.
    """

    speaker: str
    youtube_id: str
    utterance: str
    wav_path: str
    txt_path: Path
    timestamps: TimestampFile


def read_timestamp_tree(root) -> list[TimestampEntry]:
    """Parse every ``<root>/txt/<speaker>/<youtube_id>/<utterance>.txt`` file.

    ``root`` may be the unzipped archive folder (``vox1_test_txt``) or its ``txt``
    folder. Entries are sorted by speaker, video and utterance. Folder and file names
    are checked with the same rules as ids inside files, because they become output
    paths. Files at other depths and hidden entries are ignored.

    Raises:
        DataError: the folder does not exist or holds no txt file.
        ListFormatError: for the first malformed txt file or unusable name.
    """
    root = Path(root)
    txt_root = root / "txt" if (root / "txt").is_dir() else root
    if not txt_root.is_dir():
        raise DataError(f"{root}: folder not found (expected <root>/txt/<speaker>/...)")

    def children(folder: Path, want_dirs: bool) -> list[Path]:
        return sorted(
            p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir() == want_dirs
        )

    entries = []
    for speaker_dir in children(txt_root, want_dirs=True):
        speaker = _check_id(speaker_dir.name, speaker_dir, 0, speaker_dir.name, "a speaker id")
        for video_dir in children(speaker_dir, want_dirs=True):
            youtube_id = _check_id(video_dir.name, video_dir, 0, video_dir.name, "a YouTube id")
            for txt_path in children(video_dir, want_dirs=False):
                if txt_path.suffix != ".txt":
                    continue
                utterance = _check_id(txt_path.stem, txt_path, 0, txt_path.name, "an utterance id")
                entries.append(
                    TimestampEntry(
                        speaker=speaker,
                        youtube_id=youtube_id,
                        utterance=utterance,
                        wav_path=f"{speaker}/{youtube_id}/{utterance}.wav",
                        txt_path=txt_path,
                        timestamps=parse_timestamp_txt(txt_path),
                    )
                )
    if not entries:
        raise DataError(
            f"{txt_root}: no timestamp files found (expected <speaker>/<youtube_id>/<NNNNN>.txt)"
        )
    return entries


# ---------------------------------------------------------------------- list files


@dataclasses.dataclass
class Trials:
    """A verification trial list.

    Attributes:
        labels: ``int8`` array of shape ``(n_trials,)``: 1 same speaker, 0 different,
            :data:`UNKNOWN_LABEL` (-1) for 2-column lines that give no answer.
        enrol: enrolment path of each trial, relative to the wav root.
        test: test path of each trial, relative to the wav root.
    """

    labels: np.ndarray
    enrol: list[str]
    test: list[str]

    def __len__(self) -> int:
        return len(self.enrol)

    def utterance_paths(self) -> list[str]:
        """Sorted unique paths of all enrolment and test utterances (what to embed)."""
        return sorted(set(self.enrol) | set(self.test))


def read_trials(path) -> Trials:
    """Read a trial list: ``label enrol test`` lines or ``enrol test`` lines.

    Covers ``veri_test.txt``, ``veri_test2.txt``, ``list_test_all*.txt`` and
    ``list_test_hard*.txt``. A label must be ``0`` or ``1``. A 2-column line gets
    :data:`UNKNOWN_LABEL` rather than the random label voxceleb_trainer invents, so an
    unlabelled list can be scored but never silently evaluated. A 2-column line that
    starts with ``0`` or ``1`` is a labelled line with a path missing, not a trial, and
    is rejected. Blank lines are skipped; the last line may lack its newline.

    Raises:
        DataError: missing file, or no trial in it.
        ListFormatError: naming the line, for a wrong column count, a bad label or an
            absolute / ``..`` path.
    """
    labels: list[int] = []
    enrol: list[str] = []
    test: list[str] = []
    checked: dict[str, str] = {}
    for number, line in _read_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) == 3:
            if tokens[0] not in ("0", "1"):
                raise ListFormatError(path, number, line, "a label 0 or 1 before the paths")
            label = int(tokens[0])
        elif len(tokens) == 2 and tokens[0] not in ("0", "1"):
            label = UNKNOWN_LABEL
        else:
            raise ListFormatError(
                path, number, line, "'<label 0|1> <enrol> <test>' or '<enrol> <test>'"
            )
        pair = []
        for token in tokens[-2:]:
            if token not in checked:
                checked[token] = check_relative_path(token, path, number)
            pair.append(checked[token])
        labels.append(label)
        enrol.append(pair[0])
        test.append(pair[1])
    if not labels:
        raise DataError(f"{path}: no trials in the file")
    return Trials(np.asarray(labels, dtype=np.int8), enrol, test)


def read_identities(path) -> dict[str, str]:
    """Read ``vox1_identities.txt`` / ``vox1_meta``-style ``<id> <Name_With_Underscores>``.

    Returns:
        ``{speaker_id: name}`` in file order, names as written (underscores kept, so
        they stay one token); see :func:`display_name` for showing them.

    Raises:
        ListFormatError: for a line without exactly two fields or a repeated id.
    """
    identities: dict[str, str] = {}
    for number, line, tokens in _fields(path, 2, "'<speaker id> <Name_With_Underscores>'"):
        speaker = _check_id(tokens[0], path, number, line, "a speaker id")
        if speaker in identities:
            raise ListFormatError(path, number, line, f"an id not listed before ({speaker})")
        identities[speaker] = tokens[1]
    return identities


def display_name(name: str) -> str:
    """A VoxCeleb identity name for people: ``A.J._Buckley`` -> ``A.J. Buckley``."""
    return name.replace("_", " ")


def read_iden_split(path, root) -> dict[str, Catalogue]:
    """Read the VoxCeleb1 identification split ``iden_split.txt``.

    Lines are ``<set> <speaker>/<youtube_id>/<utt>.wav`` with set ``1`` train, ``2``
    val, ``3`` test. Paths are relative to ``root`` (the ``wav`` folder).

    Returns:
        ``{"train": ..., "val": ..., "test": ...}``, always all three keys, each a
        :class:`Catalogue` in file order whose utterances have ``split`` set to the
        key and ``recording`` ``<speaker>/<youtube_id>``.

    Raises:
        ListFormatError: naming the line, for a wrong shape, an unknown set digit or
            a path that is not ``<speaker>/<youtube_id>/<utt>``.
    """
    expected = "'<set 1|2|3> <speaker>/<youtube_id>/<utt>.wav'"
    parts: dict[str, list[Utterance]] = {name: [] for name in IDEN_SETS.values()}
    numbers = []
    for number, line, tokens in _fields(path, 2, expected):
        if tokens[0] not in IDEN_SETS:
            raise ListFormatError(path, number, line, expected)
        split = IDEN_SETS[tokens[0]]
        parts[split].append(
            _voxceleb_utterance(tokens[1], path, number, line, expected, split=split)
        )
        numbers.append((number, parts[split][-1].path))
    check_unique_paths(numbers, path)
    check_inside_root(root, (rel for _, rel in numbers), path)
    return {name: Catalogue(root, utts, name=name) for name, utts in parts.items()}


def read_train_list(path, root) -> Catalogue:
    """Read a voxceleb_trainer train list: ``<speaker> <speaker>/<youtube_id>/<utt>.wav``.

    The speaker is taken from the first column (as voxceleb_trainer does), the
    recording from the path. Paths are relative to ``root``.

    Raises:
        DataError: no line in the file.
        ListFormatError: naming the line, for a wrong shape or a bad path or id.
    """
    expected = "'<speaker> <speaker>/<youtube_id>/<utt>.wav'"
    utterances, numbers = [], []
    for number, line, tokens in _fields(path, 2, expected):
        speaker = _check_id(tokens[0], path, number, line, "a speaker id")
        utterances.append(
            _voxceleb_utterance(tokens[1], path, number, line, expected, speaker=speaker)
        )
        numbers.append((number, utterances[-1].path))
    if not utterances:
        raise DataError(f"{path}: empty train list")
    check_unique_paths(numbers, path)
    check_inside_root(root, (rel for _, rel in numbers), path)
    return Catalogue(root, utterances, name=Path(path).stem)


def scan_voxceleb(root) -> Catalogue:
    """Catalogue an unpacked VoxCeleb folder: ``<root>/wav/...`` or ``<root>/aac/...``.

    ``root`` is a folder such as ``data/voxceleb1/test`` (holding ``wav/``) or
    ``data/voxceleb2/dev`` (holding ``aac/``, and ``wav/`` after conversion), or the
    ``wav``/``aac`` folder itself. When both exist the decoded ``wav`` tree is used.
    The catalogue root is the ``wav`` (or ``aac``) folder, so utterance paths read
    ``<speaker>/<youtube_id>/<NNNNN>.wav`` like the trial lists.

    Raises:
        DataError: no ``wav``/``aac`` tree, no audio in it, or an audio file that is
            not at ``<speaker>/<youtube_id>/<file>``.
    """
    root = Path(root)
    layouts = {"wav": (".wav",), "aac": (".m4a",)}
    if root.name in layouts and root.is_dir():
        audio_root = root
    else:
        audio_root = next((root / name for name in layouts if (root / name).is_dir()), None)
        if audio_root is None:
            raise DataError(f"{root}: no wav/ or aac/ folder (expected <root>/wav/<speaker>/...)")
    catalogue = scan_folder(audio_root, extensions=layouts[audio_root.name])
    for utterance in catalogue:
        if len(PurePosixPath(utterance.path).parts) != 3:
            raise DataError(
                f"{audio_root / utterance.path}: not at <speaker>/<youtube_id>/<file> "
                "as in VoxCeleb"
            )
    return Catalogue(audio_root, catalogue.utterances, name=root.name)
