"""Run ``apps/gradio_demo.py`` as users do, on a free port of 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoServer:
    """The demo in its own process: ``start()``, ``stop()``, ``url``; a context manager.

    Args:
        gallery: the ``--gallery`` file.
        log: where the server's output goes (shown when it fails to start).
    """

    def __init__(self, gallery: Path, log: Path, *extra: str):
        self.gallery, self.log, self.extra = gallery, log, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None

    def start(self) -> Self:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", GRADIO_ANALYTICS_ENABLED="False")
        command = [
            sys.executable,
            str(REPO / "apps" / "gradio_demo.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--gallery",
            str(self.gallery),
            *self.extra,
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"demo exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"demo not serving {self.url} after {START_TIMEOUT:.0f} s:\n{self.tail()}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
