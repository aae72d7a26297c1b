"""Command-line flags generated from a run's config dataclass (one source of truth).

Every field ``num_way`` becomes ``--num-way`` (``--num_way`` is accepted too, see
:mod:`keras_spkid.cli.args`) with the field's type and default: booleans are switches
that also take ``True``/``False`` (``--mixed-precision``, ``--spec_augment True``),
tuples take one or more values (``--train-corpora wuw_corpus_ii librispeech_1utt``),
``int | None`` fields take an int. The parsed config is what gets saved next to the
checkpoints, and ``--config config.json`` (:func:`config_defaults`) starts a run from a
saved one: its values replace the defaults, flags given on the command line override them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path

from keras_spkid.cli.args import add_switch, finite_float, n_mels
from keras_spkid.errors import SpkidError


def _field_type(field, hints):
    hint = hints[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return "tuple", args[0]
    if args:  # Optional[X] / X | None
        return "optional", args[0]
    return "plain", hint


TYPES = {"n_mels": n_mels}
"""Value types of fields that need more than their annotation (bounds)."""


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_config_args(
    parser: argparse.ArgumentParser, config_cls, help_texts=None, aliases=None
) -> None:
    """Add a ``--field`` flag for every field of ``config_cls``.

    Args:
        help_texts: ``{field: help}``; a field without one gets a generic text.
        aliases: ``{field: [other flag names]}``, e.g. a reference system's spelling.
    """
    help_texts = help_texts or {}
    aliases = aliases or {}
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        kind, kind_type = _field_type(field, hints)
        names = [flag_name(field.name), *aliases.get(field.name, ())]
        text = help_texts.get(field.name) or field.name.replace("_", " ")
        if kind_type is bool:
            add_switch(parser, *names, help=text)
            continue
        value_type = TYPES.get(field.name, finite_float if kind_type is float else kind_type)
        if kind == "tuple":
            parser.add_argument(
                *names, dest=field.name, nargs="+", type=value_type,
                default=list(field.default), help=text,
            )  # fmt: skip
        else:
            parser.add_argument(
                *names, dest=field.name, type=value_type, default=field.default, help=text
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
