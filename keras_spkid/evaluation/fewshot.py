"""Few-shot identification accuracy over episodes, with a correct 95% confidence interval.

An N-way K-shot episode is scored by embedding its support and query crops, averaging
each speaker's support embeddings into a prototype and assigning every query to the
nearest prototype. The reported accuracy is the mean over episodes of the per-episode
query accuracy; the 95% CI is ``1.96 * std(per-episode accuracies, ddof=1) / sqrt(n)``
(CS330 divided the std of *batch* means by sqrt(episodes), which understates it).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from keras_spkid.losses.prototypical import prototypes, prototypical_logits


@dataclasses.dataclass(frozen=True)
class AccuracyCI:
    """Mean accuracy with its 95% confidence half-width, over ``episodes`` episodes."""

    mean: float
    ci95: float
    episodes: int

    def __str__(self) -> str:
        return f"{100 * self.mean:.2f} ± {100 * self.ci95:.2f} % ({self.episodes} episodes)"


def mean_ci95(accuracies) -> AccuracyCI:
    """Mean and 95% CI half-width (normal approximation) of per-episode accuracies."""
    values = np.asarray(accuracies, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no episodes to average")
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
    return AccuracyCI(float(values.mean()), float(half), int(values.size))


def _episode_accuracy(embed, n_way, k_shot, distance, support, query, query_labels):
    """Query accuracy of one episode: nearest prototype of the support embeddings."""
    protos = prototypes(tf.cast(embed(support, training=False), tf.float32), n_way, k_shot)
    logits = prototypical_logits(
        tf.cast(embed(query, training=False), tf.float32), protos, distance=distance
    )
    hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), query_labels)
    return tf.reduce_mean(tf.cast(hits, tf.float32))


def episode_accuracies(
    embed, episodes, n_way: int, k_shot: int, distance: str = "cosine"
) -> np.ndarray:
    """Per-episode query accuracy.

    Args:
        embed: ``features [n, frames, n_mels] -> embeddings [n, d]`` (e.g. an encoder).
        episodes: iterable of unbatched episode dicts from
            :func:`~keras_spkid.data.episodes.episode_dataset`.
        n_way, k_shot: episode shape.
        distance: how queries are compared with prototypes: ``"cosine"``,
            ``"squared_euclidean"`` or ``"euclidean"``.

    Returns:
        ``[num_episodes]`` float64 accuracies in [0, 1].
    """
    score = tf.function(
        functools.partial(_episode_accuracy, embed, n_way, k_shot, distance), reduce_retracing=True
    )
    return np.asarray(
        [float(score(e["support"], e["query"], e["query_labels"])) for e in episodes],
        dtype=np.float64,
    )


class FewShotEvaluator:
    """A fixed set of episodes, scored for any encoder (validation while training, tests).

    The episodes (and the copy of the store they are drawn from) are built once; the
    same seed gives the same episodes, so scores of successive checkpoints compare.

    Args:
        store: the clips (speakers never used for training).
        spec: episode shape.
        episodes: number of episodes.
        seed: which episodes.
        distance: ``"cosine"``, ``"squared_euclidean"`` or ``"euclidean"``.
    """

    def __init__(self, store, spec, episodes: int, seed: int, distance: str = "cosine"):
        from keras_spkid.data.episodes import episode_dataset

        self.spec = spec
        self.distance = distance
        self.dataset = episode_dataset(store, spec, seed=seed, num_episodes=episodes)

    def __call__(self, encoder) -> AccuracyCI:
        return mean_ci95(
            episode_accuracies(
                encoder, self.dataset, self.spec.n_way, self.spec.k_shot, self.distance
            )
        )


def eligible_for_episodes(speakers, clips_per_speaker: int) -> np.ndarray:
    """Speaker ids with at least ``clips_per_speaker`` clips (sorted)."""
    ids, counts = np.unique(np.asarray(speakers, dtype=str), return_counts=True)
    return ids[counts >= clips_per_speaker]


def embedding_episode_accuracies(
    support, query, speakers, n_way: int, k_shot: int, n_query: int, episodes: int, seed: int = 0
) -> np.ndarray:
    """Per-episode accuracy of nearest-prototype classification on precomputed embeddings.

    Each episode draws ``n_way`` speakers among those with ``k_shot + n_query`` clips,
    then ``k_shot`` support and ``n_query`` query clips of each without overlap.
    Support clips use their row of ``support`` (e.g. full-utterance embeddings), query
    clips their row of ``query`` (e.g. 1 s crops), so one embedding pass serves every
    table cell. Prototypes are the mean of normalised support embeddings; queries go
    to the prototype of highest cosine.

    Args:
        support, query: ``[n, d]`` embeddings of the same ``n`` clips.
        speakers: ``[n]`` speaker of each clip.
        n_way, k_shot, n_query, episodes: episode shape and count.
        seed: which episodes (the same seed gives the same episodes).

    Returns:
        ``[episodes]`` float64 accuracies.

    Raises:
        DataError: fewer than ``n_way`` speakers have ``k_shot + n_query`` clips.
    """
    from keras_spkid.errors import DataError
    from keras_spkid.vectors import l2_normalize

    speakers = np.asarray(speakers, dtype=str)
    eligible = eligible_for_episodes(speakers, k_shot + n_query)
    if len(eligible) < n_way:
        raise DataError(
            f"{n_way}-way {k_shot}-shot {n_query}-query episodes need {n_way} "
            f"speakers with {k_shot + n_query} clips; only {len(eligible)} have them"
        )
    support, query = l2_normalize(support), l2_normalize(query)
    rows = {s: np.flatnonzero(speakers == s) for s in eligible}
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_way), n_query)
    accuracies = np.empty(episodes)
    for e in range(episodes):
        chosen = rng.choice(len(eligible), n_way, replace=False)
        picks = [rng.choice(rows[eligible[c]], k_shot + n_query, replace=False) for c in chosen]
        protos = np.stack([support[p[:k_shot]].mean(axis=0) for p in picks])
        protos /= np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
        queries = query[np.concatenate([p[k_shot:] for p in picks])]
        accuracies[e] = np.mean(np.argmax(queries @ protos.T, axis=1) == labels)
    return accuracies
