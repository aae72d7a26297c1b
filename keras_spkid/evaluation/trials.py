"""Verification trial lists: make one from a labelled set, score one with embeddings.

:func:`make_trials` draws a ``veri_test.txt``-style list (``label enrol test``) from
any labelled corpus, e.g. the WUW test speakers, for calibration and EER when no
official list exists. With ``cross_recording`` (the default) a target trial pairs two
*different* recordings of the speaker (another phone call or session) when the speaker
has them, which is the hard and honest case; speakers with one recording give
same-recording targets only if ``cross_recording`` is off.
"""

from __future__ import annotations

import numpy as np

from keras_spkid.atomic import atomic_path
from keras_spkid.data.voxceleb import Trials
from keras_spkid.errors import DataError
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.vectors import l2_normalize


def make_trials(
    paths,
    speakers,
    recordings,
    targets_per_speaker: int = 20,
    nontargets_per_target: int = 1,
    cross_recording: bool = True,
    seed: int = 0,
) -> Trials:
    """Draw target and non-target trials.

    Args:
        paths, speakers, recordings: ``[n]`` clip paths, their speakers and recordings.
        targets_per_speaker: target trials per speaker (fewer if not enough pairs).
        nontargets_per_target: non-target trials per target trial; each pairs a clip
            of the speaker with a clip of a random other speaker.
        cross_recording: target pairs must come from different recordings.
        seed: which trials.

    Raises:
        DataError: no target pair can be formed.
    """
    paths = np.asarray(paths, dtype=str)
    speakers = np.asarray(speakers, dtype=str)
    recordings = np.asarray(recordings, dtype=str)
    rng = np.random.default_rng(seed)
    ids = np.unique(speakers)
    rows = {s: np.flatnonzero(speakers == s) for s in ids}
    labels, enrol, test = [], [], []
    for s in ids:
        mine = rows[s]
        pairs = [
            (a, b)
            for i, a in enumerate(mine)
            for b in mine[i + 1 :]
            if not cross_recording or recordings[a] != recordings[b]
        ]
        if not pairs:
            continue
        chosen = rng.choice(len(pairs), min(targets_per_speaker, len(pairs)), replace=False)
        others = np.flatnonzero(speakers != s)
        for c in chosen:
            a, b = pairs[c]
            labels.append(1)
            enrol.append(paths[a])
            test.append(paths[b])
            for _ in range(nontargets_per_target):
                labels.append(0)
                enrol.append(paths[rng.choice(mine)])
                test.append(paths[rng.choice(others)])
    if not labels:
        raise DataError(
            "no target trial can be formed: every speaker has a single clip"
            + (
                " or a single recording (allow pairs from one recording: spkid eval trials "
                "--same-recording, cross_recording=False in Python)"
                if cross_recording
                else ""
            )
        )
    return Trials(np.asarray(labels, np.int8), enrol, test)


def write_trials(trials: Trials, path) -> None:
    """Write ``label enrol test`` lines (the ``veri_test.txt`` format), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(
            f"{int(label)} {e} {t}\n"
            for label, e, t in zip(trials.labels, trials.enrol, trials.test)
        )


def trial_paths(trials: Trials) -> list[str]:
    """Every distinct path a trial list mentions, in first-seen order."""
    return list(dict.fromkeys([*trials.enrol, *trials.test]))


def score_trials(
    trials: Trials,
    enrol: EmbeddingSet,
    test: EmbeddingSet | None = None,
    asnorm=None,
    source="trials",
) -> np.ndarray:
    """Cosine score of every trial (AS-Norm normalised when ``asnorm`` is given).

    Args:
        trials: the list; its paths are looked up in the embedding sets.
        enrol: embeddings of the enrolment paths (and of the test paths when ``test``
            is ``None``).
        test: embeddings of the test paths, e.g. of short crops ("short test
            utterances"), or ``None``.
        asnorm: an :class:`~keras_spkid.scoring.asnorm.ASNorm`, or ``None``.

    Returns:
        ``[n_trials]`` float64 scores.
    """
    test = test if test is not None else enrol
    if trials.labels.size == 0:
        raise DataError(f"{source}: no trials")
    e_rows = enrol.lookup(trials.enrol, source)
    t_rows = test.lookup(trials.test, source)
    e_emb = l2_normalize(enrol.embeddings)
    t_emb = l2_normalize(test.embeddings)
    scores = np.einsum("ij,ij->i", e_emb[e_rows], t_emb[t_rows]).astype(np.float64)
    if asnorm is None:
        return scores
    e_mu, e_sd = asnorm.stats(e_emb)
    t_mu, t_sd = asnorm.stats(t_emb)
    return asnorm.normalize(scores, (e_mu[e_rows], e_sd[e_rows]), (t_mu[t_rows], t_sd[t_rows]))
