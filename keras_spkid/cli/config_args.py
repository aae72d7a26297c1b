"""Command-line flags generated from a run's config dataclass (one source of truth).

Every field becomes ``--<field>`` with the field's type and default: booleans are
switches (``--mixed_precision``), tuples take one or more values
(``--train_corpora wuw_corpus_ii librispeech_1utt``), ``int | None`` fields take an int.
The parsed config is what gets saved next to the checkpoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing


def _field_type(field, hints):
    hint = hints[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return "tuple", args[0]
    if args:  # Optional[X] / X | None
        return "optional", args[0]
    return "plain", hint


def add_config_args(parser: argparse.ArgumentParser, config_cls, help_texts=None) -> None:
    """Add a ``--field`` flag for every field of ``config_cls``."""
    help_texts = help_texts or {}
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        kind, kind_type = _field_type(field, hints)
        default = field.default
        text = help_texts.get(field.name, "")
        flag = f"--{field.name}"
        if kind_type is bool:
            parser.add_argument(flag, action="store_true", help=text or "switch")
        elif kind == "tuple":
            parser.add_argument(
                flag,
                nargs="+",
                type=kind_type,
                default=list(default),
                help=f"{text} (default: {' '.join(map(str, default))})",
            )
        else:
            parser.add_argument(
                flag, type=kind_type, default=default, help=f"{text} (default: {default})".strip()
            )


def config_from_args(args: argparse.Namespace, config_cls):
    """The ``config_cls`` instance that the parsed flags describe."""
    values = {}
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        value = getattr(args, field.name)
        if _field_type(field, hints)[0] == "tuple":
            value = tuple(value)
        values[field.name] = value
    return config_cls(**values)
