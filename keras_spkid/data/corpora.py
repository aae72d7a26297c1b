"""Where the bundled open corpora live, and how to open them by name.

The real speech used for tests, training and benchmarks is read in place from a data
root: ``$SPKID_DATA`` when set, else ``../shared/data`` next to the repository. Each
corpus there is ``<root>/<name>/MANIFEST.tsv`` plus ``<speaker>/<utt>.flac``.
"""

from __future__ import annotations

import os
from pathlib import Path

from keras_spkid.data.catalogue import Catalogue, read_manifest
from keras_spkid.errors import DataError

CORPORA = ("wuw_corpus_ii", "librispeech_1utt", "fsdd")
_REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """The data root: ``$SPKID_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("SPKID_DATA")
    return Path(env) if env else _REPO.parent / "shared" / "data"


def load_corpus(name: str, root=None) -> Catalogue:
    """Catalogue of a corpus under the data root, e.g. ``load_corpus("wuw_corpus_ii")``."""
    root = Path(root) if root is not None else data_root()
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
