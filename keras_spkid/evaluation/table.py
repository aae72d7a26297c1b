"""The project's accuracy table: a model against the MFCC baseline on the test speakers.

``spkid eval table`` computes, in one run and for both models:

* **few-shot identification** on the test split of each corpus of :data:`FEWSHOT_SETS`:
  N-way K-shot accuracy, mean ± 95% CI over episodes (nearest cosine prototype, see
  :func:`~keras_spkid.evaluation.fewshot.embedding_episode_accuracies`). Both models
  are scored on the *same* episodes (same items, same seed), so their difference is a
  paired one: its CI is that of the per-episode differences, much tighter than the
  two CIs suggest.
* **verification** on the WUW Corpus II test speakers: EER and minDCF (p_target 0.01)
  of cosine scores on the trial lists of :data:`TRIAL_LISTS`, drawn with
  :func:`~keras_spkid.evaluation.trials.make_trials` and written next to the report.

Each corpus is embedded once per model (:func:`~keras_spkid.evaluation.embeddings.
corpus_embeddings`, cached under ``<out>/embeddings/<model|baseline>/``) and the
embeddings serve every cell.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import time
from pathlib import Path

from keras_spkid.data.corpora import corpus_split
from keras_spkid.errors import DataError
from keras_spkid.evaluation.embeddings import corpus_embeddings
from keras_spkid.evaluation.fewshot import (
    eligible_for_episodes,
    embedding_episode_accuracies,
    mean_ci95,
)
from keras_spkid.evaluation.report import markdown_table
from keras_spkid.evaluation.trials import make_trials, score_trials, write_trials
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.inference.model_io import EmbeddingModel
from keras_spkid.scoring.verification import verification_metrics

MODELS = ("model", "baseline")
"""The two columns of the table: the model under test and the classical baseline."""


@dataclasses.dataclass(frozen=True)
class FewShotSet:
    """One corpus of the few-shot part of the table.

    Attributes:
        corpus: corpus name under the data root; its ``test`` split is used.
        queries: query items per speaker in every episode.
        max_way: the most speakers an episode can have (others are left out).
        segment_seconds: items are fixed segments of this length cut from each clip
            (support and queries of a speaker may share a clip); ``None``: items are
            whole clips.
    """

    corpus: str
    queries: int
    max_way: int | None = None
    segment_seconds: float | None = None

    @property
    def items(self) -> str:
        return f"{self.segment_seconds:g} s segments" if self.segment_seconds else "utterances"


FEWSHOT_SETS = (
    # 33 of 35 test speakers have 10 clips: 5 shots + 5 queries
    FewShotSet("wuw_corpus_ii", queries=5),
    # one 2.7-16.8 s clip per speaker: 2 s segments, 28 of 38 speakers have 6 (5 shots + 1 query)
    FewShotSet("librispeech_1utt", queries=1, segment_seconds=2.0),
    # 6 speakers with 500 digits each
    FewShotSet("fsdd", queries=5, max_way=5),
)

TRIAL_CORPUS = "wuw_corpus_ii"
NONTARGETS_PER_TARGET = 10


@dataclasses.dataclass(frozen=True)
class TrialList:
    """A verification trial list drawn from the test speakers of :data:`TRIAL_CORPUS`."""

    name: str
    cross_recording: bool
    description: str


TRIAL_LISTS = (
    TrialList(
        "all", False, "every pair of different utterances of a speaker, same or another call"
    ),
    TrialList(
        "cross_session",
        True,
        "target pairs from two different calls only (the test speakers who called more than once)",
    ),
)


def paired_fewshot(
    sets: dict[str, EmbeddingSet], way: int, shot: int, queries: int, episodes: int, seed: int
) -> dict:
    """One table cell: each model's accuracy and their paired difference.

    Args:
        sets: ``{"model": ..., "baseline": ...}`` embeddings of the same items (items
            that only one model could embed are left out, so the episodes are equal).
        way, shot, queries, episodes, seed: the episodes.

    Returns:
        ``{"speakers": eligible speakers, "model": ci, "baseline": ci, "difference": ci}``
        (each ``ci`` a dict of mean, ci95, episodes) or ``{"speakers": n, "note": why}``
        when no episode can be formed.
    """
    first, second = (sets[key] for key in MODELS)
    both = set(second.paths)
    common = [p for p in first.paths if p in both]
    rows = {key: sets[key].lookup(common) for key in MODELS}
    speakers = first.require_speakers()[rows[MODELS[0]]]
    cell = {"speakers": len(eligible_for_episodes(speakers, shot + queries))}
    try:
        accuracies = {
            key: embedding_episode_accuracies(
                sets[key].embeddings[rows[key]],
                sets[key].embeddings[rows[key]],
                speakers,
                way,
                shot,
                queries,
                episodes,
                seed,
            )
            for key in MODELS
        }
    except DataError as why:
        return dict(cell, note=str(why))
    accuracies["difference"] = accuracies[MODELS[0]] - accuracies[MODELS[1]]
    return dict(
        cell, **{key: dataclasses.asdict(mean_ci95(acc)) for key, acc in accuracies.items()}
    )


def verification_row(
    catalogue, trial_list: TrialList, sets: dict[str, EmbeddingSet], out_dir, seed: int
) -> dict:
    """Draw one trial list (written to ``<out_dir>/trials-<corpus>-<name>.txt``) and score it.

    Targets are every qualifying same-speaker pair; each comes with
    :data:`NONTARGETS_PER_TARGET` non-targets pairing a clip of the speaker with a
    clip of a random other speaker.
    """
    utts = list(catalogue)
    path = Path(out_dir) / f"trials-{catalogue.name}-{trial_list.name}.txt"
    row = {"trials": trial_list.name, "description": trial_list.description, "file": path.name}
    try:
        trials = make_trials(
            [u.path for u in utts],
            [u.speaker for u in utts],
            [u.recording for u in utts],
            targets_per_speaker=len(utts) ** 2,
            nontargets_per_target=NONTARGETS_PER_TARGET,
            cross_recording=trial_list.cross_recording,
            seed=seed,
        )
    except DataError as why:
        return dict(row, note=str(why))
    write_trials(trials, path)
    targets = trials.labels == 1
    speaker_of = {u.path: u.speaker for u in utts}
    row.update(
        targets=int(targets.sum()),
        nontargets=int((~targets).sum()),
        target_speakers=len({speaker_of[e] for e, t in zip(trials.enrol, targets) if t}),
    )
    for key in MODELS:
        row[key] = verification_metrics(
            score_trials(trials, sets[key], source=path.name), trials.labels
        )
    row["difference"] = {
        name: row[MODELS[0]][name] - row[MODELS[1]][name] for name in ("eer", "min_dcf_0.01")
    }
    return row


def machine() -> dict:
    """Where the table was computed (timings and float details depend on it)."""
    import keras
    import tensorflow as tf

    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def accuracy_table(
    models: dict[str, EmbeddingModel],
    out_dir,
    ways=(5, 10),
    shots=(1, 5),
    episodes: int = 1000,
    seed: int = 0,
    sets=FEWSHOT_SETS,
    max_speakers: int | None = None,
    command: str = "",
    progress: bool = True,
) -> dict:
    """Compute the whole table (see the module docstring); returns its JSON data.

    Args:
        models: ``{"model": ..., "baseline": ...}`` loaded raw-audio models.
        out_dir: where embeddings (``embeddings/<key>/``) and trial lists go.
        ways, shots: the episode shapes (ways above a set's ``max_way`` or its number
            of speakers are left out for that set).
        episodes, seed: episodes per cell and which ones.
        sets: the corpora (:class:`FewShotSet`).
        max_speakers: use only the first speakers of each test split (quick checks).
        command: the command line, recorded in the report.
        progress: show progress bars.
    """
    out_dir = Path(out_dir)
    start = time.perf_counter()
    data = {
        "command": command,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "episodes": episodes,
        "seed": seed,
        "models": {
            key: {"path": str(m.path), "sha256": m.sha256[:12], "dim": m.dim}
            for key, m in models.items()
        },
        "corpora": [],
        "fewshot": [],
        "verification": [],
    }
    for fewshot_set in sets:
        catalogue = corpus_split(fewshot_set.corpus, "test", max_speakers=max_speakers)
        embeddings, seconds = {}, {}
        for key in MODELS:
            began = time.perf_counter()
            embeddings[key] = corpus_embeddings(
                models[key],
                catalogue,
                out_dir / "embeddings" / key,
                segment_seconds=fewshot_set.segment_seconds,
                progress=progress,
            )
            seconds[key] = round(time.perf_counter() - began, 1)
        num_speakers = len(catalogue.speakers)
        data["corpora"].append(
            {
                "corpus": fewshot_set.corpus,
                "speakers": num_speakers,
                "clips": len(catalogue),
                "items": len(embeddings[MODELS[0]]),
                "item": fewshot_set.items,
                "queries": fewshot_set.queries,
                "embedding_seconds": seconds,
            }
        )
        for way in ways:
            if way > min(num_speakers, fewshot_set.max_way or num_speakers):
                continue
            for shot in shots:
                data["fewshot"].append(
                    dict(
                        {
                            "corpus": fewshot_set.corpus,
                            "way": way,
                            "shot": shot,
                            "queries": fewshot_set.queries,
                        },
                        **paired_fewshot(
                            embeddings, way, shot, fewshot_set.queries, episodes, seed
                        ),
                    )
                )
        if fewshot_set.corpus == TRIAL_CORPUS:
            data["verification"] += [
                verification_row(catalogue, t, embeddings, out_dir, seed) for t in TRIAL_LISTS
            ]
    data["wall_seconds"] = round(time.perf_counter() - start, 1)
    return data


def _accuracy(ci, signed=False) -> str:
    return f"{100 * ci['mean']:{'+' if signed else ''}.2f} ± {100 * ci['ci95']:.2f}"


def table_markdown(data: dict) -> str:
    """The report a person reads: provenance, then the numbers side by side."""
    models = data["models"]
    lines = [
        "# Accuracy table: model vs MFCC-statistics baseline (test speakers)",
        "",
        f"- command: `{data['command']}`",
        f"- date: {data['date']}",
        "- machine: {host}, {platform}, {cpus} CPUs, TensorFlow {tensorflow}, Keras {keras}".format(
            **data["machine"]
        ),
        f"- wall time: {data['wall_seconds']} s (reused embeddings are not re-extracted)",
    ]
    lines += [
        f"- {key}: `{m['path']}` (sha256 {m['sha256']}, {m['dim']}-dim embeddings)"
        for key, m in models.items()
    ]
    lines += [
        "",
        "## Few-shot identification",
        "",
        (
            f"Accuracy (%), mean ± 95% CI over {data['episodes']} episodes (seed "
            f"{data['seed']}); nearest prototype by cosine. Both models see the same "
            "episodes, so the difference (model - baseline, points) has a paired CI. "
            "'speakers': test speakers with enough items for the cell."
        ),
        "",
    ]
    lines.append(
        markdown_table(
            ["corpus", "items", "speakers in split", "embedding time model / baseline (s)"],
            [
                [
                    c["corpus"],
                    f"{c['items']} {c['item']} of {c['clips']} clips",
                    c["speakers"],
                    f"{c['embedding_seconds']['model']} / {c['embedding_seconds']['baseline']}",
                ]
                for c in data["corpora"]
            ],
        )
    )
    lines.append("")
    lines.append(
        markdown_table(
            [
                "corpus",
                "way",
                "shot",
                "queries",
                "speakers",
                "model (%)",
                "baseline (%)",
                "difference (points)",
            ],
            [
                [
                    r["corpus"],
                    r["way"],
                    r["shot"],
                    r["queries"],
                    r["speakers"],
                    *(
                        [
                            _accuracy(r["model"]),
                            _accuracy(r["baseline"]),
                            _accuracy(r["difference"], True),
                        ]
                        if "note" not in r
                        else [f"n/a: {r['note']}", "", ""]
                    ),
                ]
                for r in data["fewshot"]
            ],
        )
    )
    if data["verification"]:
        lines += [
            "",
            f"## Verification ({TRIAL_CORPUS} test speakers, cosine scores)",
            "",
            (
                "EER (%) and minDCF (p_target 0.01); lower is better; difference = model - "
                f"baseline. Each target trial comes with {NONTARGETS_PER_TARGET} non-targets "
                "pairing one of its speaker's clips with a random other speaker's clip."
            ),
            "",
        ]
        lines.append(
            markdown_table(
                [
                    "trials",
                    "targets (speakers)",
                    "non-targets",
                    "EER model",
                    "EER baseline",
                    "EER difference",
                    "minDCF model",
                    "minDCF baseline",
                    "minDCF difference",
                ],
                [
                    [
                        f"{r['trials']} (`{r['file']}`)",
                        *(
                            [
                                f"{r['targets']} ({r['target_speakers']})",
                                r["nontargets"],
                                f"{100 * r['model']['eer']:.2f}",
                                f"{100 * r['baseline']['eer']:.2f}",
                                f"{100 * r['difference']['eer']:+.2f}",
                                f"{r['model']['min_dcf_0.01']:.3f}",
                                f"{r['baseline']['min_dcf_0.01']:.3f}",
                                f"{r['difference']['min_dcf_0.01']:+.3f}",
                            ]
                            if "note" not in r
                            else [f"n/a: {r['note']}"] + [""] * 7
                        ),
                    ]
                    for r in data["verification"]
                ],
            )
        )
        lines += [""] + [f"- {r['trials']}: {r['description']}" for r in data["verification"]]
    return "\n".join(lines)
