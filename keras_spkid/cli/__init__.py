"""The command-line entry points: ``spkid``, the trainers, ``extract_embeds.py``,
``closest_celeb.py`` and the demo.

This package is imported before any of them loads tqdm, which reads its ``TQDM_*``
defaults once, at import. When stderr is not a terminal (a log file), progress bars are
redrawn at most every 30 s instead of many times a second, in ASCII, and each redraw is a
plain line: the carriage returns a bar redraws with become line ends (:class:`LogLines`).
"""

import os
import sys


class LogLines:
    """A text stream for a log file: a carriage return starts a new line instead.

    tqdm redraws its bar as ``"\\r" + bar``; in a file that leaves one ever-growing line
    of overwritten text. Written through this, every redraw is its own line (a ``"\\r"``
    at the start of a line is dropped, so no blank lines appear). Everything else
    (``fileno``, ``isatty``, ``encoding`` ...) is the wrapped stream's.
    """

    def __init__(self, stream):
        self._stream = stream
        self._line_start = True

    def write(self, text: str) -> int:
        pieces = text.replace("\r\n", "\n").split("\r")
        out = pieces[0]
        for piece in pieces[1:]:
            if not (out.endswith("\n") or (not out and self._line_start)):
                out += "\n"
            out += piece
        if out:
            self._line_start = out.endswith("\n")
            self._stream.write(out)
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
    os.environ.setdefault("TQDM_MININTERVAL", "30")
    os.environ.setdefault("TQDM_ASCII", " 123456789#")  # tqdm's ASCII bar, not block glyphs
    if not isinstance(sys.stderr, LogLines):
        sys.stderr = LogLines(sys.stderr)
