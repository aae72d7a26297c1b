"""Training data from named corpora: feature cache once per corpus, stores per split."""

from __future__ import annotations

import logging
from pathlib import Path

from keras_spkid.data.catalogue import read_manifest, scan_folder
from keras_spkid.data.corpora import load_corpus
from keras_spkid.data.feature_cache import FeatureCache
from keras_spkid.data.store import UtteranceStore
from keras_spkid.data.voxceleb import scan_voxceleb
from keras_spkid.errors import DataError

logger = logging.getLogger(__name__)


def open_corpus(name_or_manifest: str):
    """A corpus name under the data root, the path of a MANIFEST.tsv, or an audio folder.

    A folder is read as VoxCeleb (``<folder>/wav/<id>/<youtube id>/<NNNNN>.wav``) when it
    holds ``wav/`` or ``aac/``, else as a folder-per-speaker tree; it has no splits.
    """
    if name_or_manifest.endswith(".tsv"):
        return read_manifest(name_or_manifest)
    folder = Path(name_or_manifest)
    if folder.is_dir():
        if any((folder / name).is_dir() for name in ("wav", "aac")):
            return scan_voxceleb(folder)
        return scan_folder(folder)
    return load_corpus(name_or_manifest)


def corpus_store(
    corpora: list[str],
    split: str | list[str] | None,
    cache_dir,
    frontend,
    segment_frames: int | None = None,
    progress: bool = True,
) -> UtteranceStore:
    """Features of the given split(s) of several corpora as one store.

    The feature cache of each corpus covers all its splits and is computed on first
    use (resumably); speakers are named ``<corpus>/<speaker>``.

    Args:
        corpora: corpus names (``wuw_corpus_ii``) or MANIFEST.tsv paths.
        split: manifest split(s) to keep (``"train"``), or None for everything.
        cache_dir: parent folder of the per-corpus caches.
        frontend: the LogMel layer whose config keys the cache.
        segment_frames: cut long clips into segments of this many frames.
    """
    stores, names = [], []
    for corpus in corpora:
        catalogue = open_corpus(corpus)
        name = catalogue.name or Path(corpus).stem
        cache = FeatureCache(Path(cache_dir) / name, frontend)
        if not cache.is_complete_for(catalogue):
            logger.info("computing features of %s into %s", name, cache.directory)
            cache.build(catalogue, progress=progress)
        part = catalogue.filter(split=split) if split else catalogue
        if not len(part):
            raise DataError(f"{corpus}: no utterances in split {split!r}")
        stores.append(UtteranceStore.from_cache(cache, part, segment_frames))
        names.append(name)
    return UtteranceStore.concatenate(stores, names)


def run_store(config, corpora, split, progress: bool = True) -> UtteranceStore:
    """:func:`corpus_store` of ``corpora`` with a run's cache folder, front end and
    ``segment_frames`` (``config``: a :class:`~keras_spkid.training.config.RunConfig`;
    a method without ``segment_frames`` keeps clips whole)."""
    segment_frames = getattr(config, "segment_frames", None)
    return corpus_store(
        list(corpora), split, config.cache, config.frontend(), segment_frames, progress
    )
