"""Feature cache: log-mel filterbanks of a catalogue, pickled in shards with an index.

Computing filterbanks once and training from the cache keeps the accelerator fed
(decoding FLAC/m4a and resampling are the slow part). The cache is built so that a
long job can be killed at any moment and resumed, and so that stale features are never
read:

* ``<cache_dir>/logmel-<key>/``: ``key`` hashes the front-end config (every
  :class:`~keras_spkid.audio.frontend.LogMel` argument, sample rate, stored dtype and
  the minimum clip length), so another config gets another folder.
* ``shard-<hash>.pkl``: the features of a fixed, sorted group of utterance paths; the
  hash names that group and its files (:func:`~keras_spkid.data.catalogue.content_key`:
  resolved root, paths, sizes and modification times), so two corpora cached in one
  folder, or a file replaced in place, never share a shard. A shard is written to a
  temporary file and renamed, so a half-written shard is never read; finished shards are
  kept across runs.
* ``failures.tsv``: files that could not be decoded (corrupt, empty, too short,
  silent), one per line with the reason; the job goes on without them.
* ``index.json``: written last; lists the shards and counts and records the catalogue's
  :meth:`~keras_spkid.data.catalogue.Catalogue.content_key`. The cache is complete for
  a catalogue when its index names that key (:meth:`FeatureCache.is_complete_for`).

Decoding runs in a thread pool (libsndfile and soxr release the GIL) while the main
thread runs the :class:`LogMel` layer, one utterance per call, on TensorFlow's own
thread pool.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from keras_spkid.atomic import PART_SUFFIX, atomic_path, remove, write_text_atomic
from keras_spkid.audio.io import SAMPLE_RATE, load_audio
from keras_spkid.data.catalogue import Catalogue, content_key
from keras_spkid.errors import DataError, SpkidError

logger = logging.getLogger(__name__)

CACHE_FORMAT = 2
"""2: shards keyed on their files (root, paths, sizes, times), index on the catalogue."""


@dataclasses.dataclass(frozen=True)
class CacheConfig:
    """What determines the content of a feature cache.

    Attributes:
        frontend: ``LogMel.get_config()`` minus the layer name/trainable/dtype keys.
        dtype: stored dtype, ``"float16"`` (half the memory) or ``"float32"``.
        min_seconds: shorter clips are listed in ``failures.tsv`` instead of cached.
        shard_size: utterances per shard (a kill loses at most one shard of work).
    """

    frontend: dict
    dtype: str = "float16"
    min_seconds: float = 0.2
    shard_size: int = 256

    @property
    def key(self) -> str:
        """Short hash of everything that changes the stored numbers."""
        payload = json.dumps(
            {
                "format": CACHE_FORMAT,
                "frontend": self.frontend,
                "dtype": self.dtype,
                "min_seconds": self.min_seconds,
            },
            sort_keys=True,
        )
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


def frontend_config(layer) -> dict:
    """The parts of a front end's config that change its output: its class
    (``LogMel``, ``KaldiFbank``) and arguments, not its name or dtype policy."""
    config = layer.get_config()
    for key in ("name", "trainable", "dtype"):
        config.pop(key, None)
    return {"class": type(layer).__name__, **config}


class FeatureCache:
    """A folder of cached log-mel features for one catalogue and one front end.

    Example:
    >>> cache = FeatureCache("cache/wuw", LogMel(n_mels=64))
    >>> cache.build(load_corpus("wuw_corpus_ii"))       # resumable
    >>> features = cache.load()                          # {path: [frames, 64] array}
    """

    def __init__(
        self,
        cache_dir,
        frontend,
        dtype: str = "float16",
        min_seconds: float = 0.2,
        shard_size: int = 256,
    ):
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.frontend = frontend
        self.config = CacheConfig(frontend_config(frontend), dtype, min_seconds, shard_size)
        self.directory = Path(cache_dir) / f"logmel-{self.config.key}"

    # ------------------------------------------------------------------ building
    def shard_plan(self, catalogue: Catalogue) -> list[tuple[str, list[str]]]:
        """``[(shard file name, sorted utterance paths)]`` for a catalogue."""
        paths = sorted({u.path for u in catalogue})
        plan = []
        for start in range(0, len(paths), self.config.shard_size):
            group = paths[start : start + self.config.shard_size]
            digest = content_key(catalogue.root, group)[:16]
            plan.append((f"shard-{digest}.pkl", group))
        return plan

    def build(
        self, catalogue: Catalogue, num_workers: int | None = None, progress: bool = True
    ) -> dict:
        """Compute every missing shard, then write ``failures.tsv`` and ``index.json``.

        Safe to interrupt and re-run: finished shards are skipped, leftover temporary
        files are removed. Returns the index (also written to ``index.json``).
        """
        if len(catalogue) == 0:
            raise DataError(f"{catalogue.root}: the catalogue is empty, nothing to cache")
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob(f"*{PART_SUFFIX}*"):
            remove(leftover)
        self._write_json(
            "config.json",
            {
                "format": CACHE_FORMAT,
                **dataclasses.asdict(self.config),
                "root": str(Path(catalogue.root).resolve()),
            },
        )
        plan = self.shard_plan(catalogue)
        todo = [(name, paths) for name, paths in plan if not (self.directory / name).is_file()]
        total = sum(len(paths) for _, paths in todo)
        done_before = len(plan) - len(todo)
        if done_before:
            logger.info(
                "%s: %d of %d shards already done, resuming", self.directory, done_before, len(plan)
            )
        workers = num_workers or max(1, min(4, os.cpu_count() or 1))
        bar = _progress(total, progress, "features")
        compute = _compiled_frontend(self.frontend)
        with ThreadPoolExecutor(workers) as pool:
            for name, paths in todo:
                shard = self._compute_shard(catalogue, paths, compute, pool, bar)
                self._write_pickle(name, shard)
        bar.close()
        return self._write_index(catalogue, plan)

    def _compute_shard(self, catalogue, paths, compute, pool, bar) -> dict:
        dtype = np.dtype(self.config.dtype)

        def decode(rel):
            try:
                return load_audio(catalogue.root / rel, SAMPLE_RATE, self.config.min_seconds), None
            except SpkidError as error:
                return None, getattr(error, "reason", str(error))

        features, failures = {}, {}
        for rel, (waveform, failure) in zip(paths, pool.map(decode, paths)):
            if failure is not None:
                failures[rel] = failure
            else:
                feature = compute(waveform).astype(dtype)
                if np.isfinite(feature).all():
                    features[rel] = feature
                else:  # never cache what would poison training
                    failures[rel] = f"features are NaN or infinite in {dtype}"
            bar.update(1)
        return {"paths": paths, "features": features, "failures": failures}

    def _write_index(self, catalogue, plan) -> dict:
        failures, shards, count = [], [], 0
        for name, _ in plan:
            shard = self._read_shard(name)
            failures.extend(sorted(shard["failures"].items()))
            count += len(shard["features"])
            shards.append({"file": name, "num_utterances": len(shard["features"])})
        write_text_atomic(
            self.directory / "failures.tsv",
            "path\treason\n" + "".join(f"{rel}\t{reason}\n" for rel, reason in failures),
        )
        index = {
            "format": CACHE_FORMAT,
            "key": self.config.key,
            "catalogue": catalogue.content_key(),
            "root": str(Path(catalogue.root).resolve()),
            "num_utterances": count,
            "num_failures": len(failures),
            "shards": shards,
        }
        self._write_json("index.json", index)
        if failures:
            logger.warning(
                "%d file(s) could not be used; see %s",
                len(failures),
                self.directory / "failures.tsv",
            )
        return index

    # ------------------------------------------------------------------- reading
    @property
    def is_complete(self) -> bool:
        """True once ``build`` has finished (``index.json`` exists), for some catalogue."""
        return (self.directory / "index.json").is_file()

    def is_complete_for(self, catalogue: Catalogue) -> bool:
        """True when the last ``build`` was for ``catalogue`` as it is now (same root,
        clips, speakers and files); otherwise ``build`` must run (it reuses the shards
        that still fit)."""
        if not self.is_complete:
            return False
        try:
            index = json.loads((self.directory / "index.json").read_text())
        except (OSError, ValueError):
            return False
        return index.get("catalogue") == catalogue.content_key()

    def load(self) -> dict[str, np.ndarray]:
        """All cached features, ``{relative path: [frames, n_mels] array}``."""
        if not self.is_complete:
            raise DataError(
                f"{self.directory}: feature cache is missing or incomplete; run "
                "'spkid features' (it resumes where it stopped)"
            )
        index = json.loads((self.directory / "index.json").read_text())
        features = {}
        for shard in index["shards"]:
            features.update(self._read_shard(shard["file"])["features"])
        return features

    def failures(self) -> dict[str, str]:
        """``{relative path: reason}`` for files that were left out."""
        path = self.directory / "failures.tsv"
        if not path.is_file():
            return {}
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        return dict(line.split("\t", 1) for line in lines if line)

    # ------------------------------------------------------------------- helpers
    def _read_shard(self, name) -> dict:
        with open(self.directory / name, "rb") as handle:
            return pickle.load(handle)

    def _write_pickle(self, name, obj) -> None:
        with atomic_path(self.directory / name) as tmp, open(tmp, "wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())

    def _write_json(self, name, obj) -> None:
        write_text_atomic(self.directory / name, json.dumps(obj, indent=1, sort_keys=True))


def _compiled_frontend(layer):
    """``waveform [n] -> features [frames, n_mels]`` as one traced TF function."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def single(waveform):
        return layer(waveform[None, :])[0]

    # The concrete function skips tf.function's per-call dispatch (~15% per clip).
    concrete = single.get_concrete_function()
    return lambda waveform: concrete(tf.constant(waveform)).numpy()


def _progress(total, enabled, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="utt", dynamic_ncols=True)
