"""Dashboards in subprocesses (``python app.py``), as a user runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # answering, even if unhealthy
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class AppProcess:
    """``python app.py`` in a subprocess, as a user runs it."""

    def __init__(self, tmp_path: Path, name: str, port: int | None = None, **env: str):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        environ = dict(os.environ, MLOPS_PORT=str(self.port), MLOPS_DATA_DIR=str(tmp_path / name), **env)
        self.log = open(tmp_path / f"{name}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environ, stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(self.url + "/api/v1/health")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
