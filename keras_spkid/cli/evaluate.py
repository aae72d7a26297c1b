"""``spkid eval ...``: the numbers people compare with papers.

``fewshot``   N-way x K-shot accuracy table with 95% CIs (query length full/1/2/3 s;
              ``--segment-seconds``: items are fixed segments of each clip)
``verify``    EER and minDCF (p_target 0.01, 0.05) on a ``veri_test.txt``-style trial
              list, optional AS-Norm, DET plot; ``--calibrate`` stores a threshold
``identify``  closed-set top-1 / top-5 / macro accuracy
``knn``       scikit-learn ``KNeighborsClassifier`` accuracy
``trials``    write a trial list for a labelled corpus (e.g. WUW test speakers)
``table``     the project's accuracy table: a model and the MFCC baseline side by side
              on the test speakers (few-shot accuracy, EER, minDCF)
``calibrate`` one threshold for several corpora (all pairs of their dev speakers, each
              corpus weighted equally), saved as ``calibration.json``
``openset``   open-set identification: enrol N speakers x K clips, query with their
              other clips and with strangers; named right / wrong, missed, strangers
              named with 95% CIs, and the curve over thresholds
``calibrate-openset``  choose the decision users meet (threshold by gallery size and
              clips, cosine or AS-Norm) on dev speakers at a target rate of strangers
              named; writes ``calibration.json`` and ``cohort.npy`` beside the model

Embeddings come from ``--embeddings OUT.npz`` (made by ``extract_embeds.py``) or are
extracted from a corpus (``--corpus/--manifest/--folder/...``) with ``--model`` (default:
the built-in model; ``--model mfcc_stats`` is the classical baseline) into ``--out``,
where they are reused by the next command. Each command writes ``<out>/<command>.md``,
``.json`` and, for fewshot and verify, ``.png``.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import numpy as np

from keras_spkid.errors import SpkidError

QUERY_LENGTHS = ("full", "1", "2", "3")
KNN_METRICS = (
    "cosine", "euclidean", "sqeuclidean", "manhattan", "chebyshev", "minkowski",
    "correlation", "braycurtis", "canberra",
)  # fmt: skip
"""Distances scikit-learn's brute-force neighbour search takes for dense embeddings."""


def _model_source(parser):
    parser.add_argument("--model", help="a .keras model (default: the built-in model)")
    parser.add_argument(
        "--embeddings",
        help="embeddings .npz from extract_embeds.py (instead of extracting from a corpus)",
    )
    parser.add_argument("--out", default="runs/eval", help="folder for reports and embeddings")


def _segment_seconds(parser):
    from keras_spkid.cli.args import positive_float

    parser.add_argument(
        "--segment-seconds",
        type=positive_float,
        default=2.0,
        help="corpora with one clip per speaker are cut into segments this long",
    )


def _catalogue(args):
    from keras_spkid.cli.sources import catalogue_from_args, has_source

    if not has_source(args):
        raise SpkidError(
            "give --embeddings, or a corpus to embed (--corpus, --manifest, --folder, ...)"
        )
    return catalogue_from_args(args)


def _extract(args, catalogue, crops: int = 0, crop_seconds: float = 3.0):
    """Embeddings of a catalogue's files (or segments), extracted once into ``--out``."""
    from keras_spkid.evaluation.embeddings import corpus_embeddings
    from keras_spkid.inference.model_io import load_embedding_model

    return corpus_embeddings(
        load_embedding_model(args.model),
        catalogue,
        args.out,
        crops,
        crop_seconds,
        getattr(args, "segment_seconds", None),
        progress=not args.quiet,
    )


def _embeddings(args, crops=0, crop_seconds=3.0):
    from keras_spkid.inference.embedding_set import EmbeddingSet

    if args.embeddings:
        if getattr(args, "segment_seconds", None):
            raise SpkidError("--segment-seconds needs audio: give a corpus instead of --embeddings")
        return EmbeddingSet.load(args.embeddings), None
    catalogue = _catalogue(args)
    return _extract(args, catalogue, crops, crop_seconds), catalogue


def _done(paths):
    for path in paths:
        print(f"wrote {path}")
    return 0


# ----- fewshot -----
def cmd_fewshot(args) -> int:
    from keras_spkid.errors import DataError
    from keras_spkid.evaluation.fewshot import embedding_episode_accuracies, mean_ci95
    from keras_spkid.evaluation.plots import fewshot_figure
    from keras_spkid.evaluation.report import markdown_table, write_report

    if not args.embeddings and not args.segment_seconds:
        _check_fewshot_cells(args, _catalogue(args))
    support, catalogue = _embeddings(args)
    speakers = support.require_speakers()
    rows = []
    for query_length in args.query:
        if query_length == "full":
            query = support
        elif args.embeddings:
            raise SpkidError(
                f"--query {query_length} needs audio: give a corpus and --model "
                "instead of --embeddings"
            )
        elif args.segment_seconds and float(query_length) > args.segment_seconds:
            raise SpkidError(
                f"--query {query_length}: a query crop cannot be longer than "
                f"the {args.segment_seconds:g} s segments"
            )
        else:
            query = _extract(args, catalogue, crops=1, crop_seconds=float(query_length))
        # keep clips that both passes embedded
        common = sorted(set(support.paths) & set(query.paths))
        s_rows, q_rows = support.lookup(common), query.lookup(common)
        label = "full" if query_length == "full" else f"{query_length} s"
        for way in args.ways:
            for shot in args.shots:
                try:
                    acc = embedding_episode_accuracies(
                        support.embeddings[s_rows],
                        query.embeddings[q_rows],
                        speakers[s_rows],
                        way,
                        shot,
                        args.queries,
                        args.episodes,
                        args.seed,
                    )
                    ci = mean_ci95(acc)
                    rows.append(
                        {
                            "way": way,
                            "shot": shot,
                            "query": label,
                            "mean": ci.mean,
                            "ci95": ci.ci95,
                            "episodes": ci.episodes,
                        }
                    )
                except DataError as why:
                    rows.append(
                        {
                            "way": way,
                            "shot": shot,
                            "query": label,
                            "mean": None,
                            "ci95": None,
                            "episodes": 0,
                            "note": str(why),
                        }
                    )
    if all(r["mean"] is None for r in rows):
        raise SpkidError(
            f"--ways {' '.join(map(str, args.ways))} --shots {' '.join(map(str, args.shots))} "
            f"--queries {args.queries}: no cell can be filled ({rows[0]['note']})"
        )
    table = markdown_table(
        ["query", "way", "shot", "accuracy (%)"],
        [
            [
                r["query"],
                r["way"],
                r["shot"],
                f"{100 * r['mean']:.2f} ± {100 * r['ci95']:.2f}"
                if r["mean"] is not None
                else f"n/a: {r['note']}",
            ]
            for r in rows
        ],
    )
    source = args.embeddings or (catalogue.name if catalogue else "")
    items = (
        f"{args.segment_seconds:g} s segments of each clip (a speaker's support and query "
        "segments may come from one clip)"
        if args.segment_seconds
        else "full utterances"
    )
    markdown = (
        f"# Few-shot identification: {source}\n\n{args.episodes} episodes per cell, "
        f"{args.queries} queries per speaker, seed {args.seed}; mean ± 95% CI "
        f"(1.96 x std over episodes / sqrt(episodes)). Support items: {items}.\n\n" + table
    )
    print(markdown)
    data = {
        "rows": rows,
        "episodes": args.episodes,
        "queries": args.queries,
        "seed": args.seed,
        "source": source,
        "model": support.info.get("model"),
        "segment_seconds": args.segment_seconds,
    }
    return _done(write_report(args.out, "fewshot", markdown, data, fewshot_figure(rows)))


def _check_fewshot_cells(args, catalogue) -> None:
    """Fail before extracting anything when no way x shot cell can be filled."""
    counts = [len(utts) for utts in catalogue.by_speaker().values()]
    need = min(args.shots) + args.queries
    eligible = sum(c >= need for c in counts)
    if eligible < min(args.ways):
        raise SpkidError(
            f"--ways {' '.join(map(str, args.ways))} --shots {' '.join(map(str, args.shots))} "
            f"--queries {args.queries}: no cell can be filled: {eligible} of the "
            f"{len(counts)} speakers of {catalogue.name or 'the corpus'} have {need} clips "
            f"(--shots + --queries), at least {min(args.ways)} are needed; lower --queries "
            "or --ways"
        )


# ----- verify -----
def _trials_root(args):
    if args.root:
        return Path(args.root)
    if args.corpus:
        from keras_spkid.data.corpora import load_corpus

        return load_corpus(args.corpus).root
    raise SpkidError("--trials paths are relative to an audio folder: give --root (or --corpus)")


def _trial_embeddings(args, trials, crops, crop_seconds, tag, paths):
    from keras_spkid.evaluation.embeddings import list_embeddings
    from keras_spkid.inference.model_io import load_embedding_model

    output = Path(args.out) / f"embeddings-trials-{Path(args.trials).stem}-{tag}.npz"
    model = load_embedding_model(args.model)
    return list_embeddings(
        model, paths, _trials_root(args), output, crops, crop_seconds, progress=not args.quiet
    )


def cmd_verify(args) -> int:
    from keras_spkid.data.voxceleb import UNKNOWN_LABEL, read_trials
    from keras_spkid.evaluation.plots import det_figure
    from keras_spkid.evaluation.report import markdown_table, write_report
    from keras_spkid.evaluation.trials import score_trials, trial_paths
    from keras_spkid.inference.embedding_set import EmbeddingSet
    from keras_spkid.scoring.calibration import calibrate
    from keras_spkid.scoring.verification import error_rates, verification_metrics

    trials = read_trials(args.trials)
    if (trials.labels == UNKNOWN_LABEL).any():
        raise SpkidError(f"{args.trials}: has unlabelled (2-column) trials; EER needs labels")
    if args.embeddings:
        enrol = EmbeddingSet.load(args.embeddings)
        test = None
        if args.test_seconds:
            raise SpkidError(
                "--test-seconds needs audio: give --root/--corpus instead of --embeddings"
            )
    else:
        enrol = _trial_embeddings(
            args,
            trials,
            args.crops,
            3.0,
            "full" if not args.crops else f"{args.crops}crops",
            trial_paths(trials),
        )
        test = None
        if args.test_seconds:
            test = _trial_embeddings(
                args,
                trials,
                1,
                args.test_seconds,
                f"crop{args.test_seconds:g}s",
                list(dict.fromkeys(trials.test)),
            )
    asnorm = None
    if args.cohort:
        from keras_spkid.scoring.asnorm import ASNorm

        asnorm = ASNorm(EmbeddingSet.load(args.cohort).embeddings, top_k=args.cohort_top_k)
    results, curves, eers = {}, {}, {}
    variants = [("cosine", None)] + ([("asnorm", asnorm)] if asnorm is not None else [])
    for name, norm in variants:
        scores = score_trials(trials, enrol, test, norm, source=str(args.trials))
        results[name] = verification_metrics(scores, trials.labels)
        rates = error_rates(scores, trials.labels)
        curves[name], eers[name] = (rates.false_alarm, rates.miss), results[name]["eer"]
        if args.calibrate and name == variants[-1][0]:  # AS-Norm scores when a cohort is given
            calibration = calibrate(
                scores,
                trials.labels,
                args.calibrate,
                args.far,
                score=name,
                trials=Path(args.trials).name,
            )
            results[name]["calibration"] = calibration.to_json()
            target = Path(args.save_calibration or Path(args.out) / "calibration.json")
            calibration.save(target)
            print(f"calibrated: {calibration.describe()}; saved to {target}")
    labels = trials.labels
    test_kind = (
        f"test utterances cut to {args.test_seconds:g} s"
        if args.test_seconds
        else (f"mean of {args.crops} crops" if args.crops else "full utterances")
    )
    markdown = (
        f"# Verification: {Path(args.trials).name}\n\n{int(labels.sum())} target and "
        f"{int(labels.size - labels.sum())} non-target trials; {test_kind}.\n\n"
        + markdown_table(
            ["scores", "EER (%)", "minDCF (p=0.01)", "minDCF (p=0.05)"],
            [
                [n, f"{100 * r['eer']:.2f}", f"{r['min_dcf_0.01']:.4f}", f"{r['min_dcf_0.05']:.4f}"]
                for n, r in results.items()
            ],
        )
    )
    print(markdown)
    data = {
        "trials": str(args.trials),
        "num_target": int(labels.sum()),
        "num_nontarget": int(labels.size - labels.sum()),
        "test": test_kind,
        "model": enrol.info.get("model"),
        "results": results,
    }
    return _done(write_report(args.out, "verify", markdown, data, det_figure(curves, eers)))


# ----- identify / knn -----
def _split(args, embeddings, catalogue):
    """Enrol/test rows: the catalogue's named splits if asked, else recording-disjoint."""
    from keras_spkid.evaluation.identification import recording_disjoint_split

    if args.enrol_split or args.test_split:
        if catalogue is None:
            raise SpkidError(
                "--enrol-split/--test-split need a corpus with splits, not --embeddings"
            )
        split_of = {u.path: u.split for u in catalogue}
        splits = np.asarray([split_of.get(p) for p in embeddings.paths], dtype=object)
        enrol = np.flatnonzero(splits == (args.enrol_split or "train"))
        test = np.flatnonzero(splits == (args.test_split or "test"))
        if not enrol.size or not test.size:
            raise SpkidError(
                f"splits {args.enrol_split!r}/{args.test_split!r} are empty; "
                f"the corpus has {sorted(set(split_of.values()) - {None})}"
            )
        return enrol, test
    return recording_disjoint_split(embeddings, args.test_fraction, args.seed)


def _identification(args, name: str, evaluate) -> int:
    from keras_spkid.evaluation.report import markdown_table, write_report

    embeddings, catalogue = _embeddings(args, args.crops, 3.0)
    enrol, test = _split(args, embeddings, catalogue)
    result = evaluate(embeddings.select(enrol), embeddings.select(test))
    markdown = (
        f"# {name}\n\n{result.num_speakers} enrolled speakers, {len(enrol)} enrolment "
        f"and {result.num_test} test clips, no recording on both sides.\n\n"
        + markdown_table(
            ["top-1 (%)", "top-5 (%)", "macro top-1 (%)"],
            [[f"{100 * result.top1:.2f}", f"{100 * result.top5:.2f}", f"{100 * result.macro:.2f}"]],
        )
    )
    print(markdown)
    data = dict(result.as_dict(), model=embeddings.info.get("model"), command=name)
    return _done(write_report(args.out, args.eval_command, markdown, data))


def cmd_identify(args) -> int:
    from keras_spkid.evaluation.identification import closed_set_identification

    return _identification(
        args, "Closed-set identification (nearest prototype)", closed_set_identification
    )


def cmd_knn(args) -> int:
    from keras_spkid.evaluation.identification import knn_identification

    return _identification(
        args,
        f"kNN classification (k={args.k}, {args.metric}, {args.weights})",
        lambda e, t: knn_identification(e, t, args.k, args.metric, args.weights),
    )


# ----- trials -----
def cmd_trials(args) -> int:
    from keras_spkid.evaluation.trials import make_trials, write_trials

    catalogue = _catalogue(args)
    utts = list(catalogue)
    trials = make_trials(
        [u.path for u in utts],
        [u.speaker for u in utts],
        [u.recording for u in utts],
        args.targets_per_speaker,
        args.nontargets_per_target,
        not args.same_recording,
        args.seed,
    )
    write_trials(trials, args.output)
    print(
        f"wrote {args.output}: {int(trials.labels.sum())} target and "
        f"{int((trials.labels == 0).sum())} non-target trials (root: {catalogue.root})"
    )
    return 0


# ----- table -----
def _table_command(args) -> str:
    """The command with every setting spelled out, defaults included (to remake the table)."""
    words = ["spkid", "eval", "table"] + (["--model", args.model] if args.model else [])
    words += [
        "--baseline",
        args.baseline,
        "--out",
        str(args.out),
        "--corpora",
        *args.corpora,
        "--ways",
        *map(str, args.ways),
        "--shots",
        *map(str, args.shots),
        "--episodes",
        str(args.episodes),
        "--seed",
        str(args.seed),
        "--segment-seconds",
        f"{args.segment_seconds:g}",
    ]
    words += ["--max-speakers", str(args.max_speakers)] if args.max_speakers else []
    return shlex.join(words)


def cmd_table(args) -> int:
    from keras_spkid.evaluation.report import write_report
    from keras_spkid.evaluation.table import (
        FEWSHOT_SETS,
        accuracy_table,
        table_markdown,
    )
    from keras_spkid.inference.model_io import load_embedding_model

    sets = [
        dataclasses.replace(s, segment_seconds=args.segment_seconds) if s.segment_seconds else s
        for s in FEWSHOT_SETS
        if s.corpus in args.corpora
    ]
    models = {
        "model": load_embedding_model(args.model),
        "baseline": load_embedding_model(args.baseline),
    }
    data = accuracy_table(
        models,
        args.out,
        args.ways,
        args.shots,
        args.episodes,
        args.seed,
        sets,
        args.max_speakers,
        _table_command(args),
        progress=not args.quiet,
    )
    markdown = table_markdown(data)
    print(markdown)
    return _done(write_report(args.out, "table", markdown, data))


def cmd_calibrate(args) -> int:
    from keras_spkid.data.corpora import corpus_split
    from keras_spkid.evaluation.embeddings import corpus_embeddings
    from keras_spkid.evaluation.report import write_report
    from keras_spkid.inference.model_io import load_embedding_model
    from keras_spkid.scoring.calibration import all_pair_trials, calibrate_balanced

    model = load_embedding_model(args.model)
    groups = {}
    for corpus in args.corpora:
        catalogue = corpus_split(corpus, args.split)
        one_clip_each = len(catalogue) == len(catalogue.speakers)
        embeddings = corpus_embeddings(
            model,
            catalogue,
            Path(args.out) / "embeddings",
            segment_seconds=args.segment_seconds if one_clip_each else None,
            progress=not args.quiet,
        )
        groups[corpus] = all_pair_trials(embeddings.embeddings, embeddings.speakers)
    calibration, per_group = calibrate_balanced(groups, args.calibrate, args.far, args.seed)
    target = Path(args.save_calibration or Path(args.out) / "calibration.json")
    calibration.save(target)
    lines = [
        f"# Threshold calibration on {args.split} speakers",
        "",
        f"- model: `{model.path}`",
        f"- {calibration.describe()}",
        f"- trials: {calibration.trials}",
        f"- saved to `{target}`",
        "",
        "| corpus | targets | non-targets | EER (%) | false accepts (%) | false rejects (%) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {g['targets']} | {g['nontargets']} | {100 * g['eer']:.2f} | "
        f"{100 * g['false_accept']:.2f} | {100 * g['false_reject']:.2f} |"
        for name, g in per_group.items()
    ]
    print("\n".join(lines))
    data = {
        "calibration": dataclasses.asdict(calibration),
        "corpora": per_group,
        "model": str(model.path),
        "split": args.split,
    }
    return _done(write_report(args.out, "calibration", "\n".join(lines), data))


# ----- open set -----
ENROLLED_ONLY = ("fsdd",)
"""Corpora too small for strangers of their own: their speakers are enrolled, and only
whoever is left over is a stranger."""


def _split_embeddings(model, corpus: str, split: str, out, segment_seconds: float, quiet: bool):
    """Embeddings of one split of a bundled corpus (segments when one clip per speaker)."""
    from keras_spkid.data.corpora import corpus_split
    from keras_spkid.evaluation.embeddings import corpus_embeddings

    catalogue = corpus_split(corpus, split)
    one_clip_each = len(catalogue) == len(catalogue.speakers)
    return corpus_embeddings(
        model,
        catalogue,
        Path(out) / "embeddings",
        segment_seconds=segment_seconds if one_clip_each else None,
        progress=not quiet,
    )


def _percent(rate: dict) -> str:
    if rate["mean"] is None:
        return "n/a"
    return f"{100 * rate['mean']:.1f} ± {100 * rate['ci95']:.1f}"


def cmd_openset(args) -> int:
    from keras_spkid.errors import DataError
    from keras_spkid.evaluation.openset import episode_scores, openset_metrics, threshold_curve
    from keras_spkid.evaluation.plots import openset_figure
    from keras_spkid.evaluation.report import markdown_table, write_report
    from keras_spkid.inference.embedding_set import EmbeddingSet
    from keras_spkid.inference.model_io import load_embedding_model
    from keras_spkid.scoring.asnorm import ASNorm
    from keras_spkid.scoring.calibration import Calibration
    from keras_spkid.scoring.decision import OpenSetDecision, load_cohort

    model = load_embedding_model(args.model)
    calibration = Calibration.load(args.calibration) if args.calibration else model.calibration
    cohort = load_cohort(Path(args.calibration).parent) if args.calibration else model.cohort
    if cohort is not None and cohort.shape[1] != model.dim:
        raise DataError(
            f"{args.calibration or model.path}: its AS-Norm cohort holds {cohort.shape[1]}-dim "
            f"embeddings but {model.path} makes {model.dim}-dim ones; give the --model it was "
            "calibrated for"
        )
    decisions = {}
    if args.threshold is not None:
        decisions["threshold"] = OpenSetDecision.fixed(args.threshold, source="--threshold")
    elif calibration is not None:
        decisions["shipped"] = calibration.decision()
        if calibration.open_set is not None:
            decisions["pair threshold"] = OpenSetDecision.fixed(
                calibration.threshold, source="previous pair threshold"
            )
    else:
        decisions["none"] = None
    norms = {"cosine": None}
    if any(d is not None and d.score == "asnorm" for d in decisions.values()):
        if cohort is None:
            raise SpkidError(
                f"{model.path}: its decision is on AS-Norm scores but no cohort.npy is beside "
                "it (run 'spkid eval calibrate-openset' again)"
            )
        top_k = next(d.cohort_top_k for d in decisions.values() if d and d.score == "asnorm")
        norms["asnorm"] = ASNorm(cohort, top_k=top_k or 200)
    if args.embeddings:
        sets = {Path(args.embeddings).stem: EmbeddingSet.load(args.embeddings)}
    else:
        sets = {}
        for corpus in args.corpora:
            sets[corpus] = _split_embeddings(
                model, corpus, args.split, args.out, args.segment_seconds, args.quiet
            )
    rows, curves = [], {}
    for c, (name, data) in enumerate(sets.items()):
        speakers = data.require_speakers()
        share = 0.0 if name in ENROLLED_ONLY else args.stranger_share
        for n in args.enrolled:
            for k in args.clips:
                measured = {}
                try:
                    for kind, norm in norms.items():
                        measured[kind] = episode_scores(
                            data.embeddings,
                            speakers,
                            n,
                            k,
                            args.episodes,
                            args.seed + 1000 * c,
                            args.queries,
                            share,
                            asnorm=norm,
                        )
                except DataError as why:
                    rows.append({"corpus": name, "enrolled": n, "clips": k, "note": f"n/a: {why}"})
                    continue
                for label, decision in decisions.items():
                    scores = measured[decision.score if decision else "cosine"]
                    metrics = openset_metrics(scores, decision)
                    rows.append(
                        {
                            "corpus": name,
                            "enrolled": n,
                            "clips": k,
                            "decision": label,
                            **metrics,
                        }
                    )
                first = next(iter(decisions.values()))
                curve = threshold_curve(measured[first.score if first else "cosine"])
                curves[f"{name} N={n} K={k}"] = (
                    curve,
                    rows[-len(decisions)]["strangers_named"]["mean"],
                    rows[-len(decisions)]["named_right"]["mean"],
                )
    table = markdown_table(
        [
            "corpus",
            "enrolled",
            "clips",
            "decision",
            "named right (%)",
            "named wrong (%)",
            "missed (%)",
            "strangers named (%)",
            "strangers named, CI upper (%)",
        ],
        [
            [r["corpus"], r["enrolled"], r["clips"], r["note"], "", "", "", "", ""]
            if "note" in r
            else [
                r["corpus"],
                r["enrolled"],
                r["clips"],
                r["decision"],
                _percent(r["named_right"]),
                _percent(r["named_wrong"]),
                _percent(r["missed"]),
                _percent(r["strangers_named"]),
                "n/a"
                if r["strangers_named"]["upper"] is None
                else f"{100 * r['strangers_named']['upper']:.1f}",
            ]
            for r in rows
        ],
    )
    described = "\n".join(
        f"- {label}: {d.describe() if d else 'none (the closest is always named)'}"
        for label, d in decisions.items()
    )
    source = args.embeddings or f"{', '.join(args.corpora)} ({args.split} speakers)"
    markdown = (
        f"# Open-set identification: {source}\n\n"
        f"Model `{model.path}`. {args.episodes} seeded episodes per row (seed {args.seed}): "
        "enrol N speakers with K clips each, query with up to "
        f"{args.queries} other clips of each enrolled speaker and of each stranger (a "
        f"speaker not enrolled; at least {100 * args.stranger_share:.0f}% of a corpus's "
        f"speakers, whoever is left for {', '.join(ENROLLED_ONLY)}). Rates are means over "
        "episodes ± 95% CI (1.96 x std / sqrt(episodes)); named right + named wrong + "
        "missed = 100% of genuine queries.\n\n" + described + "\n\n" + table
    )
    print(markdown)
    data = {
        "rows": rows,
        "decisions": {k: (d.to_dict() if d else None) for k, d in decisions.items()},
        "model": str(model.path),
        "split": args.split,
        "episodes": args.episodes,
        "seed": args.seed,
        "queries": args.queries,
        "curves": {k: {n: v.tolist() for n, v in c.items()} for k, (c, _, _) in curves.items()},
    }
    return _done(write_report(args.out, "openset", markdown, data, openset_figure(curves)))


def _speech_commands_parts(model, catalogue, args, sets: dict, cohorts: list) -> Path:
    """Add a Speech Commands folder's contributors (its ``catalogue``) to an open-set
    calibration.

    Its contributors are dealt into thirds (:func:`~keras_spkid.data.speech_commands.
    calibration_part`): AS-Norm cohort voices (appended to ``cohorts``; they also fill
    galleries larger than the calibration third), calibration voices (``sets``), and
    held-out voices, whose embeddings are written for ``spkid eval openset --embeddings``.
    Returns the path of that held-out set.
    """
    from keras_spkid.data.speech_commands import calibration_part
    from keras_spkid.evaluation.embeddings import corpus_embeddings
    from keras_spkid.evaluation.openset_calibration import SpeakerSet, speaker_cohort

    data = corpus_embeddings(
        model, catalogue, Path(args.out) / "embeddings", progress=not args.quiet
    )
    part = np.array([calibration_part(s) for s in data.require_speakers()])
    cohort, dev = data.select(part == "cohort"), data.select(part == "dev")
    sets["speech_commands"] = SpeakerSet(
        dev.embeddings, dev.speakers, (cohort.embeddings, cohort.speakers)
    )
    cohorts.append(speaker_cohort(cohort.embeddings, cohort.speakers))
    held_out = Path(args.out) / "speech_commands-test.npz"
    data.select(part == "test").save(held_out)
    return held_out


def cmd_calibrate_openset(args) -> int:
    from keras_spkid.evaluation.openset_calibration import (
        SpeakerSet,
        calibrate_decision,
        speaker_cohort,
    )
    from keras_spkid.evaluation.report import markdown_table, write_report
    from keras_spkid.inference.model_io import load_embedding_model
    from keras_spkid.scoring.calibration import (
        CALIBRATION_FILE,
        all_pair_trials,
        calibrate_balanced,
    )
    from keras_spkid.scoring.decision import COHORT_FILE

    model_path = args.model
    if model_path and Path(model_path).is_dir():
        model_path = Path(model_path) / "model.keras"
    model = load_embedding_model(model_path)
    folder = model.path.parent
    if args.speech_commands:  # a wrong folder is refused before minutes of embedding
        from keras_spkid.data.speech_commands import scan_speech_commands

        speech_commands = scan_speech_commands(args.speech_commands)
    sets, cohorts, pairs = {}, [], {}
    for corpus in args.corpora:
        dev = _split_embeddings(model, corpus, "dev", args.out, args.segment_seconds, args.quiet)
        train = _split_embeddings(
            model, corpus, "train", args.out, args.segment_seconds, args.quiet
        )
        sets[corpus] = SpeakerSet(dev.embeddings, dev.speakers, (train.embeddings, train.speakers))
        cohorts.append(speaker_cohort(train.embeddings, train.speakers))
        pairs[corpus] = all_pair_trials(dev.embeddings, dev.speakers)
    if args.speech_commands:
        held_out = _speech_commands_parts(model, speech_commands, args, sets, cohorts)
    cohort = np.concatenate(cohorts)
    decision, report = calibrate_decision(
        sets,
        cohort,
        args.target,
        tuple(args.enrolled),
        tuple(args.clips),
        args.episodes,
        args.seed,
        args.cohort_top_k,
        args.confidence,
        progress=None if args.quiet else print,
    )
    calibration = model.calibration or calibrate_balanced(pairs, "eer", seed=args.seed)[0]
    calibration = dataclasses.replace(calibration, open_set=decision.to_dict())
    target = Path(args.save_to) if args.save_to else folder
    target.mkdir(parents=True, exist_ok=True)
    calibration.save(target / CALIBRATION_FILE)
    if decision.score == "asnorm":
        from keras_spkid.atomic import atomic_path

        with atomic_path(target / COHORT_FILE, ".npy") as tmp:
            np.save(tmp, cohort.astype(np.float32))
    else:
        (target / COHORT_FILE).unlink(missing_ok=True)
    table = markdown_table(
        ["rule", "named right, mean over cells (%)", "strangers named, worst cell (%)"],
        [
            [
                name,
                f"{100 * r['mean_named_right']:.1f}",
                f"{100 * r['max_strangers_named']:.1f}",
            ]
            for name, r in report["candidates"].items()
        ],
    )
    grid = markdown_table(
        ["clips \\ enrolled", *map(str, decision.gallery_sizes)],
        [
            [k, *(f"{t:.4f}" for t in row)]
            for k, row in zip(decision.enrol_counts, decision.thresholds)
        ],
    )
    markdown = (
        f"# Open-set calibration on dev speakers of {', '.join(args.corpora)}\n\n"
        f"Model `{model.path}`; at most {100 * args.target:g}% of strangers named in every "
        f"cell at a {100 * args.confidence:g}% upper confidence bound over resampled dev "
        f"strangers; {args.episodes} episodes per cell and corpus (seed {args.seed}); AS-Norm "
        f"cohort: {len(cohort)} speakers, the corpora's training speakers"
        + (" and a third of the Speech Commands contributors" if args.speech_commands else "")
        + f" (top {args.cohort_top_k}); galleries "
        "larger than a corpus's dev speakers allow are topped up with its training "
        f"speakers.\n\n{table}\n\nChosen: **{report['chosen']}**, thresholds:\n\n{grid}\n\n"
        f"Saved to `{target / CALIBRATION_FILE}`"
        + (f" and `{target / COHORT_FILE}`." if decision.score == "asnorm" else ".")
        + (
            f"\n\nHeld-out Speech Commands contributors (never in the cohort or the "
            f"calibration): `{held_out}`; measure them with `spkid eval openset --embeddings "
            f"{held_out}`."
            if args.speech_commands
            else ""
        )
    )
    print(markdown)
    return _done(write_report(args.out, "calibrate_openset", markdown, report))


def add_eval_parser(sub) -> None:
    """Register ``spkid eval`` and its subcommands on an argparse subparsers object."""
    from keras_spkid.cli.args import (
        nonnegative_int,
        output_file,
        positive_float,
        positive_int,
        rate,
        score,
    )
    from keras_spkid.cli.sources import add_catalogue_args
    from keras_spkid.data.corpora import CORPORA

    parser = sub.add_parser(
        "eval",
        help="evaluate a model: fewshot, verify, identify, knn, trials, table, calibrate, "
        "openset, calibrate-openset",
    )
    commands = parser.add_subparsers(dest="eval_command", required=True, metavar="EVAL")

    p = commands.add_parser("fewshot", help="N-way x K-shot accuracy table with 95%% CIs")
    _model_source(p)
    add_catalogue_args(p, required=False)
    p.add_argument(
        "--ways", type=positive_int, nargs="+", default=[3, 5, 10], help="speakers per episode"
    )
    p.add_argument(
        "--shots", type=positive_int, nargs="+", default=[1, 5], help="support clips per speaker"
    )
    p.add_argument(
        "--queries",
        type=positive_int,
        default=5,
        help="queries per speaker (a cell needs speakers with shots + queries clips)",
    )
    p.add_argument("--episodes", type=positive_int, default=1000, help="episodes per cell")
    p.add_argument(
        "--query",
        nargs="+",
        choices=QUERY_LENGTHS,
        default=["full"],
        help="query length: full utterances or a centre crop of 1, 2 or 3 s",
    )
    p.add_argument(
        "--segment-seconds",
        type=positive_float,
        default=None,
        help="cut each clip into non-overlapping segments of this length, each one "
        "item of its speaker (for one clip per speaker, e.g. librispeech_1utt: 2)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes")
    p.set_defaults(func=cmd_fewshot, crops=0)

    p = commands.add_parser("verify", help="EER / minDCF on a trial list; DET plot; calibration")
    p.add_argument(
        "--trials", required=True, help="trial list: 'label enrol test' lines (veri_test.txt)"
    )
    p.add_argument("--root", help="audio folder the trial paths are relative to")
    p.add_argument("--corpus", help="take --root from this corpus of $SPKID_DATA")
    _model_source(p)
    p.add_argument(
        "--crops",
        type=nonnegative_int,
        default=0,
        help="mean over N fixed 3 s crops (voxceleb_trainer: 10); 0 = full utterances",
    )
    p.add_argument(
        "--test-seconds",
        type=positive_float,
        default=None,
        help="cut test utterances to this many seconds (short-utterance trials)",
    )
    p.add_argument("--cohort", help="embeddings .npz of cohort speakers: adds AS-Norm scores")
    p.add_argument(
        "--cohort-top-k", type=positive_int, default=200, help="AS-Norm: cohort scores kept"
    )
    p.add_argument(
        "--calibrate",
        choices=("eer", "far"),
        help="choose a threshold at the EER point or at --far false accepts",
    )
    p.add_argument("--far", type=rate, default=0.01, help="target false-accept rate")
    p.add_argument(
        "--save-calibration",
        help="where to write calibration.json (default: "
        "<out>/calibration.json; put it next to model.keras to ship it)",
    )
    p.set_defaults(func=cmd_verify)

    for name, func, help_text in (
        ("identify", cmd_identify, "closed-set top-1/top-5/macro accuracy"),
        ("knn", cmd_knn, "scikit-learn KNeighborsClassifier accuracy"),
    ):
        p = commands.add_parser(name, help=help_text)
        _model_source(p)
        add_catalogue_args(p, required=False)
        p.add_argument(
            "--crops", type=nonnegative_int, default=0, help="mean over N 3 s crops; 0 = whole"
        )
        p.add_argument("--enrol-split", help="manifest split to enrol from (e.g. train)")
        p.add_argument("--test-split", help="manifest split to test on (e.g. test)")
        p.add_argument(
            "--test-fraction",
            type=rate,
            default=0.5,
            help="without splits: share of each speaker's recordings tested",
        )
        p.add_argument("--seed", type=int, default=0, help="seeds the recording split")
        if name == "knn":
            p.add_argument("--k", type=positive_int, default=5, help="neighbours")
            p.add_argument(
                "--metric",
                choices=KNN_METRICS,
                default="cosine",
                help="embedding distance",
            )
            p.add_argument(
                "--weights",
                choices=("uniform", "distance"),
                default="uniform",
                help="how neighbours vote",
            )
        p.set_defaults(func=func)

    p = commands.add_parser("trials", help="write a trial list for a labelled corpus")
    add_catalogue_args(p)
    p.add_argument("--output", type=output_file, required=True, help="the trial list to write")
    p.add_argument(
        "--targets-per-speaker", type=positive_int, default=20, help="same-speaker pairs each"
    )
    p.add_argument(
        "--nontargets-per-target", type=positive_int, default=1, help="different-speaker pairs"
    )
    p.add_argument(
        "--same-recording",
        action="store_true",
        help="allow target pairs from one recording (default: cross-recording only)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the pairs")
    p.set_defaults(func=cmd_trials)

    p = commands.add_parser(
        "calibrate",
        help="one threshold for several corpora: all pairs "
        "of their dev speakers, each corpus weighted equally",
    )
    p.add_argument("--model", help="a .keras model (default: the built-in model)")
    p.add_argument(
        "--corpora",
        nargs="+",
        choices=CORPORA,
        default=["wuw_corpus_ii", "librispeech_1utt"],
        help="corpora whose dev speakers calibrate",
    )
    p.add_argument("--split", default="dev", help="speakers to calibrate on (never the test ones)")
    _segment_seconds(p)
    p.add_argument(
        "--calibrate",
        choices=("eer", "far"),
        default="eer",
        help="threshold at the equal-error point or at --far false accepts",
    )
    p.add_argument("--far", type=rate, default=0.01, help="target false-accept rate")
    p.add_argument("--seed", type=int, default=0, help="seeds the balancing subsample")
    p.add_argument("--out", default="runs/calibration", help="folder for the report and embeddings")
    p.add_argument(
        "--save-calibration",
        help="where to write calibration.json (default: "
        "<out>/calibration.json; put it next to model.keras to ship it)",
    )
    p.set_defaults(func=cmd_calibrate)

    p = commands.add_parser(
        "openset",
        help="open-set identification: named right / wrong, missed, strangers named",
    )
    _model_source(p)
    p.add_argument(
        "--corpora", nargs="+", choices=CORPORA, default=list(CORPORA), help="bundled corpora"
    )
    p.add_argument("--split", default="test", help="speakers to measure on")
    p.add_argument(
        "--enrolled", type=positive_int, nargs="+", default=[5, 20], help="people enrolled"
    )
    p.add_argument(
        "--clips", type=positive_int, nargs="+", default=[1, 5], help="clips enrolled per person"
    )
    p.add_argument("--episodes", type=positive_int, default=1000, help="seeded episodes per cell")
    p.add_argument("--queries", type=positive_int, default=2, help="queries per speaker")
    p.add_argument(
        "--stranger-share",
        type=rate,
        default=1 / 3,
        help="least share of a corpus's speakers kept as strangers",
    )
    p.add_argument(
        "--calibration",
        help="calibration.json to evaluate (default: the model's; its cohort.npy beside it)",
    )
    p.add_argument("--threshold", type=score, help="evaluate one cosine threshold instead")
    _segment_seconds(p)
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes")
    p.set_defaults(func=cmd_openset, out="runs/openset")

    p = commands.add_parser(
        "calibrate-openset",
        help="choose the open-set decision on dev speakers at a target rate of "
        "strangers named; writes calibration.json (and cohort.npy) beside the model",
    )
    p.add_argument("--model", help="a model folder or .keras file (default: the built-in model)")
    p.add_argument(
        "--corpora",
        nargs="+",
        choices=CORPORA,
        default=["wuw_corpus_ii", "librispeech_1utt"],
        help="bundled corpora whose dev speakers calibrate",
    )
    p.add_argument("--target", type=rate, default=0.05, help="most strangers named, as a rate")
    p.add_argument(
        "--enrolled",
        type=positive_int,
        nargs="+",
        default=[1, 5, 20, 100],
        help="gallery sizes to calibrate for",
    )
    p.add_argument(
        "--clips", type=positive_int, nargs="+", default=[1, 5], help="clips enrolled per person"
    )
    p.add_argument("--episodes", type=positive_int, default=500, help="episodes per cell")
    p.add_argument(
        "--cohort-top-k", type=positive_int, default=50, help="AS-Norm: top cohort scores"
    )
    p.add_argument(
        "--confidence",
        type=rate,
        default=0.95,
        help="thresholds at this upper confidence bound over resampled dev strangers",
    )
    p.add_argument(
        "--speech-commands",
        help="also calibrate on a Speech Commands folder (contributors on their own "
        "devices): a third of its voices join the AS-Norm cohort, a third calibrate, a "
        "third are held out and written for 'spkid eval openset --embeddings'",
    )
    _segment_seconds(p)
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes")
    p.add_argument("--out", default="runs/calibrate_openset", help="report and embeddings")
    p.add_argument(
        "--save-to", help="folder for calibration.json and cohort.npy (default: the model's)"
    )
    p.set_defaults(func=cmd_calibrate_openset)

    p = commands.add_parser(
        "table",
        help="the accuracy table: a model and the MFCC baseline "
        "on the test speakers (few-shot accuracy, EER, minDCF)",
    )
    p.add_argument("--model", help="a .keras model (default: the built-in model)")
    p.add_argument(
        "--baseline",
        default="mfcc_stats",
        help="what the model is compared with: a .keras model or a baseline name",
    )
    p.add_argument(
        "--out",
        default="runs/accuracy_table",
        help="folder for table.md, table.json, trial lists and embeddings",
    )
    p.add_argument(
        "--corpora",
        nargs="+",
        choices=CORPORA,
        default=list(CORPORA),
        help="test splits for few-shot accuracy (verification: wuw_corpus_ii)",
    )
    p.add_argument(
        "--ways", type=positive_int, nargs="+", default=[5, 10], help="speakers per episode"
    )
    p.add_argument(
        "--shots", type=positive_int, nargs="+", default=[1, 5], help="support clips per speaker"
    )
    p.add_argument("--episodes", type=positive_int, default=1000, help="episodes per cell")
    p.add_argument("--seed", type=int, default=0, help="seeds the episodes")
    p.add_argument(
        "--segment-seconds",
        type=positive_float,
        default=2.0,
        help="librispeech_1utt (one clip per speaker): segment length",
    )
    p.add_argument(
        "--max-speakers",
        type=positive_int,
        default=None,
        help="only the first N test speakers of each corpus (quick checks)",
    )
    p.set_defaults(func=cmd_table)

    for p in commands.choices.values():
        p.add_argument("--quiet", action="store_true", help="no progress bar")
