"""The command-line entry points: ``spkid``, the trainers, ``extract_embeds.py``,
``closest_celeb.py`` and the demo.

This package is imported before any of them loads tqdm, which reads its ``TQDM_*``
defaults once, at import: when stderr is not a terminal (a log file), progress bars are
redrawn at most every 30 s instead of many times a second.
"""

import os
import sys

if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
    os.environ.setdefault("TQDM_MININTERVAL", "30")
