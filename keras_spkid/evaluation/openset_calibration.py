"""Choose the shipped open-set decision on dev speakers, at a target rate of strangers named.

For every gallery size ``N`` and enrolment count ``K`` of a grid (default ``N`` in 1, 5,
20, 100 and ``K`` in 1, 5), seeded open-set episodes (:func:`~keras_spkid.evaluation.
openset.episode_scores`) are run on the dev speakers of each corpus, and the threshold
naming at most ``target_far`` of the strangers is read off their best scores, at a 95%
upper confidence bound over which voices are strangers (the dev speakers are few and a
few voices close to many others decide the rate); the cell's
threshold is the highest over the corpora, so the target holds for each kind of speech.
Four candidate rules are measured on the same episodes:

* ``cosine-table`` / ``asnorm-table``: one threshold per ``(N, K)`` cell;
* ``cosine-single`` / ``asnorm-single``: the highest of those, whatever the gallery;

on cosine scores, and on AS-Norm scores against a cohort of training speakers. All of
them name at most ``target_far`` of the dev strangers in every cell; the one naming the
most enrolled speakers right (mean over cells and corpora) is kept.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_spkid.evaluation.openset import (
    RATES,
    episode_scores,
    openset_metrics,
    threshold_at_far_upper,
)
from keras_spkid.scoring.asnorm import ASNorm
from keras_spkid.scoring.decision import OpenSetDecision

GALLERY_SIZES = (1, 5, 20, 100)
ENROL_COUNTS = (1, 5)


@dataclasses.dataclass
class SpeakerSet:
    """Embeddings of one corpus's calibration speakers, and optional filler speakers."""

    embeddings: np.ndarray
    speakers: np.ndarray
    fillers: tuple[np.ndarray, np.ndarray] | None = None


def speaker_cohort(embeddings, speakers) -> np.ndarray:
    """``[C, d]`` one normalised mean embedding per speaker (an AS-Norm cohort)."""
    x = np.asarray(embeddings, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    ids, inverse = np.unique(np.asarray(speakers).astype(str), return_inverse=True)
    sums = np.zeros((len(ids), x.shape[1]))
    np.add.at(sums, inverse, x)
    return (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)


def calibrate_decision(
    sets: dict[str, SpeakerSet],
    cohort=None,
    target_far: float = 0.05,
    gallery_sizes=GALLERY_SIZES,
    enrol_counts=ENROL_COUNTS,
    episodes: int = 500,
    seed: int = 0,
    cohort_top_k: int = 50,
    confidence: float = 0.95,
    progress=None,
) -> tuple[OpenSetDecision, dict]:
    """Measure the candidate rules on ``sets`` and return the best, with the evidence.

    Args:
        sets: ``{corpus: SpeakerSet}`` of dev speakers (never the test ones).
        cohort: ``[C, d]`` AS-Norm cohort (training speakers); ``None``: cosine only.
        target_far: at most this share of strangers named, in every cell and corpus.
        gallery_sizes, enrol_counts: the grid of the threshold table.
        episodes, seed: episodes per cell and corpus, and their seed.
        cohort_top_k: AS-Norm's top-k.
        confidence: each cell's threshold is this upper confidence bound over resampled
            dev strangers (:func:`~keras_spkid.evaluation.openset.threshold_at_far_upper`),
            so the target holds for other voices, not only for these.
        progress: called with a line of text after each cell.

    Returns:
        The chosen decision (its ``measured`` holds the comparison), and a report dict
        ``{"candidates": {name: {"mean_named_right", "max_strangers_named", "cells"}},
        "chosen": name}``.
    """
    kinds = {"cosine": None}
    if cohort is not None:
        kinds["asnorm"] = ASNorm(cohort, top_k=cohort_top_k)
    candidates, all_scores = {}, {}
    for kind, norm in kinds.items():
        table = np.zeros((len(enrol_counts), len(gallery_sizes)))
        for i, k in enumerate(enrol_counts):
            for j, n in enumerate(gallery_sizes):
                per_corpus = []
                for c, (name, data) in enumerate(sets.items()):
                    scores = episode_scores(
                        data.embeddings,
                        data.speakers,
                        n,
                        k,
                        episodes,
                        seed + 1000 * c,
                        fillers=data.fillers,
                        asnorm=norm,
                    )
                    all_scores[kind, name, n, k] = scores
                    strangers = ~scores.genuine
                    per_corpus.append(
                        threshold_at_far_upper(
                            scores.best[strangers],
                            scores.speaker[strangers],
                            target_far,
                            confidence,
                            seed=seed,
                        )
                    )
                table[i, j] = max(per_corpus)
                if progress:
                    progress(f"{kind} N={n} K={k}: threshold {table[i, j]:.4f}")
        common = dict(
            gallery_sizes=tuple(gallery_sizes),
            enrol_counts=tuple(enrol_counts),
            score=kind,
            cohort_top_k=cohort_top_k if kind == "asnorm" else None,
            target_far=target_far,
        )
        candidates[f"{kind}-table"] = OpenSetDecision(
            tuple(tuple(float(t) for t in row) for row in table),
            source=f"threshold per gallery size and clips, {kind} scores, dev speakers of "
            + ", ".join(sets),
            **common,
        )
        single = float(table.max())
        candidates[f"{kind}-single"] = OpenSetDecision(
            tuple(tuple(single for _ in gallery_sizes) for _ in enrol_counts),
            source=f"one threshold for every gallery, {kind} scores, dev speakers of "
            + ", ".join(sets),
            **common,
        )
    report = {"candidates": {}, "target_far": target_far, "episodes": episodes, "seed": seed}
    for name, decision in candidates.items():
        cells = []
        for (kind, corpus, n, k), scores in all_scores.items():
            if kind != decision.score:
                continue
            metrics = openset_metrics(scores, decision)
            cells.append(
                {
                    "corpus": corpus,
                    "gallery_size": n,
                    "enrol_count": k,
                    **{rate: metrics[rate]["mean"] for rate in metrics if rate in RATES},
                }
            )
        report["candidates"][name] = {
            "mean_named_right": float(np.mean([c["named_right"] for c in cells])),
            "max_strangers_named": float(np.max([c["strangers_named"] for c in cells])),
            "cells": cells,
        }
    chosen = max(report["candidates"], key=lambda c: report["candidates"][c]["mean_named_right"])
    report["chosen"] = chosen
    summary = {
        name: {
            "mean_named_right": round(r["mean_named_right"], 4),
            "max_strangers_named": round(r["max_strangers_named"], 4),
        }
        for name, r in report["candidates"].items()
    }
    decision = dataclasses.replace(
        candidates[chosen],
        measured={"chosen": chosen, "episodes": episodes, "seed": seed, "candidates": summary},
    )
    return decision, report
