"""``tf.data`` pipelines of few-shot episodes and speaker-grouped batches.

Both pipelines draw "n speakers x m clips each, cropped" from an
:class:`~keras_spkid.data.store.UtteranceStore`, entirely in the TensorFlow graph:

* speakers are drawn without replacement (``top_k`` of random keys), so no speaker
  appears twice in an episode or batch;
* clips are drawn without replacement within each speaker;
* each clip is cropped at a random start; a clip shorter than the crop is repeated
  (wrap-around), as voxceleb_trainer pads.

Randomness is stateless and keyed on ``(seed, element index)``, so the same seed gives
the same stream whatever the parallelism, and element ``i`` can be reproduced alone.

Speakers with fewer clips than an episode needs are left out, and how many is logged;
too few remaining speakers is an error raised before any work starts.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import tensorflow as tf

from keras_spkid.data.store import UtteranceStore
from keras_spkid.errors import DataError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
    """Shape of an N-way K-shot Q-query episode.

    Attributes:
        n_way: speakers per episode.
        k_shot: support clips per speaker.
        q_query: query clips per speaker.
        support_frames: support crop length in 10 ms frames (200 = 2 s).
        query_frames: query crop length: an int, or ``(min, max)`` for variable-length
            queries (meta-SR: 100-200 frames), drawn once per batch of episodes so that
            all queries of a batch share one length.
    """

    n_way: int = 5
    k_shot: int = 5
    q_query: int = 15
    support_frames: int = 200
    query_frames: int | tuple[int, int] = 200

    def __post_init__(self):
        for name in ("n_way", "k_shot", "support_frames"):
            if getattr(self, name) < 1:
                raise DataError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.q_query < 0:
            raise DataError(f"q_query must be >= 0, got {self.q_query}")
        low, high = self.query_range
        if not 1 <= low <= high:
            raise DataError(f"query_frames must be >= 1 and min <= max, got {self.query_frames}")

    @property
    def query_range(self) -> tuple[int, int]:
        if isinstance(self.query_frames, int):
            return self.query_frames, self.query_frames
        low, high = self.query_frames
        return int(low), int(high)

    @property
    def clips_per_speaker(self) -> int:
        return self.k_shot + self.q_query


def eligible_speakers(
    counts: np.ndarray, per_speaker: int, min_speakers: int, purpose: str, log: bool = True
) -> np.ndarray:
    """Indices of speakers with at least ``per_speaker`` clips; raise if too few.

    Logs how many speakers are left out (unless ``log=False``). Callers can run this
    on catalogue counts to fail before any feature is computed.

    Raises:
        DataError: fewer than ``min_speakers`` speakers are eligible.
    """
    counts = np.asarray(counts)
    eligible = np.flatnonzero(counts >= per_speaker)
    left_out = len(counts) - len(eligible)
    if left_out and log:
        logger.warning(
            "left out %d of %d speakers with fewer than %d clips (%s)",
            left_out,
            len(counts),
            per_speaker,
            purpose,
        )
    if len(eligible) < min_speakers:
        raise DataError(
            f"{purpose} need {min_speakers} speakers with at least {per_speaker} clips "
            f"each, but only {len(eligible)} of {len(counts)} have that many; "
            "use fewer ways/shots/queries or more data"
        )
    return eligible


class CropSampler:
    """Random crops of store items, in graph: ``items [n] -> [n, length, ...]``."""

    def __init__(self, store: UtteranceStore):
        self.store = store
        self._data = tf.constant(store.data)
        self._offsets = tf.constant(store.offsets)
        self._lengths = tf.constant(store.lengths)

    def crop(self, items, length, seed):
        """``items [n] -> [n, length, ...]`` random crops; short items wrap around.

        Args:
            items: store item ids.
            length: crop length in frames.
            seed: ``[2]`` int stateless seed for the crop starts.
        """
        length = tf.cast(length, tf.int64)
        item_lengths = tf.gather(self._lengths, items)
        room = tf.maximum(item_lengths - length + 1, 1)
        starts = tf.cast(
            tf.random.stateless_uniform(tf.shape(items), seed) * tf.cast(room, tf.float32),
            tf.int64,
        )
        positions = (starts[:, None] + tf.range(length)[None, :]) % item_lengths[:, None]
        return tf.gather(self._data, tf.gather(self._offsets, items)[:, None] + positions)

    def features(self, items, frames, seed):
        """Crops of ``frames`` feature frames as float32 ``[n, frames, n_mels]``."""
        return tf.cast(self.crop(items, frames, seed), tf.float32)


class GroupSampler(CropSampler):
    """Draws ``[n_speakers, per_speaker, length, ...]`` crops from a store, in graph.

    Only speakers with at least ``per_speaker`` items are eligible.

    Args:
        store: the clips.
        per_speaker: clips drawn from each chosen speaker.
        min_speakers: speakers one draw needs; fewer eligible ones raise DataError.
        purpose: words for the log message and errors ("5-way 5-shot 15-query episodes").
    """

    def __init__(self, store: UtteranceStore, per_speaker: int, min_speakers: int, purpose: str):
        counts = store.items_per_speaker()
        eligible = eligible_speakers(counts, per_speaker, min_speakers, purpose)
        super().__init__(store)
        self.per_speaker = per_speaker
        self.eligible = eligible
        by_speaker = [np.flatnonzero(store.labels == s) for s in eligible]
        width = max(len(items) for items in by_speaker)
        table = np.full((len(eligible), width), -1, np.int64)
        for row, items in enumerate(by_speaker):
            table[row, : len(items)] = items
        self._table = tf.constant(table)
        self._counts = tf.constant(counts[eligible].astype(np.int64))
        self._speaker_ids = tf.constant(eligible.astype(np.int32))

    def choose(self, seed, n_speakers: int):
        """Draw distinct speakers and distinct clips of each.

        Args:
            seed: ``[2]`` int stateless seed.
            n_speakers: number of distinct speakers.

        Returns:
            ``(items [n_speakers, per_speaker] int64, speaker_labels [n_speakers] int32)``;
            items index the store, labels index ``store.speakers``.
        """
        seeds = tf.random.experimental.stateless_split(seed, 2)
        keys = tf.random.stateless_uniform([tf.shape(self._counts)[0]], seeds[0])
        rows = tf.math.top_k(keys, k=n_speakers, sorted=True).indices
        width = tf.shape(self._table)[1]
        clip_keys = tf.random.stateless_uniform([n_speakers, width], seeds[1])
        valid = tf.range(width, dtype=tf.int64)[None, :] < tf.gather(self._counts, rows)[:, None]
        clip_keys = tf.where(valid, clip_keys, -1.0)
        columns = tf.math.top_k(clip_keys, k=self.per_speaker, sorted=True).indices
        items = tf.gather(tf.gather(self._table, rows), columns, batch_dims=1)
        return items, tf.gather(self._speaker_ids, rows)


def _seed(seed: int, index, stream: int):
    """Stateless seed for element ``index`` of a numbered random ``stream``."""
    return tf.stack([tf.constant(seed, tf.int64) * 1000 + stream, tf.cast(index, tf.int64)])


def _indices(num_elements, start):
    """Element indices ``start, start+1, ...`` (``num_elements`` of them, or endless)."""
    if start < 0:
        raise DataError(f"start must be >= 0, got {start}")
    return tf.data.Dataset.range(start, start + num_elements if num_elements else 2**62)


def episode_purpose(spec: EpisodeSpec) -> str:
    return f"{spec.n_way}-way {spec.k_shot}-shot {spec.q_query}-query episodes"


def episode_dataset(
    store: UtteranceStore,
    spec: EpisodeSpec,
    episodes_per_batch: int | None = None,
    seed: int = 0,
    num_episodes: int | None = None,
    start: int = 0,
) -> tf.data.Dataset:
    """N-way K-shot Q-query episodes as a ``tf.data.Dataset``.

    Each element is a dict (with a leading ``[episodes_per_batch]`` axis when
    batching):

    * ``support``: ``[N*K, support_frames, n_mels]`` float32, class-major
      (the K clips of class 0, then class 1, ...);
    * ``query``: ``[N*Q, query_frames, n_mels]`` float32, class-major;
    * ``support_labels`` ``[N*K]`` / ``query_labels`` ``[N*Q]``: int32 episode labels
      ``0..N-1`` in the order the speakers were drawn;
    * ``support_speakers`` / ``query_speakers``: int32 global speaker labels (index in
      ``store.speakers``), for global classification losses;
    * ``support_items`` / ``query_items``: int64 store indices of the cropped clips
      (which file each crop came from: ``store.paths[item]``).

    Support and query clips of a speaker are distinct clips (drawn without
    replacement), so no query is a crop of a support clip.

    Args:
        store: the features to crop.
        spec: the episode shape.
        episodes_per_batch: tasks per training step (``None``: unbatched episodes).
        seed: episodes are a pure function of ``(seed, index)``.
        num_episodes: length of the dataset (``None``: endless).
        start: index of the first element (a batch index when batching), so a resumed
            training run continues the same stream.
    """
    sampler = GroupSampler(store, spec.clips_per_speaker, spec.n_way, episode_purpose(spec))
    n, k, q = spec.n_way, spec.k_shot, spec.q_query
    low, high = spec.query_range
    group = episodes_per_batch or 1

    def make_episode(index):
        items, speakers = sampler.choose(_seed(seed, index, 0), n)
        support_items = tf.reshape(items[:, :k], [-1])
        query_items = tf.reshape(items[:, k:], [-1])
        # One query length per batch of episodes, so that episodes can be stacked.
        query_frames = tf.random.stateless_uniform(
            [], _seed(seed, index // group, 1), minval=low, maxval=high + 1, dtype=tf.int64
        )
        support = sampler.features(support_items, spec.support_frames, _seed(seed, index, 2))
        query = sampler.features(query_items, query_frames, _seed(seed, index, 3))
        episode_labels = tf.range(n, dtype=tf.int32)
        return {
            "support": support,
            "query": query,
            "support_labels": tf.repeat(episode_labels, k),
            "query_labels": tf.repeat(episode_labels, q),
            "support_speakers": tf.repeat(speakers, k),
            "query_speakers": tf.repeat(speakers, q),
            "support_items": support_items,
            "query_items": query_items,
        }

    if episodes_per_batch:
        # Element i of the batched stream is episodes [i*B, (i+1)*B).
        first, count = start * episodes_per_batch, num_episodes
    else:
        first, count = start, num_episodes
    dataset = _indices(count, first).map(
        make_episode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if episodes_per_batch:
        dataset = dataset.batch(episodes_per_batch, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def speaker_batch_dataset(
    store: UtteranceStore,
    speakers_per_batch: int,
    clips_per_speaker: int = 1,
    frames: int = 200,
    seed: int = 0,
    num_batches: int | None = None,
    start: int = 0,
) -> tf.data.Dataset:
    """Speaker-grouped classification batches (voxceleb_trainer's nPerSpeaker sampler).

    Each element is ``(features, labels)``:

    * ``features``: ``[speakers_per_batch * clips_per_speaker, frames, n_mels]``
      float32, speaker-major (the clips of one speaker are consecutive);
    * ``labels``: int32 global speaker labels (index in ``store.speakers``).

    No speaker appears twice in a batch, which softmax-type losses tolerate and
    angular-prototypical / GE2E losses (``clips_per_speaker >= 2``) require. Batch
    ``i`` is a pure function of ``(seed, i)``; ``start`` skips to batch ``start``.
    """
    purpose = f"batches of {speakers_per_batch} speakers x {clips_per_speaker} clips"
    sampler = GroupSampler(store, clips_per_speaker, speakers_per_batch, purpose)

    def make_batch(index):
        items, speakers = sampler.choose(_seed(seed, index, 0), speakers_per_batch)
        features = sampler.features(tf.reshape(items, [-1]), frames, _seed(seed, index, 2))
        return features, tf.repeat(speakers, clips_per_speaker)

    return (
        _indices(num_batches, start)
        .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def clip_batch_dataset(
    store: UtteranceStore,
    batch_size: int,
    frames: int = 200,
    seed: int = 0,
    num_batches: int | None = None,
    start: int = 0,
) -> tf.data.Dataset:
    """Batches of random crops of random clips (drawn with replacement, any speaker).

    Each element is ``(features [batch_size, frames, n_mels] float32, labels
    [batch_size] int32)``; for pre-training objectives that do not need speakers
    grouped (masked autoencoding). Batch ``i`` is a pure function of ``(seed, i)``.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    sampler = CropSampler(store)
    labels = tf.constant(store.labels)

    def make_batch(index):
        items = tf.random.stateless_uniform(
            [batch_size], _seed(seed, index, 0), maxval=len(store), dtype=tf.int64
        )
        features = sampler.features(items, frames, _seed(seed, index, 2))
        return features, tf.gather(labels, items)

    return (
        _indices(num_batches, start)
        .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
