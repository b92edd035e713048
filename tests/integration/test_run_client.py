"""``client.run.Run`` over real sockets: dead and silent dashboards, outages, the runs protocol, the live app."""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from client.run import Run
from tests.conftest import wait_until
from tests.integration.test_api import call
from tests.integration.wsclient import Client
from tests.processes import free_port

# Which threads touch the network, seen through the interpreter's audit events (hooks cannot be
# removed, so one hook is installed per process and records only while a test asks it to).
_recording: list[str] | None = None
_hook_installed = False


def _audit(event: str, args) -> None:
    if _recording is not None and event in ("socket.connect", "socket.getaddrinfo"):
        _recording.append(threading.current_thread().name)


@pytest.fixture
def network_threads() -> Iterator[list[str]]:
    """Names of the threads that resolve or connect sockets during the test."""
    global _recording, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    _recording = []
    yield _recording
    _recording = None


class FakeDashboard:
    """A real HTTP server speaking the runs protocol of ``/api/v1``, recording what it accepted.

    ``rule(kind, body)`` may return an HTTP status to answer instead (kind: create, log, finish).
    """

    def __init__(self, port: int = 0, prefix: str = "", rule: Callable[[str, dict], int | None] | None = None):
        self.prefix = prefix.rstrip("/")
        self.rule = rule
        self.created: list[dict] = []
        self.entries: dict[str, list[dict]] = {}
        self.finished: dict[str, dict] = {}
        self.answered: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer = fake.handle(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status in (429, 503):
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}{self.prefix}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, path: str, body: dict) -> tuple[int, dict]:
        match = re.fullmatch(re.escape(self.prefix) + r"/api/v1/runs(?:/([0-9a-f]{32})/(log|finish))?", path)
        if not match:
            return self.answer(path, 404, error("not_found", path))
        run_id, action = match.groups()
        kind = action or "create"
        forced = self.rule(kind, body) if self.rule else None
        if forced:
            return self.answer(kind, forced, error("forced", f"{kind} answered {forced}"))
        with self.lock:
            if kind == "create":
                assert 1 <= len(body["name"]) <= 100 and (body["total"] is None or body["total"] >= 1)
                run_id = uuid.uuid4().hex
                self.created.append({"id": run_id, **body})
                self.entries[run_id] = []
                return self.answer(kind, 201, {"id": run_id, "name": body["name"], "status": "running"})
            if run_id not in self.entries:
                return self.answer(kind, 404, error("not_found", run_id))
            if kind == "log":
                steps = [e["step"] for e in body["entries"]]
                ok = 1 <= len(steps) <= 1000 and steps == sorted(steps) and all(
                    v is None or isinstance(v, (int, float)) for e in body["entries"] for v in e["metrics"].values()
                )
                if not ok:
                    return self.answer(kind, 422, error("invalid_entries", "bad entries"))
                self.entries[run_id].extend(body["entries"])
                return self.answer(kind, 200, {"accepted": len(steps)})
            self.finished[run_id] = body
            return self.answer(kind, 200, {"id": run_id, "status": body["status"]})

    def answer(self, kind: str, status: int, body: dict) -> tuple[int, dict]:
        self.answered.append((kind, status))
        return status, body

    def steps(self, run_id: str) -> list[int]:
        with self.lock:
            return [e["step"] for e in self.entries.get(run_id, [])]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "details": {}}}


@pytest.fixture
def fake_dashboard() -> Iterator[Callable[..., FakeDashboard]]:
    servers: list[FakeDashboard] = []

    def factory(**kwargs) -> FakeDashboard:
        servers.append(FakeDashboard(**kwargs))
        return servers[-1]

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture(params=["refused", "silent"])
def dead_url(request) -> Iterator[str]:
    """A dashboard URL where nothing listens, or where a socket listens but never accepts or answers."""
    if request.param == "refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


# --- A dashboard that is down or silent never blocks or breaks the training loop.

REQUEST_TIMEOUT = 60.0  # long on purpose: a request to the silent socket hangs this long


def test_logging_to_a_dead_or_silent_dashboard_never_waits(dead_url, network_threads, caplog):
    caplog.set_level(logging.INFO, logger="client.run")
    run = Run(dead_url, name="offline", buffer_size=100, batch_size=50, timeout=REQUEST_TIMEOUT)
    assert wait_until(lambda: network_threads, timeout=30), "the sender never tried the network"
    for step in range(2000):
        run.log(step=step, loss=1.0 / (step + 1), acc=np.float32(0.5))

    # The sender thread touched the network; this thread, the one calling log(), never did.
    assert "mlops-run:offline" in network_threads and threading.current_thread().name not in network_threads
    # The run could not even be created, so everything waits in the buffer; the oldest went first.
    assert run.id is None and run.sent == 0
    assert run.dropped == 1900 and run.pending == 100

    started = time.monotonic()
    assert run.finish(timeout=0.5) is False
    # finish() honoured its bound, not the network's: a request to the silent socket is still hanging.
    assert time.monotonic() - started < REQUEST_TIMEOUT / 2
    assert not run.finished
    assert any("did not get" in r.getMessage() and "1900 dropped" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="finish"):
        run.log(step=2000, loss=0.0)


def test_the_loop_runs_entirely_inside_one_unanswered_request(network_threads):
    """While the sender hangs on a silent dashboard, thousands of log() calls complete."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        run = Run(f"http://127.0.0.1:{silent.getsockname()[1]}", name="silent", timeout=REQUEST_TIMEOUT)
        assert wait_until(lambda: "mlops-run:silent" in network_threads, timeout=30)
        for step in range(5000):
            run.log(step=step, loss=float(step))
        # The first request (creating the run) has neither succeeded nor failed: the loop did not wait for it.
        assert run.last_error is None and run.id is None
        assert run.pending == 5000 and run.dropped == 0
        assert run.finish(timeout=0.2) is False


# --- Outages, retries and refusals against a real HTTP server speaking the protocol.


def test_entries_logged_while_the_dashboard_is_down_arrive_when_it_is_back(fake_dashboard, caplog):
    caplog.set_level(logging.INFO, logger="client.run")
    port = free_port()
    run = Run(f"http://127.0.0.1:{port}", name="flaky", total=200, buffer_size=100, batch_size=20)
    for step in range(150):
        run.log(step=step, loss=float(step))
    assert wait_until(lambda: run.last_error is not None, timeout=30)
    assert run.dropped == 50  # nothing could leave: the oldest 50 made room for the newest

    server = fake_dashboard(port=port)
    assert wait_until(lambda: run.id is not None and len(server.steps(run.id)) == 100, timeout=30)
    assert server.steps(run.id) == list(range(50, 150))
    for step in range(150, 200):
        run.log(step=step, loss=float(step))
    assert run.finish(timeout=30) is True

    assert [c["name"] for c in server.created] == ["flaky"] and server.created[0]["total"] == 200
    assert server.steps(run.id) == list(range(50, 200))
    assert server.entries[run.id][-1]["metrics"] == {"loss": 199.0}
    assert server.finished[run.id] == {"status": "succeeded"}
    assert run.sent == 150 and run.dropped == 50 and run.rejected == 0 and run.last_error is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("not answering" in m for m in messages) and any("answering again" in m for m in messages)


def test_server_errors_are_retried_until_accepted(fake_dashboard):
    failures = {"log": 3, "finish": 2}

    def rule(kind, body):
        if failures.get(kind, 0) > 0:
            failures[kind] -= 1
            return 503 if kind == "log" else 429
        return None

    server = fake_dashboard(rule=rule)
    with Run(server.url, name="retried", batch_size=10, max_backoff=0.25) as run:
        for step in range(50):
            run.log(step=step, loss=float(step))
        assert wait_until(lambda: run.sent == 50, timeout=30)
    assert run.finished and server.steps(run.id) == list(range(50))
    assert server.answered.count(("log", 503)) == 3 and server.answered.count(("finish", 429)) == 2


def test_a_refused_batch_is_dropped_and_the_rest_still_arrive(fake_dashboard, caplog):
    server = fake_dashboard(rule=lambda kind, body: 422 if kind == "log" and 13 in [e["step"] for e in body["entries"]] else None)
    with Run(server.url, name="partly-refused", batch_size=5) as run:
        for step in range(30):
            run.log(step=step, acc=0.5)
    received = server.steps(run.id)
    assert 13 not in received and received == sorted(received)
    assert 1 <= run.rejected <= 5 and run.sent == len(received) == 30 - run.rejected
    assert run.finished and server.finished[run.id]["status"] == "succeeded"
    assert any("refused" in r.getMessage() and "forced" in r.getMessage() for r in caplog.records)


def test_a_refused_run_stops_sending_without_disturbing_training(fake_dashboard, caplog):
    server = fake_dashboard(rule=lambda kind, body: 422 if kind == "create" else None)
    run = Run(server.url, name="refused")
    assert wait_until(lambda: server.answered, timeout=30)
    for step in range(10):
        run.log(step=step, loss=1.0)
    assert run.finish(timeout=30) is False
    assert run.id is None and run.sent == 0 and run.rejected == 10
    assert server.answered == [("create", 422)]
    assert any("refused to create" in r.getMessage() for r in caplog.records)


def test_a_run_closed_by_the_server_stops_sending(fake_dashboard, caplog):
    server = fake_dashboard(rule=lambda kind, body: 409 if kind == "log" and body["entries"][-1]["step"] >= 5 else None)
    run = Run(server.url, name="closed", batch_size=1, interval=0)
    for step in range(5):
        run.log(step=step, loss=1.0)
    assert wait_until(lambda: run.sent == 5, timeout=30)
    run.log(step=5, loss=1.0)
    assert wait_until(lambda: run.rejected == 1, timeout=30)
    run.log(step=6, loss=1.0)  # still no error for the training loop
    assert run.finish(timeout=30) is False
    assert server.steps(run.id) == [0, 1, 2, 3, 4] and run.rejected == 2
    assert server.answered.count(("log", 409)) == 1 and run.id not in server.finished
    assert any("closed run" in r.getMessage() for r in caplog.records)


def test_a_quiet_run_sends_heartbeats(fake_dashboard):
    server = fake_dashboard()
    run = Run(server.url, name="long-epochs", heartbeat=0.2)
    run.log(step=3, loss=0.5)

    def beats() -> list[dict]:
        entries = list(server.entries.get(run.id, []))
        logged = [i for i, entry in enumerate(entries) if entry["metrics"]]
        return entries[logged[0] + 1 :] if logged else []

    assert wait_until(lambda: len(beats()) >= 2, timeout=30)
    assert all(entry == {"step": 3, "metrics": {}} for entry in beats())
    assert run.sent == 1
    assert run.finish(timeout=30) is True


def test_path_prefix_params_and_metric_values(fake_dashboard):
    server = fake_dashboard(prefix="/mlops/")
    run = Run(server.url + "/", name="values", total=3, params={"lr": np.float64(0.1), "opt": "adam", "layers": 4})
    run.log(step=np.int64(1), loss=float("nan"), acc=np.float32(0.5), n=np.int64(3), big=float("inf"), huge=10**400)
    run.log(step=1, loss=0.25)  # an equal step is allowed
    assert run.finish({"acc": 0.75}, timeout=30) is True
    assert server.created[0]["params"] == {"lr": 0.1, "opt": "adam", "layers": 4}
    assert server.entries[run.id] == [
        {"step": 1, "metrics": {"loss": None, "acc": 0.5, "n": 3.0, "big": None, "huge": None}},
        {"step": 1, "metrics": {"loss": 0.25}},
    ]
    assert server.finished[run.id] == {"status": "succeeded", "metrics": {"acc": 0.75}}
    assert run.url == f"{server.url}/training"


def test_an_exception_inside_with_fails_the_run_and_propagates(fake_dashboard):
    server = fake_dashboard()
    with pytest.raises(FloatingPointError, match="loss diverged"):
        with Run(server.url, name="diverges") as run:
            run.log(step=1, loss=1.0)
            raise FloatingPointError("loss diverged at step 2")
    assert run.finished and server.steps(run.id) == [1]
    assert server.finished[run.id] == {"status": "failed", "error": "FloatingPointError: loss diverged at step 2"}


def test_programming_errors_raise_at_log_time():
    run = Run(f"http://127.0.0.1:{free_port()}", name="bugs")
    run.log(step=5, loss=1.0)
    bad: list[tuple[type[Exception], dict]] = [
        (ValueError, {"step": -1}),
        (ValueError, {"step": 4}),  # below the previous step
        (TypeError, {"step": 1.5}),
        (TypeError, {"step": True}),
        (TypeError, {"step": "6"}),
        (TypeError, {"step": 6, "loss": "0.1"}),
        (TypeError, {"step": 6, "loss": None}),
        (TypeError, {"step": 6, "loss": True}),
        (TypeError, {"step": 6, "loss": [0.1, 0.2]}),
        (TypeError, {"step": 6, "loss": np.array([0.1, 0.2])}),
        (ValueError, {"step": 6, "": 1.0}),
        (ValueError, {"step": 6, "x" * 65: 1.0}),
        (ValueError, {"step": 6, **{f"m{i}": 1.0 for i in range(51)}}),
    ]
    for exc_type, kwargs in bad:
        with pytest.raises(exc_type):
            run.log(**kwargs)
    assert run.pending + run.dropped <= 1  # nothing invalid was buffered
    with pytest.raises(TypeError):
        run.finish({"acc": "high"})
    assert run.finish(timeout=0.1) is False
    for kwargs in ({"name": ""}, {"name": "x" * 101}, {"name": "ok", "total": 0}, {"name": "ok", "batch_size": 1001}):
        with pytest.raises(ValueError):
            Run("http://127.0.0.1:1", **kwargs)
    with pytest.raises(TypeError):
        Run("http://127.0.0.1:1", name="ok", params={"model": object()})
    with pytest.raises(ValueError):
        Run("127.0.0.1:8050", name="no-scheme")


def test_log_is_thread_safe(fake_dashboard):
    server = fake_dashboard()
    run = Run(server.url, name="threads", batch_size=50)

    def worker(offset: int) -> None:
        for i in range(250):
            run.log(step=0, **{f"w{offset}": float(i)})

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert run.finish(timeout=30) is True
    assert run.sent == 1000 and run.dropped == 0 and len(server.entries[run.id]) == 1000


# --- Against the real dashboard: the job record and the WebSocket events.


def run_events(ws: Client, run_id: str, last: str) -> list[dict]:
    seen = ws.until(lambda e: e["type"] == last and e["data"].get("job_id") == run_id, timeout=30)
    return [e for e in seen if e["type"].startswith("training_") and e["data"].get("job_id") == run_id]


def test_a_run_reports_progress_and_completion_to_the_live_dashboard(live_server):
    ws = Client(live_server.ws_url)
    with Run(live_server.url, name="resnet-live", total=20) as run:
        for step in range(1, 21):
            run.log(step=step, loss=1.0 / step, acc=step / 20)
    assert run.finished and run.sent == 20 and run.dropped == 0 and run.rejected == 0

    status, job = call(live_server, "GET", f"/api/v1/jobs/{run.id}")
    assert status == 200 and job["status"] == "succeeded" and job["name"] == "resnet-live"
    assert job["metrics"] == {"loss": 1.0 / 20, "acc": 1.0}

    events = run_events(ws, run.id, "training_complete")
    steps = [e["data"]["step"] for e in events if e["type"] == "training_progress"]
    assert steps and steps == sorted(steps) and steps[-1] == 20
    assert events[-1]["type"] == "training_complete"
    assert events[-1]["data"]["metrics"] == {"loss": 1.0 / 20, "acc": 1.0}
    ws.close()


def test_an_exception_inside_with_is_a_training_error_on_the_live_dashboard(live_server):
    ws = Client(live_server.ws_url)
    with pytest.raises(FloatingPointError, match="loss diverged"):
        with Run(live_server.url, name="diverges-live", total=10) as run:
            run.log(step=1, loss=1.0)
            raise FloatingPointError("loss diverged at step 2")
    assert run.finished
    events = run_events(ws, run.id, "training_error")
    assert "loss diverged at step 2" in events[-1]["data"]["error"]
    status, job = call(live_server, "GET", f"/api/v1/jobs/{run.id}")
    assert status == 200 and job["status"] == "failed"
    ws.close()
