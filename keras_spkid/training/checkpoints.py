"""Checkpoints that resume exactly: every model and optimizer variable, plus loop state.

A checkpoint is a folder ``<log_dir>/checkpoints/step-<NNNNNNNN>/`` holding
``model.npz`` (every variable of the training task, including non-trainable ones such
as batch-norm statistics and random-generator states), ``optimizer.npz`` (iteration
count, learning rate, moment estimates, loss scale) and ``state.json`` (step, best
validation score, anything else the loop needs). It is written into a temporary folder
and renamed, so a kill while saving never leaves a half checkpoint that looks complete.
Variable counts and shapes are checked on restore, so a checkpoint from another model
configuration is refused with a clear message instead of silently misloading.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np

from keras_spkid.atomic import PART_SUFFIX, atomic_path, remove
from keras_spkid.errors import SpkidError

_STEP_DIR = re.compile(r"step-(\d{8})")


def _save_variables(path: Path, variables) -> None:
    arrays = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(variables)}
    arrays["paths"] = np.asarray([v.path for v in variables])
    np.savez(path, **arrays)


def _restore_variables(path: Path, variables, what: str) -> None:
    """Assign saved arrays in order; counts and shapes must match (names may differ,
    since Keras numbers auto-named layers per process)."""
    with np.load(path) as saved:
        paths = list(saved["paths"])
        arrays = [saved[f"v{i:05d}"] for i in range(len(paths))]
    mismatch = len(arrays) != len(variables) or any(
        tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)
    )
    if mismatch:
        raise SpkidError(
            f"{path}: the {what} in this checkpoint ({len(arrays)} variables) does not "
            f"match the one being trained ({len(variables)}); use another --log_dir or "
            "the configuration the checkpoint was made with"
        )
    for array, variable in zip(arrays, variables):
        variable.assign(array)


class CheckpointManager:
    """Saves and restores numbered checkpoints in ``directory``, keeping the last few.

    Args:
        directory: folder of the ``step-*`` checkpoints.
        keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, directory, keep: int = 3):
        self.directory = Path(directory)
        self.keep = keep

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            int(m.group(1))
            for p in self.directory.iterdir()
            if (m := _STEP_DIR.fullmatch(p.name)) and (p / "state.json").is_file()
        )

    def path(self, step: int) -> Path:
        return self.directory / f"step-{step:08d}"

    def save(self, step: int, model, optimizer, state: dict) -> Path:
        """Write checkpoint ``step`` atomically and prune old ones."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path(step)
        with atomic_path(final) as tmp:
            remove(tmp)
            tmp.mkdir()
            _save_variables(tmp / "model.npz", model.variables)
            _save_variables(tmp / "optimizer.npz", optimizer.variables)
            (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=1))
            remove(final)
        for old in self.steps()[: -self.keep]:
            shutil.rmtree(self.path(old), ignore_errors=True)
        return final

    def restore_latest(self, model, optimizer) -> dict | None:
        """Load the newest checkpoint into ``model`` and ``optimizer``; its state or None.

        The optimizer must already be built for the model's trainable variables.
        """
        if self.directory.is_dir():
            for leftover in self.directory.glob(f"step-*{PART_SUFFIX}"):
                remove(leftover)
        steps = self.steps()
        if not steps:
            return None
        path = self.path(steps[-1])
        _restore_variables(path / "model.npz", model.variables, "model")
        _restore_variables(path / "optimizer.npz", optimizer.variables, "optimizer")
        return json.loads((path / "state.json").read_text())
