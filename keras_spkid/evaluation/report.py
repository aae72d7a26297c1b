"""Evaluation results on disk: Markdown to read, JSON to compare, PNG to look at.

Every ``spkid eval`` command writes ``<out>/<name>.md`` and ``<out>/<name>.json`` (and
``<out>/<name>.png`` when a plot says it better), each atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from keras_spkid.atomic import atomic_path


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path, path.suffix) as tmp:  # matplotlib infers the format from it
        write(tmp)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(out_dir, name: str, markdown: str, data: dict, figure=None) -> list[Path]:
    """Write the report files; returns their paths. ``figure``: a matplotlib Figure."""
    out_dir = Path(out_dir)
    written = []
    path = out_dir / f"{name}.md"
    _atomic_write(path, lambda tmp: tmp.write_text(markdown.rstrip() + "\n", encoding="utf-8"))
    written.append(path)
    path = out_dir / f"{name}.json"
    _atomic_write(
        path,
        lambda tmp: tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=_jsonable)),
    )
    written.append(path)
    if figure is not None:
        path = out_dir / f"{name}.png"
        _atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=120, bbox_inches="tight"))
        written.append(path)
    return written


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
