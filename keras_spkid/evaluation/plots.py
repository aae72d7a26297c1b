"""Plots of evaluation results (matplotlib, no display needed)."""

from __future__ import annotations

import numpy as np


def _figure(width=5.0, height=4.0):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot(1, 1, 1)


def det_figure(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], eers: dict[str, float] | None = None
):
    """DET curves: miss vs false-alarm rate on normal-deviate (probit) axes.

    Args:
        curves: label -> ``(false_alarm, miss)`` rates in [0, 1].
        eers: label -> EER, marked on its curve.
    """
    from scipy.stats import norm

    figure, ax = _figure()
    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    clip = (1e-4, 1 - 1e-4)
    for label, (fa, miss) in curves.items():
        ax.plot(norm.ppf(np.clip(fa, *clip)), norm.ppf(np.clip(miss, *clip)), label=label)
        if eers and label in eers:
            x = norm.ppf(np.clip(eers[label], *clip))
            ax.plot([x], [x], "o", color="black", markersize=4)
    ax.plot(norm.ppf(ticks[[0, -1]]), norm.ppf(ticks[[0, -1]]), ":", color="gray", linewidth=0.8)
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(ticks[[0, -1]]))
    ax.set_ylim(norm.ppf(ticks[[0, -1]]))
    ax.set_xlabel("false alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title("DET curve")
    ax.grid(True, linewidth=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return figure


def fewshot_figure(rows: list[dict]):
    """Accuracy (with 95% CI bars) against shots, one line per way and query length."""
    figure, ax = _figure()
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("mean") is not None:
            groups.setdefault(f"{row['way']}-way, query {row['query']}", []).append(row)
    for label, items in groups.items():
        items.sort(key=lambda r: r["shot"])
        ax.errorbar(
            [r["shot"] for r in items],
            [100 * r["mean"] for r in items],
            yerr=[100 * r["ci95"] for r in items],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xlabel("shots (enrolment clips per speaker)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("N-way K-shot identification")
    ax.grid(True, linewidth=0.3)
    if groups:
        ax.legend(fontsize=7)
    return figure


def openset_figure(curves: dict):
    """Named right against strangers named as the threshold moves, one line per cell.

    Args:
        curves: label -> ``(curve, strangers_named, named_right)``: a
            :func:`~keras_spkid.evaluation.openset.threshold_curve` and the operating
            point of the decision (rates in [0, 1]), marked on the line.
    """
    figure, ax = _figure(6.0, 4.5)
    for label, (curve, far, right) in curves.items():
        (line,) = ax.plot(
            100 * curve["strangers_named"], 100 * curve["named_right"], label=label, linewidth=1
        )
        if far is not None and right is not None:
            ax.plot([100 * far], [100 * right], "o", color=line.get_color(), markersize=5)
    ax.axvline(5, color="gray", linestyle=":", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("strangers named (%)")
    ax.set_ylabel("enrolled speakers named right (%)")
    ax.set_title("Open-set identification (dots: the decision made)")
    ax.grid(True, linewidth=0.3)
    if curves:
        ax.legend(fontsize=6, loc="lower right")
    return figure
