"""Accuracy of the built-in default model against the MFCC-statistics baseline.

Runs ``spkid eval table`` (:func:`keras_spkid.evaluation.table.accuracy_table`) on the
test splits of ``../shared/data``, both models in the same run on the same episodes and
trials, and records the table. It measures accuracy, not speed: the baseline comparison
is a paired difference (points) instead of a time ratio. About 1-2 minutes on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import _common  # first: it quiets TensorFlow's start-up logging

from keras_spkid.evaluation.report import write_report
from keras_spkid.evaluation.table import accuracy_table, table_markdown
from keras_spkid.inference.model_io import load_embedding_model


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument("--model", default=None, help="a .keras model (default: the built-in)")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--out", default="runs/accuracy_table")
    args = parser.parse_args(argv)
    env = _common.environment()
    models = {
        "model": load_embedding_model(args.model),
        "baseline": load_embedding_model("mfcc_stats"),
    }
    data = accuracy_table(
        models, args.out, episodes=args.episodes, seed=args.seed, command=_common.command_line()
    )
    markdown = table_markdown(data)
    write_report(args.out, "table", markdown, data)
    # The report's own title and provenance lines are replaced by the section's.
    body = markdown.split("\n## ", 1)[1]
    body = "### " + body.replace("\n## ", "\n### ")
    ours, baseline = data["models"]["model"], data["models"]["baseline"]
    intro = (
        f"Model `{ours['path']}` (sha256 {ours['sha256']}, {ours['dim']}-dim) vs "
        f"`mfcc_stats` (MFCC statistics, {baseline['dim']}-dim), test speakers only; "
        f"wall time {data['wall_seconds']} s; the same table is in `{args.out}/table.md`."
    )
    _common.finish(
        args,
        f"accuracy_{Path(ours['path']).parent.name}",
        "Accuracy vs MFCC-statistics baseline (`bench/bench_accuracy.py`)",
        env,
        intro + "\n\n" + body,
    )


if __name__ == "__main__":
    main()
