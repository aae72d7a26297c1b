"""Open-set identification: name an enrolled speaker, or say that it is nobody we know.

The protocol users live in. One episode enrols ``N`` speakers with ``K`` clips each
(a prototype is the mean of the normalised clip embeddings), then queries the gallery
with held-out clips of the enrolled speakers (*genuine* queries) and with clips of
speakers who are not enrolled (*strangers*). Each query gets the best-scoring enrolled
speaker, named when :func:`~keras_spkid.scoring.decision.name_best` says so. Over many
seeded episodes, per-episode rates are averaged with a 95% CI:

* **named right**: genuine queries named as the right person;
* **named wrong**: genuine queries named as someone else;
* **missed**: genuine queries answered "unknown";
* **strangers named**: stranger queries given a name (false alarms).

:func:`episode_scores` keeps each query's best score, so any decision (a threshold
table, a pair threshold, a sweep of thresholds for the curve) is evaluated on the same
episodes without scoring them again.

Galleries larger than a corpus allows (100 people from 34 dev speakers) are topped up
with *filler* speakers (e.g. training speakers): enrolled, never queried.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_spkid.errors import DataError
from keras_spkid.scoring.asnorm import ASNorm
from keras_spkid.scoring.decision import OpenSetDecision, name_best

RATES = ("named_right", "named_wrong", "missed", "strangers_named")
LABELS = {
    "named_right": "named right",
    "named_wrong": "named wrong",
    "missed": "missed (unknown)",
    "strangers_named": "strangers named",
}


@dataclasses.dataclass(frozen=True)
class EpisodeScores:
    """Every query of many open-set episodes: its best score and what that means.

    Attributes:
        best: ``[n]`` best score of each query against its episode's gallery.
        correct: ``[n]`` the best-scoring speaker is the query's own (``False`` for
            strangers).
        genuine: ``[n]`` the query's speaker is enrolled.
        episode: ``[n]`` episode index of each query.
        speaker: ``[n]`` index of each query's speaker (sorted speaker ids).
        gallery_size: ``N``, people enrolled per episode (fillers included).
        enrol_count: ``K``, clips per enrolled speaker.
        score: ``"cosine"`` or ``"asnorm"``.
        fillers: filler speakers per episode.
    """

    best: np.ndarray
    correct: np.ndarray
    genuine: np.ndarray
    episode: np.ndarray
    speaker: np.ndarray
    gallery_size: int
    enrol_count: int
    score: str = "cosine"
    fillers: int = 0

    @property
    def episodes(self) -> int:
        return int(self.episode.max()) + 1 if self.episode.size else 0


def _groups(speakers) -> dict[str, np.ndarray]:
    speakers = np.asarray(speakers).astype(str)
    order = np.argsort(speakers, kind="stable")
    ids, starts = np.unique(speakers[order], return_index=True)
    return dict(zip(ids.tolist(), np.split(order, starts[1:])))


def episode_scores(
    embeddings,
    speakers,
    gallery_size: int = 5,
    enrol_count: int = 5,
    episodes: int = 1000,
    seed: int = 0,
    queries_per_speaker: int = 2,
    min_stranger_share: float = 1 / 3,
    fillers: tuple[np.ndarray, np.ndarray] | None = None,
    asnorm: ASNorm | None = None,
    cohort_top_k: int | None = None,
) -> EpisodeScores:
    """Run seeded open-set episodes on one set of speakers.

    Each episode enrols ``gallery_size`` speakers, as many as possible from the speakers
    with more than ``enrol_count`` items while keeping at least ``min_stranger_share``
    of them as strangers, the rest from ``fillers``. Every enrolled speaker is queried
    with up to ``queries_per_speaker`` items not enrolled, every stranger with up to as
    many of theirs.

    Args:
        embeddings: ``[n, d]`` embeddings of one corpus (clips or segments).
        speakers: ``[n]`` their speakers.
        fillers: ``(embeddings [m, d], speakers [m])`` of other speakers who may be
            enrolled (``enrol_count`` items each, never queried) to reach the size.
        asnorm: score with AS-Norm against this cohort instead of cosine.

    Raises:
        DataError: too few speakers for the gallery, the clips or a stranger.
    """
    x = _unit(embeddings)
    groups = _groups(speakers)
    names = sorted(groups)
    eligible = [s for s in names if len(groups[s]) > enrol_count]
    most_enrolled = len(names) - max(1, int(np.ceil(min_stranger_share * len(names))))
    from_set = min(gallery_size, len(eligible), most_enrolled)
    filler_groups, fx = {}, None
    if fillers is not None:
        fx = _unit(fillers[0])
        filler_groups = {
            s: rows for s, rows in _groups(fillers[1]).items() if len(rows) >= enrol_count
        }
    need = gallery_size - from_set
    if from_set < 1 or need > len(filler_groups):
        raise DataError(
            f"{gallery_size} enrolled x {enrol_count} clips: {len(eligible)} of "
            f"{len(names)} speakers have more than {enrol_count} items and "
            f"{len(filler_groups)} filler speakers are available"
        )
    filler_names = sorted(filler_groups)
    query_stats = asnorm.stats(x) if asnorm is not None else None
    rng = np.random.default_rng(seed)
    best, correct, genuine, episode, owner = [], [], [], [], []
    index_of = {s: i for i, s in enumerate(names)}
    for e in range(episodes):
        enrolled = [eligible[i] for i in rng.choice(len(eligible), from_set, replace=False)]
        strangers = sorted(set(names) - set(enrolled))
        prototypes, queries, truth, who = [], [], [], []
        for position, speaker in enumerate(enrolled):
            rows = rng.permutation(groups[speaker])
            prototypes.append(x[rows[:enrol_count]].mean(axis=0))
            held = rows[enrol_count : enrol_count + queries_per_speaker]
            queries += held.tolist()
            truth += [position] * len(held)
            who += [index_of[speaker]] * len(held)
        for speaker in strangers:
            rows = rng.permutation(groups[speaker])[:queries_per_speaker]
            queries += rows.tolist()
            truth += [-1] * len(rows)
            who += [index_of[speaker]] * len(rows)
        if need:
            for speaker in (filler_names[i] for i in rng.choice(len(filler_names), need, False)):
                rows = rng.permutation(filler_groups[speaker])[:enrol_count]
                prototypes.append(fx[rows].mean(axis=0))
        prototypes = _unit(np.stack(prototypes))
        queries, truth = np.asarray(queries), np.asarray(truth)
        scores = x[queries] @ prototypes.T
        if asnorm is not None:
            mu_e, sd_e = asnorm.stats(prototypes)
            mu_t, sd_t = query_stats[0][queries], query_stats[1][queries]
            scores = asnorm.normalize(
                scores, (mu_e[None, :], sd_e[None, :]), (mu_t[:, None], sd_t[:, None])
            )
        top = np.argmax(scores, axis=1)
        best.append(scores[np.arange(len(queries)), top])
        correct.append((top == truth) & (truth >= 0))
        genuine.append(truth >= 0)
        episode.append(np.full(len(queries), e))
        owner.append(np.asarray(who))
    return EpisodeScores(
        np.concatenate(best),
        np.concatenate(correct),
        np.concatenate(genuine),
        np.concatenate(episode),
        np.concatenate(owner),
        gallery_size,
        enrol_count,
        "asnorm" if asnorm is not None else "cosine",
        need,
    )


def named(scores: EpisodeScores, decision: OpenSetDecision | None) -> np.ndarray:
    """``[n]`` whether each query is given a name under ``decision`` (the shared rule)."""
    counts = np.full(scores.best.shape, scores.enrol_count)
    return name_best(scores.best, counts, scores.gallery_size, decision)[1]


def _mean_ci95(values) -> dict:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"mean": None, "ci95": None, "upper": None}
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
    mean = float(values.mean())
    return {"mean": mean, "ci95": float(half), "upper": min(1.0, mean + float(half))}


def episode_rates(scores: EpisodeScores, decision: OpenSetDecision | None) -> dict[str, np.ndarray]:
    """Per-episode rates (``[episodes]`` each; NaN where an episode had no such query)."""
    known = named(scores, decision)
    episodes = scores.episodes
    genuine = np.bincount(scores.episode, scores.genuine, episodes)
    strangers = np.bincount(scores.episode, ~scores.genuine, episodes)

    def share(mask, total):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(scores.episode, mask, episodes) / total

    g = scores.genuine
    return {
        "named_right": share(g & known & scores.correct, genuine),
        "named_wrong": share(g & known & ~scores.correct, genuine),
        "missed": share(g & ~known, genuine),
        "strangers_named": share(~g & known, strangers),
    }


def openset_metrics(scores: EpisodeScores, decision: OpenSetDecision | None) -> dict:
    """Mean, 95% CI half-width and CI upper bound of every rate, over episodes."""
    rates = episode_rates(scores, decision)
    result = {name: _mean_ci95(values) for name, values in rates.items()}
    result.update(
        episodes=scores.episodes,
        genuine_queries=int(scores.genuine.sum()),
        stranger_queries=int((~scores.genuine).sum()),
        gallery_size=scores.gallery_size,
        enrol_count=scores.enrol_count,
        fillers=scores.fillers,
    )
    return result


def threshold_at_far(best_scores, far: float) -> float:
    """Lowest threshold that names at most ``far`` of these stranger best scores.

    A query is named when ``score >= threshold``; with ``n`` scores at most
    ``floor(far * n)`` are named (ties can only name fewer).
    """
    values = np.sort(np.asarray(best_scores, np.float64))[::-1]
    if values.size == 0:
        raise DataError("no stranger queries to set a threshold on")
    allowed = int(np.floor(far * values.size + 1e-9))
    if allowed >= values.size:
        return float(values[-1])
    return float(np.nextafter(values[allowed], np.inf))


def threshold_at_far_upper(
    best_scores,
    speakers,
    far: float,
    confidence: float = 0.95,
    replicates: int = 200,
    seed: int = 0,
) -> float:
    """A threshold that names at most ``far`` of strangers *like these*, with confidence.

    Which voices happen to be strangers matters more than how many queries there are:
    a few voices close to many others decide the rate. The strangers' speakers are
    resampled with replacement ``replicates`` times, :func:`threshold_at_far` is taken
    on each resample's scores, and the ``confidence`` quantile of those thresholds is
    returned (``confidence=0.5``: about the plain estimate).

    Args:
        best_scores: ``[n]`` best scores of stranger queries.
        speakers: ``[n]`` the speaker of each query.
    """
    best_scores = np.asarray(best_scores, np.float64)
    speakers = np.asarray(speakers)
    ids, inverse = np.unique(speakers, return_inverse=True)
    by_speaker = [best_scores[inverse == i] for i in range(len(ids))]
    rng = np.random.default_rng(seed)
    thresholds = [
        threshold_at_far(
            np.concatenate([by_speaker[i] for i in rng.integers(0, len(ids), len(ids))]), far
        )
        for _ in range(replicates)
    ]
    return float(np.quantile(thresholds, confidence))


def threshold_curve(scores: EpisodeScores, points: int = 200) -> dict[str, np.ndarray]:
    """Named-right and strangers-named rates (pooled over episodes) against thresholds."""
    thresholds = np.unique(np.quantile(scores.best, np.linspace(0, 1, points)))
    g = scores.genuine
    right = scores.best[g & scores.correct]
    strangers = scores.best[~g]
    n_genuine, n_strangers = max(int(g.sum()), 1), max(strangers.size, 1)
    return {
        "threshold": thresholds,
        "named_right": np.array([(right >= t).sum() / n_genuine for t in thresholds]),
        "strangers_named": np.array([(strangers >= t).sum() / n_strangers for t in thresholds]),
    }


def _unit(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
