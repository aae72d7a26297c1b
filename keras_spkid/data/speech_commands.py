"""Read a Speech Commands folder (Warden 2018; v0.01 and v0.02) as a speaker catalogue.

Layout: ``<root>/<keyword>/<speaker>_nohash_<n>.wav`` (at most 1 s, 16 kHz), where ``<speaker>``
is an 8-hex-digit hash of the contributor, who recorded every keyword on their own
device. ``_background_noise_/`` and the test set's ``_silence_/`` hold no speech and are
skipped; the test set's ``_unknown_/<word>_<speaker>_nohash_<n>.wav.wav`` (other words of
the same contributors) are read. The dataset's
``validation_list.txt`` and ``testing_list.txt`` (paths relative to the root, assigned by
a hash of the speaker, so the splits are speaker-disjoint) become the ``dev`` and
``test`` splits when present; every other clip is ``train``. A test-set-only release
(no lists) has no split labels.

Each contributor's clips share one recording id (their device), so recording-disjoint
selections keep them together.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from keras_spkid.data.catalogue import (
    Catalogue,
    Utterance,
    check_inside_root,
    check_relative_path,
    read_tsv,
)
from keras_spkid.errors import DataError

logger = logging.getLogger(__name__)

CLIP_NAME = re.compile(r"(?:[a-z]+_)?(?P<speaker>[0-9a-f]{8})_nohash_(?P<n>\d+)\.wav(?:\.wav)?")
"""A Speech Commands clip's file name (the test set's ``_unknown_`` clips start with
their word and end in ``.wav.wav``)."""
NO_SPEECH_FOLDERS = ("_background_noise_", "_silence_")
SPLIT_LISTS = {"validation_list.txt": "dev", "testing_list.txt": "test"}
CALIBRATION_PARTS = ("cohort", "dev", "test")
"""How :func:`calibration_part` deals contributors out (about a third each)."""


def _split_lists(root: Path) -> dict[str, str]:
    """``{relative path: split}`` from the dataset's split lists (empty without them)."""
    splits: dict[str, str] = {}
    for name, split in SPLIT_LISTS.items():
        path = root / name
        if not path.is_file():
            continue
        for number, fields in read_tsv(path, "split list"):
            splits[check_relative_path("\t".join(fields).strip(), path, number)] = split
    return splits


def scan_speech_commands(root) -> Catalogue:
    """Catalogue every keyword clip under ``root``, speaker = the contributor hash.

    Raises:
        DataError: ``root`` is not a folder or holds no clip named
            ``<8 hex digits>_nohash_<n>.wav`` in a keyword folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"{root}: folder not found (expected <root>/<keyword>/<speaker>_nohash_<n>.wav)"
        )
    splits = _split_lists(root)
    default_split = "train" if splits else None
    utterances, skipped = [], 0
    for keyword in sorted(p for p in root.iterdir() if p.is_dir()):
        if keyword.name.startswith(".") or keyword.name in NO_SPEECH_FOLDERS:
            continue
        for name in sorted(os.listdir(keyword)):
            match = CLIP_NAME.fullmatch(name)
            if match is None:
                skipped += name.lower().endswith(".wav")
                continue
            rel = f"{keyword.name}/{name}"
            speaker = match["speaker"]  # their own device: one recording per contributor
            split = splits.get(rel, default_split)
            utterances.append(Utterance(rel, speaker, speaker, None, split))
    if skipped:
        logger.warning(
            "%s: skipped %d .wav files not named <speaker>_nohash_<n>.wav", root, skipped
        )
    if not utterances:
        raise DataError(
            f"{root}: no Speech Commands clips (<keyword>/<8 hex digits>_nohash_<n>.wav) found"
        )
    check_inside_root(root, (u.path for u in utterances), root)
    return Catalogue(root, utterances, name=root.name)


def calibration_part(speaker: str) -> str:
    """``"cohort"``, ``"dev"`` or ``"test"``: the open-set calibration's use of a contributor.

    Contributors are dealt out by a hash of their id (SHA-1 modulo 3), so the parts are
    speaker-disjoint, about a third each, and the same on every machine and for every
    subset of the folder: AS-Norm cohort voices, calibration voices, and held-out voices
    that measure the result (``spkid eval calibrate-openset --speech-commands``).
    """
    digest = hashlib.sha1(str(speaker).encode("utf-8")).digest()
    return CALIBRATION_PARTS[int.from_bytes(digest[:8], "big") % len(CALIBRATION_PARTS)]
