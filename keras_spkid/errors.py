"""Errors that users see as one clear line.

Every error raised for bad *input* (a missing file, corrupt audio, a malformed list
line, impossible sampling settings) derives from :class:`SpkidError`. The CLI prints
``str(error)`` on one line and exits with status 2, so messages name the offending
file (and line) and say what to do.
"""

from __future__ import annotations


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
