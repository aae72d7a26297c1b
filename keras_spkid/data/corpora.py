"""Where the bundled open corpora live, and how to open them by name.

The real speech used for tests, training and benchmarks is read in place from a data
root: the folder given (``--data``, ``root=``), else ``$SPKID_DATA``. Each corpus there
is ``<root>/<name>/MANIFEST.tsv`` plus ``<speaker>/<utt>.flac``.
"""

from __future__ import annotations

import os
from pathlib import Path

from keras_spkid.data.catalogue import Catalogue, read_manifest
from keras_spkid.errors import DataError

CORPORA = ("wuw_corpus_ii", "librispeech_1utt", "fsdd")
DATA_ENV = "SPKID_DATA"


def data_root(root=None) -> Path:
    """The data root: ``root`` if given, else ``$SPKID_DATA``.

    Raises:
        DataError: neither is set.
    """
    if root is not None:
        return Path(root)
    env = os.environ.get(DATA_ENV)
    if not env:
        raise DataError(
            f"no data root: set {DATA_ENV} to the folder that holds {', '.join(CORPORA)} "
            "(e.g. export SPKID_DATA=../shared/data)"
        )
    return Path(env)


def load_corpus(name: str, root=None) -> Catalogue:
    """Catalogue of a corpus under the data root, e.g. ``load_corpus("wuw_corpus_ii")``."""
    root = data_root(root)
    manifest = root / name / "MANIFEST.tsv"
    if not manifest.is_file():
        raise DataError(
            f"{manifest}: corpus '{name}' not found; set SPKID_DATA to the folder that "
            f"holds {', '.join(CORPORA)}"
        )
    return read_manifest(manifest)


def corpus_split(name: str, split: str, root=None, max_speakers: int | None = None) -> Catalogue:
    """One split of a corpus, named ``<corpus>-<split>`` (so caches of splits differ).

    Args:
        name, root: as for :func:`load_corpus`.
        split: ``"train"``, ``"dev"`` or ``"test"`` (the manifest's ``split`` column).
        max_speakers: keep only the first speakers, in sorted order (quick checks).

    Raises:
        DataError: the manifest has no item in that split.
    """
    catalogue = load_corpus(name, root).filter(split=split)
    if not len(catalogue):
        raise DataError(f"{name}: no '{split}' split in its MANIFEST.tsv")
    if max_speakers:
        catalogue = catalogue.filter(speakers=catalogue.speakers[:max_speakers])
    catalogue.name = f"{name}-{split}"
    return catalogue
