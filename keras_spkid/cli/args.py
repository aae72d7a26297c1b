"""One flag style for every command: the parser class, value types and the help format.

Every command builds its parser with :func:`new_parser` (subcommands made with
``add_subparsers`` inherit it), so all commands share these rules:

* Flags are spelled with hyphens (``--num-way``, ``--n-mels``). The underscore spelling
  of any flag (``--num_way``, the reference systems' style) is accepted as well; it is
  not listed in ``--help``. Other names for the same flag (a reference system's own
  name, such as CS330's ``--num_iterations``) are extra option strings and are listed.
* Every flag has a help text, and ``--help`` shows its default.
* ``--out`` is always a folder (reports, exports, downloads); ``--output`` is always one
  file (a gallery, a trial list, a manifest). Folder flags also accept ``--output``.
* Numbers are checked when parsed: ``type=positive_int`` and friends below turn a bad
  value into one line naming the flag, exit status 2.
* Argument errors are one line: ``error: argument --top-k: must be >= 1 (got 0) (see
  'PROG --help')``, exit status 2.
* Booleans taken from other systems as ``--use_GC True`` use :func:`boolean`.

Nothing here imports TensorFlow: ``--help`` of every command stays fast.

Adding a subcommand (``spkid convert``, ``spkid eval openset``): in its module write
``add_<name>_parser(sub)`` calling ``sub.add_parser(name, help=...)``; spell flags with
hyphens, give each a help text, take value types from here (``positive_int``, ``rate``,
``score``, ``existing_file``, ``output_file``...) and corpus / front-end / cache flags
from :mod:`keras_spkid.cli.sources`; import heavy modules (TensorFlow, models) inside
the command's function, not at module level; register it in
``keras_spkid.cli.main.build_parser``. ``tests/cli/test_flags.py`` then checks its help,
defaults and spelling like every other command's, and README's commands are parsed by
``tests/test_readme.py``. Never import ``keras_spkid.cli.main`` from another CLI module.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help with each flag's default, and its aliases after the first spelling."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or isinstance(action, argparse._HelpAction)
        ):
            return text
        if isinstance(default, (list, tuple)):
            default = " ".join(map(str, default))
        return f"{text} (default: {default})".replace("%", "%%")

    def _format_action_invocation(self, action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        first, *others = action.option_strings
        text = f"{first} {metavar}"
        return text + (f" (also {', '.join(others)})" if others else "")


class SpkidParser(argparse.ArgumentParser):
    """``ArgumentParser`` that accepts ``--a_b`` for ``--a-b`` and errors in one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self._normalise(args), namespace)

    def _normalise(self, args: list[str]) -> list[str]:
        """Rewrite ``--a_b[=v]`` (also ``--use_GC``) into the spelling this parser defines."""
        known = self._option_string_actions
        spellings = {
            name.replace("_", "-").lower(): name for name in known if name.startswith("--")
        }
        out = []
        for position, token in enumerate(args):
            if token == "--":
                return out + args[position:]
            if token.startswith("--") and token not in known:
                name, equals, value = token.partition("=")
                if name not in known:
                    spelled = spellings.get(name.replace("_", "-").lower())
                    if spelled:
                        token = spelled + equals + value
            out.append(token)
        return out

    def error(self, message: str):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def new_parser(prog=None, description=None, **kwargs) -> SpkidParser:
    """The parser of a command; ``description`` may be a module docstring (first line used)."""
    if description and "\n" in description.strip():
        description = description.strip().split("\n")[0]
    return SpkidParser(prog=prog, description=description, **kwargs)


# ----------------------------------------------------------------------- value types
def _number(text: str, kind):
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    return value


def int_range(low: int | None = None, high: int | None = None):
    """An int type that accepts ``low <= value <= high`` (either bound may be None)."""

    def parse(text: str) -> int:
        value = _number(text, int)
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low} (got {value})")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high} (got {value})")
        return value

    parse.__name__ = "int"
    return parse


positive_int = int_range(1)
nonnegative_int = int_range(0)


def finite_float(text: str) -> float:
    """Any finite number (``nan`` and ``inf`` are refused)."""
    return _number(text, float)


def positive_float(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {value:g})")
    return value


def nonnegative_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value:g})")
    return value


def rate(text: str) -> float:
    """A proportion strictly between 0 and 1."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {value:g})")
    return value


def score(text: str) -> float:
    """A cosine-score threshold, in [-1, 1]."""
    value = _number(text, float)
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a cosine score in [-1, 1] (got {value:g})")
    return value


port = int_range(1, 65535)
"""A TCP port number."""

N_MELS_MAX = 512
n_mels = int_range(1, N_MELS_MAX)
"""Mel bands: at most 512 (a 512-point FFT has 257 frequency bins)."""

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def boolean(text: str) -> bool:
    """``True``/``False`` (also yes/no, 1/0, on/off), as in ``--use_GC True``."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def add_switch(parser, *names: str, help: str) -> None:
    """A switch that also takes an explicit value: ``--x``, ``--x True``, ``--x False``."""
    parser.add_argument(
        *names, nargs="?", const=True, default=False, type=boolean, metavar="BOOL", help=help
    )


def output_file(text: str) -> str:
    """A file to write. A missing folder is created by the command; the path must not be
    a folder, and its nearest existing ancestor must be a writable folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create a folder under {ancestor}: it is a file")
    if not os.access(ancestor, os.W_OK):
        raise argparse.ArgumentTypeError(f"folder {ancestor} is not writable")
    return text


def existing_file(text: str) -> str:
    path = Path(text).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise argparse.ArgumentTypeError(f"{text}: {what}")
    return text


def existing_folder(text: str) -> str:
    path = Path(text).expanduser()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "not found"
        raise argparse.ArgumentTypeError(f"{text}: {what}")
    return text
