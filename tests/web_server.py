"""A real ``facetrack serve`` in a subprocess on a free localhost port, for the web tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def models_env(shared_models: Path) -> dict:
    return dict(os.environ, FACETRACK_MODELS_DIR=str(shared_models))


def serve_command(*args) -> list:
    return [sys.executable, "-m", "facetrack.serve", *map(str, args)]


class Server:
    """``python -m facetrack.serve ARGS --port <free>``, waited for until it listens; stopped with SIGINT."""

    def __init__(self, *args, env=None, log: Path, ready_seconds: float = 180.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(log)
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen(serve_command(*args, "--port", self.port), cwd=REPO, env=env,
                                     stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_seconds
        while not listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"facetrack serve did not start:\n{self.log.read_text()}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
