"""The documented multi-worker deployment: gunicorn gthread workers sharing one Redis log."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.integration.test_api import call
from tests.integration.wsclient import Client
from tests.processes import ROOT, free_port, wait_http

pytestmark = pytest.mark.redis


@contextlib.contextmanager
def start_gunicorn(tmp_path: Path, workers: int = 2, **env: str):
    """The documented deployment: ``workers`` gthread workers of ``app:server`` on a free port."""
    port = free_port()
    environ = dict(os.environ, MLOPS_DATA_DIR=str(tmp_path), **env)
    log = open(tmp_path / "gunicorn.log", "w")
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--no-control-socket", "-w", str(workers), "-k", "gthread", "--threads", "20",
        "--graceful-timeout", "2", "-b", f"127.0.0.1:{port}", "app:server",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health", timeout=30)

        class Server:
            url = f"http://127.0.0.1:{port}"
            ws_url = f"ws://127.0.0.1:{port}/ws"
            pid = proc.pid

        yield Server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def gunicorn(tmp_path: Path, redis_url: str):
    with start_gunicorn(tmp_path, MLOPS_EVENT_LOG=redis_url, MLOPS_STATS_INTERVAL_S="0.25") as server:
        yield server


def health(i: int) -> dict:
    return {"type": "health_change", "data": {"component": f"c{i}", "status": "healthy", "message": "", "overall": "healthy"}}


def test_every_client_of_every_worker_gets_every_event(gunicorn):
    clients = [Client(gunicorn.ws_url) for _ in range(6)]
    published = []
    for i in range(20):  # requests land on either worker
        status, event = call(gunicorn, "POST", "/api/v1/events", health(i))
        assert status == 201
        published.append(event["seq"])
    for client in clients:
        seen: list[int] = []
        deadline = time.monotonic() + 20
        while not set(published) <= set(seen) and time.monotonic() < deadline:
            frame = client.recv(timeout=10)
            if frame["kind"] == "events":
                seen += [e["seq"] for e in frame["events"]]
        assert set(published) <= set(seen)
        assert seen == sorted(seen) and len(seen) == len(set(seen))
        client.close()


def test_health_and_snapshot_answer_on_any_worker(gunicorn):
    # The lease holder's samples reach every worker's snapshot (requests land on either worker).
    assert wait_until(lambda: all(call(gunicorn, "GET", "/api/v1/snapshot")[1]["samples"] for _ in range(4)), timeout=30)
    for _ in range(6):
        status, body = call(gunicorn, "GET", "/api/v1/health")
        assert status == 200 and body["components"]["event_log"]["status"] == "healthy"
        status, snap = call(gunicorn, "GET", "/api/v1/snapshot")
        assert status == 200 and snap["samples"], "a worker has no samples in its snapshot"
