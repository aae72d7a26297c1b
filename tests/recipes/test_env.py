"""recipes/env.sh: recipes run in the active environment, .venv only as the fallback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _resolve(repo, path_dirs, **env):
    script = f'repo={repo}; source {REPO / "recipes" / "env.sh"}; echo "$py"; echo "$spkid"'
    result = subprocess.run(
        [shutil.which("bash"), "-c", script],
        capture_output=True,
        text=True,
        cwd=repo,
        env={"PATH": ":".join(map(str, path_dirs)), "HOME": str(repo), **env},
    )
    return result


def _active_python(folder: Path) -> Path:
    """A ``python`` on PATH that is an environment with keras_spkid (like a conda env)."""
    folder.mkdir()
    python = folder / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return python


def test_the_active_environment_comes_first(tmp_path):
    python = _active_python(tmp_path / "env_bin")
    result = _resolve(REPO, [python.parent, "/usr/bin", "/bin"])
    assert result.returncode == 0, result.stderr
    py, spkid = result.stdout.splitlines()
    assert py == str(python) and spkid == f"{python} -m keras_spkid.cli.main"
    forced = _resolve(REPO, [python.parent, "/usr/bin", "/bin"], SPKID_PYTHON="/x/python")
    assert forced.stdout.splitlines()[0] == "/x/python"


def test_dot_venv_is_the_fallback_and_nothing_is_one_line(tmp_path):
    if not (REPO / ".venv" / "bin" / "python").exists():
        return  # installed without a .venv: the case above is the one that matters
    result = _resolve(REPO, ["/usr/bin", "/bin"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{REPO}/.venv/bin/python"
    empty = tmp_path / "checkout"
    empty.mkdir()
    result = _resolve(empty, [tmp_path / "nothing"])
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr.startswith("error: no Python environment") and "SPKID_PYTHON" in result.stderr
    )
