"""Errors that users see as one clear line, and how a command runs.

Every error raised for bad *input* (a missing file, corrupt audio, a malformed list
line, impossible sampling settings) derives from :class:`SpkidError`. The CLI prints
``str(error)`` on one line and exits with status 2, so messages name the offending
file (and line) and say what to do. :func:`run_command` runs every command: it sets
TensorFlow up before its import (quiet start-up, :func:`quiet_tensorflow`; the kernels
that suit clips of many lengths, :func:`use_inference_kernels`), then turns a
:class:`SpkidError` into that line and exit status.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile


class SpkidError(Exception):
    """Base class for user-facing errors of keras-spkid."""


class AudioError(SpkidError):
    """An audio file cannot be used: missing, unreadable, empty, too short or silent."""

    def __init__(self, path, reason: str, hint: str = ""):
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        message = f"{self.path}: {reason}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class ListFormatError(SpkidError):
    """A line of a list file (manifest, trial list, split file) has the wrong shape."""

    def __init__(self, path, line_number: int, line: str, expected: str):
        self.path = str(path)
        self.line_number = line_number
        self.line = line
        self.expected = expected
        shown = line if len(line) <= 80 else line[:77] + "..."
        super().__init__(
            f"{self.path}:{line_number}: malformed line {shown!r}; expected {expected}"
        )


class DataError(SpkidError):
    """A data set cannot serve what was asked of it (too few speakers, empty catalogue)."""


START_UP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "cpu_feature_guard",
)
"""Parts of the lines TensorFlow writes to stderr while it is imported, whatever
``TF_CPP_MIN_LOG_LEVEL`` says: where oneDNN is on by default (CPUs with AVX-512 VNNI or
BF16, AMX), its notice is logged through absl before absl is initialised, twice."""


def quiet_tensorflow(verbose: bool = False) -> None:
    """Silence TensorFlow's C++ start-up lines (oneDNN, CPU features, ``E0000`` ones)
    unless ``verbose``; must run before TensorFlow is imported. An explicit
    ``TF_CPP_MIN_LOG_LEVEL`` in the environment wins. The lines that level does not
    reach (:data:`START_UP_NOISE`) are dropped from stderr while ``tensorflow`` is
    imported (:class:`QuietTensorFlowImport`); every other line written then is kept."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    if not verbose:
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
        already = any(isinstance(f, QuietTensorFlowImport) for f in sys.meta_path)
        if "tensorflow" not in sys.modules and not already:
            sys.meta_path.insert(0, QuietTensorFlowImport())


def use_inference_kernels() -> None:
    """Run TensorFlow's own CPU kernels, not oneDNN's, in a process that embeds clips of
    many lengths (every command but training); must run before TensorFlow is imported.
    An explicit ``TF_ENABLE_ONEDNN_OPTS`` in the environment wins.

    TensorFlow turns oneDNN on by default on CPUs with AVX-512 VNNI or BF16 or AMX, and
    caches oneDNN kernels for every input shape it meets (up to 1,024 per kind and
    thread). Embedding clips one by one meets a new shape with nearly every clip (one per
    2% of length, :data:`keras_spkid.inference.embedder.LENGTH_GRID_RATIO`): on such a
    CPU, 53 clips of distinct lengths (1-8 s, CAM++, one thread) took 3.2-3.3 s and
    1,262-1,269 MiB with oneDNN, 2.6 s and 956-959 MiB without, while clips of lengths
    already met ran 15% faster with it (``bench/RESULTS.md``, section ``campplus``).
    Training (fixed shapes: conv6 steps 2.1x faster with oneDNN) keeps TensorFlow's
    default."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Import hook: the first import of ``tensorflow`` runs with the process's stderr
    (file descriptor 2, where C++ writes) captured, then writes back every captured line
    but :data:`START_UP_NOISE`. Removes itself once used."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with filtered_stderr(START_UP_NOISE):
                exec_module(module)

        spec.loader.exec_module = quiet_exec_module
        return spec


@contextlib.contextmanager
def filtered_stderr(noise):
    """Capture file descriptor 2 for the block; afterwards write back, to ``sys.stderr``,
    every captured line that contains none of ``noise`` (exceptions still propagate)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to capture
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not any(n in line for n in noise))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def run_command(fn, *args, verbose: bool = False, training: bool = False) -> int:
    """Run ``fn(*args)`` as a command; return its exit status.

    TensorFlow is set up before it is imported: quiet (:func:`quiet_tensorflow`), and,
    unless the command ``training``, with the kernels that suit clips of many lengths
    (:func:`use_inference_kernels`). A :class:`SpkidError` (bad input, impossible
    settings) prints ``error: <message>`` on one line and returns 2; Ctrl-C returns 130
    with a reminder that work is kept (caches and checkpoints are written atomically, so
    the same command resumes).
    """
    quiet_tensorflow(verbose)
    if not training:
        use_inference_kernels()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    if not verbose:  # their INFO lines (SavedModel assets, tf2onnx's optimiser) are noise here
        for name in ("tensorflow", "tf2onnx"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return fn(*args)
    except SpkidError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, run the same command to resume", file=sys.stderr)
        return 130
