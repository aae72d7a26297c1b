"""Command-line flags generated from a run's config dataclass (one source of truth).

Every field becomes ``--<field>`` with the field's type and default: booleans are
switches (``--mixed_precision``), tuples take one or more values
(``--train_corpora wuw_corpus_ii librispeech_1utt``), ``int | None`` fields take an int.
The parsed config is what gets saved next to the checkpoints, and ``--config
config.json`` (:func:`config_defaults`) starts a run from a saved one: its values replace
the defaults, flags given on the command line override them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path

from keras_spkid.errors import SpkidError


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


def _valid(value, kind: str, kind_type) -> bool:
    if value is None:
        return kind == "optional"
    if kind == "tuple":
        return isinstance(value, list) and all(_valid(v, "plain", kind_type) for v in value)
    if kind_type is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind_type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind_type)


def config_defaults(path, config_cls) -> dict:
    """The settings in a run's ``config.json``, checked against ``config_cls``'s fields.

    Raises:
        SpkidError: the file is unreadable or not a JSON object, or a key is not a field
            of ``config_cls`` or has a value of the wrong type.
    """
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SpkidError(f"--config {path}: cannot read it as JSON ({error})") from None
    if not isinstance(values, dict):
        raise SpkidError(f"--config {path}: expected a JSON object of settings")
    hints = typing.get_type_hints(config_cls)
    fields = {field.name: field for field in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SpkidError(
            f"--config {path}: {', '.join(unknown)} not a setting of this trainer "
            "(see --help for its flags)"
        )
    for name, value in values.items():
        if not _valid(value, *_field_type(fields[name], hints)):
            raise SpkidError(f"--config {path}: {name} = {value!r} has the wrong type")
    return values
