"""How every keras-spkid command ends: logging set up, bad input as one line, exit codes."""

from __future__ import annotations

import logging
import sys

from keras_spkid.errors import SpkidError


def run_command(fn, *args, verbose: bool = False) -> int:
    """Run ``fn(*args)`` as a command; return its exit status.

    A :class:`SpkidError` (bad input, impossible settings) prints ``error: <message>``
    on one line and returns 2; Ctrl-C returns 130 with a reminder that work is kept
    (caches and checkpoints are written atomically, so the same command resumes).
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    try:
        return fn(*args)
    except SpkidError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, run the same command to resume", file=sys.stderr)
        return 130
