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
    logits = prototypical_logits(tf.cast(embed(query, training=False), tf.float32), protos,
                                 distance=distance)
    hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), query_labels)
    return tf.reduce_mean(tf.cast(hits, tf.float32))


def episode_accuracies(embed, episodes, n_way: int, k_shot: int,
                       distance: str = "cosine") -> np.ndarray:
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
    score = tf.function(functools.partial(_episode_accuracy, embed, n_way, k_shot, distance),
                        reduce_retracing=True)
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
        return mean_ci95(episode_accuracies(encoder, self.dataset, self.spec.n_way,
                                            self.spec.k_shot, self.distance))
