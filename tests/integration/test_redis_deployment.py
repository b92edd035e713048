"""Several processes on one Redis log, and Redis going away and coming back."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import time

import pytest

from tests.conftest import need
from tests.integration.test_api import call
from tests.integration.wsclient import Client
from tests.processes import AppProcess, free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def processes(tmp_path):
    started: list[AppProcess] = []

    def start(name: str, **env: str) -> AppProcess:
        proc = AppProcess(tmp_path, name, **env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def health(i: int) -> dict:
    return {"type": "health_change", "data": {"component": f"c{i}", "status": "healthy", "message": "", "overall": "healthy"}}


def test_event_published_in_one_process_reaches_a_client_of_the_other(processes, redis_url):
    a = processes("a", MLOPS_EVENT_LOG=redis_url, MLOPS_BACKGROUND="false")
    b = processes("b", MLOPS_EVENT_LOG=redis_url, MLOPS_BACKGROUND="false")
    client_b = Client(b.ws_url)
    status, event = call(a, "POST", "/api/v1/events", health(1))
    assert status == 201
    received = client_b.events(1)
    assert received[0]["seq"] == event["seq"] and received[0]["epoch"] == event["epoch"]
    client_b.close()


def test_client_moving_to_another_process_resumes_without_gap(processes, redis_url):
    a = processes("a", MLOPS_EVENT_LOG=redis_url, MLOPS_BACKGROUND="false")
    b = processes("b", MLOPS_EVENT_LOG=redis_url, MLOPS_BACKGROUND="false")
    client = Client(a.ws_url)
    for i in range(5):
        call(a, "POST", "/api/v1/events", health(i))
    seen = client.events(5)
    client.close()
    for i in range(5, 12):  # published on b while the client is between processes
        call(b, "POST", "/api/v1/events", health(i))
    moved = Client(b.ws_url, after=seen[-1]["seq"], epoch=seen[-1]["epoch"])
    rest = moved.events(7)
    assert [e["seq"] for e in seen + rest] == list(range(1, 13))
    assert [e["data"]["component"] for e in rest] == [f"c{i}" for i in range(5, 12)]
    moved.close()


def test_only_one_process_samples_system_stats(processes, redis_url):
    env = {"MLOPS_EVENT_LOG": redis_url, "MLOPS_STATS_INTERVAL_S": "0.2"}
    a = processes("a", **env)
    processes("b", **env)
    client = Client(a.ws_url)
    time.sleep(0.5)
    started = time.monotonic()
    stats = []
    while time.monotonic() - started < 3.0:
        frame = client.recv(timeout=5)
        if frame["kind"] == "events":
            stats += [e for e in frame["events"] if e["type"] == "system_stats"]
    elapsed = time.monotonic() - started
    # Two samplers would publish about twice the samples; the lease lets exactly one do it.
    assert 0.5 * elapsed / 0.2 <= len(stats) <= 1.3 * elapsed / 0.2 + 1, len(stats)
    client.close()


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own, so it can be stopped and started again."""
    need(shutil.which("redis-server") is not None, "redis-server not installed")
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    procs = []

    def start():
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return proc
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    start()
    yield f"redis://127.0.0.1:{port}/0", start, procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_redis_going_away_and_coming_back(make_live_server, settings, own_redis):
    url, start_redis, procs = own_redis
    server = make_live_server(dataclasses.replace(settings, event_log=url))
    client = Client(server.ws_url)
    server.runtime.publish("health_change", health(1)["data"])
    old_epoch = client.events(1)[0]["epoch"]

    procs[-1].kill()
    procs[-1].wait()
    status, body = call(server, "GET", "/api/v1/health")
    assert status == 503 and body["components"]["event_log"]["status"] == "down"
    status, body = call(server, "POST", "/api/v1/events", health(2))
    assert status == 503 and body["error"]["code"] == "event_log_unavailable"

    start_redis()  # empty: the history is gone, so clients must reload their snapshot
    status, _ = call(server, "POST", "/api/v1/events", health(3))
    assert status == 201
    reset = client.next_kind("reset", timeout=15)
    assert reset["epoch"] != old_epoch
    call(server, "POST", "/api/v1/events", health(4))
    after_reset = client.events(1, timeout=10)
    assert after_reset[-1]["epoch"] == reset["epoch"]
    status, body = call(server, "GET", "/api/v1/health")
    assert body["components"]["event_log"]["status"] == "healthy"
    client.close()
