"""Training progress on the console: Keras' bar on a terminal, plain lines in a log file.

Keras' ``Progbar`` redraws one line with ``\\r`` and colour codes, which fills a log file
(``train_protonet.py ... > log.txt``) with escape sequences. :func:`progress_bar` keeps
it on a terminal and prints plain ``step 10/5000 - loss: 1.2345`` lines otherwise.
"""

from __future__ import annotations

import sys
import time


class PlainProgress:
    """``update(step, [(name, value), ...])`` as one plain line per call."""

    def __init__(self, target: int, verbose: bool = True, stream=None):
        self.target = target
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.start = time.monotonic()

    def update(self, current: int, values=()) -> None:
        if not self.verbose:
            return
        elapsed = time.monotonic() - self.start
        metrics = "".join(f" - {name}: {float(value):.4f}" for name, value in values)
        print(f"step {current}/{self.target} ({elapsed:.0f} s){metrics}", file=self.stream)
        self.stream.flush()


def progress_bar(target: int, verbose: bool = True):
    """Keras' ``Progbar`` when stdout is a terminal, else :class:`PlainProgress`."""
    if sys.stdout.isatty():
        import keras

        return keras.utils.Progbar(target, verbose=1 if verbose else 0, unit_name="step")
    return PlainProgress(target, verbose)
