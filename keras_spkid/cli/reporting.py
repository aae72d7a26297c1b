"""How every keras-spkid command starts and ends: :func:`keras_spkid.errors.run_command`.

It lives in :mod:`keras_spkid.errors` so that entry points outside the CLI (the demo,
``python -m keras_spkid.app.default_gallery``) share it without importing ``cli``.
"""

from __future__ import annotations

from keras_spkid.errors import quiet_tensorflow, run_command

__all__ = ["quiet_tensorflow", "run_command"]
