"""Chaos: what the dashboard stands on goes away under it, and it keeps its promises.

Redis killed and started again empty under a live page, PostgreSQL cut mid-request, the data disk
filling during an upload, the server SIGKILLed while it trains. Every outage is the test's own: a
``redis-server`` on a port of its own, a TCP proxy in front of the shared PostgreSQL on a database
of its own, a small tmpfs; the shared servers are never stopped, restarted or flushed.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import make_url

from tests.conftest import POSTGRES_URL, need, wait_until
from tests.integration.test_api import assert_error, call
from tests.integration.test_data_api import sklearn_csv, stored_files, upload
from tests.integration.test_input_hardening import clean
from tests.integration.test_ml_api import TIMEOUT, slow_pipeline, train
from tests.integration.wsclient import Client
from tests.processes import AppProcess, free_port

IRIS = sklearn_csv("iris.csv").read_bytes()
GONE_WITHIN_S = 10.0  # a bound for the kernel and the children's watchdogs, not a speed requirement
# What psycopg says when it cannot connect; the health answer may name the database, not quote the driver.
PSYCOPG_TEXT = ("connection failed", "connection to server at", "Is the server running", "server closed the connection")
RECOVERY_S = 30.0  # pools and the event pump back off for a few seconds at most; generous on a shared box


def pipeline_body(dataset: dict, name: str) -> dict:
    return {"name": name, "dataset_id": dataset["id"], "target": "target", "model": "random_forest",
            "params": {"n_estimators": 10}}


# -- a Redis of our own ---------------------------------------------------------------------------------


class OwnRedis:
    """A ``redis-server`` that can be killed and started again, empty, on the same port."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(directory)]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def answering():
            try:
                return client.ping()
            except redis.RedisError:
                assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
                return False

        assert wait_until(answering, timeout=10, interval=0.05)
        client.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def test_redis_killed_and_restarted_empty_under_a_live_page(make_live_server, settings, own_redis):
    server = make_live_server(dataclasses.replace(settings, event_log=f"{own_redis.url}?stream=chaos"))
    page = Client(server.ws_url)
    status, iris = upload(server, "iris.csv", IRIS, name="before", upload_id="before")
    assert status == 201, iris
    epoch, head = server.runtime.log.head()  # the upload published its news before it answered
    seen = page.until(lambda e: e["seq"] == head)
    assert [e["seq"] for e in seen] == list(range(page.hello["seq"] + 1, head + 1))
    assert {e["epoch"] for e in seen} == {epoch} and "upload_complete" in {e["type"] for e in seen}
    last = seen[-1]

    own_redis.kill()
    # A page that reloads during the outage comes back at its position and waits.
    reloaded = Client(server.ws_url, after=last["seq"], epoch=last["epoch"])
    assert (reloaded.hello["epoch"], reloaded.hello["seq"]) == (last["epoch"], last["seq"]), reloaded.hello
    # Changes go on being stored; only their news cannot be published.
    status, during = upload(server, "iris.csv", IRIS, name="during", upload_id="during")
    assert status == 201 and during["rows"] == 150, during
    status, pipeline = call(server, "POST", "/api/v1/pipelines", pipeline_body(during, "made-while-redis-was-down"))
    assert status == 201, pipeline
    status, renamed = call(server, "PATCH", f"/api/v1/datasets/{iris['id']}", {"name": "renamed-while-down"})
    assert status == 200 and renamed["name"] == "renamed-while-down", renamed
    status, health = call(server, "GET", "/api/v1/health")
    assert status == 503 and health["status"] == "down", health
    event_log = health["components"]["event_log"]
    assert event_log["status"] == "down" and "unreachable" in event_log["message"], event_log
    assert str(own_redis.port) in event_log["message"]  # says which Redis, so an operator knows what to start
    assert health["components"]["storage"]["status"] == "healthy", health
    status, published = call(server, "POST", "/api/v1/events", {
        "type": "health_change", "data": {"component": "x", "status": "healthy", "message": "", "overall": "healthy"}})
    assert_error((status, published), 503, "event_log_unavailable")
    assert_error(call(server, "GET", f"/api/v1/events?after=0&epoch={last['epoch']}"), 503, "event_log_unavailable")
    for client in (page, reloaded):
        client.send({"kind": "ping"})  # as the browser's heartbeat does: silent clients are dropped

    own_redis.start()  # empty: the history is gone, a new epoch begins
    reset = page.next_kind("reset", timeout=RECOVERY_S)  # the pages still connected are told to reload
    assert reset["epoch"] != last["epoch"], reset
    assert reloaded.next_kind("reset", timeout=RECOVERY_S)["epoch"] == reset["epoch"]
    page.close()
    reloaded.close()

    # A page that reconnects with its last position is told to reload too.
    back = Client(server.ws_url, after=last["seq"], epoch=last["epoch"])
    assert back.hello["epoch"] == reset["epoch"], back.hello
    assert back.next_kind("reset")["epoch"] == reset["epoch"]
    back.close()
    # ...and the snapshot and lists it reloads hold what was stored during the outage.
    status, snapshot = call(server, "GET", "/api/v1/snapshot")
    assert status == 200 and snapshot["epoch"] == reset["epoch"], snapshot
    pipelines = call(server, "GET", "/api/v1/pipelines")[1]["items"]
    assert [(p["id"], p["name"]) for p in pipelines] == [(pipeline["id"], "made-while-redis-was-down")]
    datasets = call(server, "GET", "/api/v1/datasets")[1]["items"]
    assert sorted(d["name"] for d in datasets) == ["during", "renamed-while-down"]

    # Live again: a page continuing from the snapshot gets the next change's events, with no reset.
    live = Client(server.ws_url, after=snapshot["seq"], epoch=snapshot["epoch"])
    assert live.hello["epoch"] == snapshot["epoch"]
    status, _ = call(server, "PATCH", f"/api/v1/pipelines/{pipeline['id']}", {"name": "after-the-restart"})
    assert status == 200
    news = live.until(lambda e: e["type"] == "pipeline_updated", timeout=RECOVERY_S)
    assert news[-1]["data"]["name"] == "after-the-restart" and news[-1]["epoch"] == snapshot["epoch"]
    assert [e["seq"] for e in news] == list(range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(news)))
    assert not [f for f in live.frames if f["kind"] == "reset"]
    live.close()
    status, health = call(server, "GET", "/api/v1/health")
    assert health["components"]["event_log"]["status"] == "healthy", health


# -- PostgreSQL behind a proxy we can cut -------------------------------------------------------------


class PgProxy:
    """127.0.0.1:<port> -> PostgreSQL. ``hold`` keeps chosen statements in the proxy (their requests hang
    mid-query), ``cut`` drops every connection and refuses new ones (a restart as the app sees it),
    ``accept`` ends that."""

    def __init__(self, url: str):
        parsed = make_url(url)
        self.target = (parsed.host or "127.0.0.1", parsed.port or 5432)
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self.url = parsed.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)
        self.holding: dict[socket.socket, bytes] = {}  # the app's statements waiting in the proxy
        self._markers: tuple[bytes, ...] = ()
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._pairs: set[socket.socket] = set()
        self._start_accepting()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _start_accepting(self) -> None:
        threading.Thread(target=self._accept_loop, args=(self._listener,), daemon=True).start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                cut = listener is not self._listener  # cut() came while this one was being connected
                if not cut:
                    self._pairs |= {client, upstream}
            if cut:
                client.close()
                upstream.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_app: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_app and any(marker in data for marker in self._markers):
                    with self._lock:
                        self.holding[source] = data
                    self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._pairs.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def hold(self, *markers: bytes) -> None:
        """Keep the app's messages that contain one of ``markers`` (a statement's text) in the proxy."""
        self._markers = markers
        self._flowing.clear()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            pairs = list(self._pairs)
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it; close() alone would not
        except OSError:
            pass
        listener.close()
        for sock in pairs:
            self._close(sock)
        self._markers = ()
        self._flowing.set()  # held pumps wake up to dead sockets

    def accept(self) -> None:
        with self._lock:
            self._listener = self._listen(self.port)
        self._start_accepting()

    def close(self) -> None:
        if self._listener is not None:
            self.cut()


@pytest.fixture
def pg_proxy(postgres_url) -> Iterator[PgProxy]:
    proxy = PgProxy(postgres_url)
    yield proxy
    proxy.close()


def terminate_backends(postgres_url: str) -> None:
    """What a restart does to the server side: every backend of the test's database ends."""
    import psycopg

    name = make_url(postgres_url).database
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                      (name,))


def test_postgresql_restarted_mid_request(postgres_url, pg_proxy, make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, database_url=pg_proxy.url))
    status, iris = upload(server, "iris.csv", IRIS, name="iris")
    assert status == 201, iris
    status, existing = call(server, "POST", "/api/v1/pipelines", pipeline_body(iris, "existing"))
    assert status == 201, existing

    # Requests in flight when the database goes away: a read, a write, and an upload whose file was
    # already moved beside its row when its COMMIT went out. Their statements wait in the proxy (the
    # server never sees them), then every connection drops. Each ends with the API's 503, not a 500
    # or a driver's text, and the upload leaves no file.
    pg_proxy.hold(b"FROM datasets ORDER BY", b"INSERT INTO pipelines", b"COMMIT")
    answers: dict[str, tuple[int, dict]] = {}
    requests = {
        "list": lambda: call(server, "GET", "/api/v1/datasets"),
        "create": lambda: call(server, "POST", "/api/v1/pipelines", pipeline_body(iris, "in-flight")),
        "upload": lambda: upload(server, "iris.csv", IRIS, name="in-flight", upload_id="in-flight"),
    }
    threads = [threading.Thread(target=lambda k=k, f=f: answers.__setitem__(k, f()), daemon=True) for k, f in requests.items()]
    for thread in threads:
        thread.start()

    def all_held():
        held = b"".join(pg_proxy.holding.values())
        moved = len(stored_files(server)) == 2  # os.replace done: the upload is committing
        return b"FROM datasets ORDER BY" in held and b"INSERT INTO pipelines" in held and b"COMMIT" in held and moved

    assert wait_until(all_held, timeout=10), (pg_proxy.holding, stored_files(server))
    pg_proxy.cut()
    terminate_backends(postgres_url)
    for thread in threads:
        thread.join(timeout=30)
    assert set(answers) == set(requests)
    for name, answer in answers.items():
        assert answer[0] == 503, (name, answer)
        assert_error(clean(answer), 503, "storage_unavailable")
    assert [p.parent.name for p in stored_files(server)] == [str(iris["id"])]
    failed = [e for e in server.runtime.log.read_after(0, None) if e.type == "upload_error"]
    assert [(e.data["upload_id"], e.data["code"]) for e in failed] == [("in-flight", "storage_unavailable")]

    # While it is down: every request that needs the database is a 503 of the same shape.
    down = {
        "GET datasets": call(server, "GET", "/api/v1/datasets"),
        "GET dataset": call(server, "GET", f"/api/v1/datasets/{iris['id']}"),
        "GET pipelines": call(server, "GET", "/api/v1/pipelines"),
        "GET jobs": call(server, "GET", "/api/v1/jobs"),
        "GET activity": call(server, "GET", "/api/v1/activity"),
        "PATCH dataset": call(server, "PATCH", f"/api/v1/datasets/{iris['id']}", {"name": "renamed"}),
        "POST pipeline": call(server, "POST", "/api/v1/pipelines", pipeline_body(iris, "while-down")),
        "POST upload": upload(server, "iris.csv", IRIS, name="while-down", upload_id="while-down"),
        "POST train": call(server, "POST", f"/api/v1/pipelines/{existing['id']}/train"),
        "POST predict": call(server, "POST", f"/api/v1/pipelines/{existing['id']}/predict", {"instances": [{"feature_0": 1}]}),
        "DELETE pipeline": call(server, "DELETE", f"/api/v1/pipelines/{existing['id']}"),
        "GET models": call(server, "GET", "/api/v1/models"),
        "POST run": call(server, "POST", "/api/v1/runs", {"name": "external"}),
    }
    for what, answer in down.items():
        assert answer[0] == 503, (what, answer)
        assert_error(clean(answer), 503, "storage_unavailable")
    status, health = call(server, "GET", "/api/v1/health")  # public, even with MLOPS_AUTH=on
    storage_down = health["components"]["storage"]
    assert status == 503 and storage_down["status"] == "down", health
    assert not list((server.runtime.settings.data_dir / "tmp").glob("*"))

    # Back: the same process serves again, without a restart.
    pg_proxy.accept()
    assert wait_until(lambda: call(server, "GET", "/api/v1/datasets")[0] == 200, timeout=RECOVERY_S, interval=0.2)
    assert [d["name"] for d in call(server, "GET", "/api/v1/datasets")[1]["items"]] == ["iris"]
    status, pipeline = call(server, "POST", "/api/v1/pipelines", pipeline_body(iris, "after"))
    assert status == 201, pipeline
    assert [p["name"] for p in call(server, "GET", "/api/v1/pipelines")[1]["items"]] == ["existing", "after"]
    assert call(server, "PATCH", f"/api/v1/datasets/{iris['id']}", {"name": "renamed"})[0] == 200
    status, again = upload(server, "iris.csv", IRIS, name="after")
    assert status == 201, again
    status, health = call(server, "GET", "/api/v1/health")
    assert health["components"]["storage"]["status"] == "healthy", health
    assert sorted(p.name for p in stored_files(server)) == ["v1.csv", "v1.csv"]
    # Checked last so that the recovery above is checked whatever this says: the health check says
    # the database is down in its own words, not the driver's (the README: "No answer ever carries a
    # database driver's message").
    leaked = [text for text in PSYCOPG_TEXT if text.lower() in storage_down["message"].lower()]
    assert not leaked, storage_down


# -- a disk that fills up -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 4 MB tmpfs. Ask for it before ``make_live_server`` so the servers stop before it is unmounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True)
    need(done.returncode == 0, f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    yield mount
    if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def open_files_under(directory: Path) -> list[str]:
    """What this process (the in-process server) holds open under ``directory``, deleted files included."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(str(directory)):
            held.append(target)
    return held


def test_disk_filling_during_an_upload(small_disk, make_live_server, settings, tmp_path):
    (tmp_path / "db").mkdir()
    server = make_live_server(dataclasses.replace(
        settings, data_dir=small_disk, database_url=f"sqlite:///{tmp_path / 'db' / 'mlops.db'}"))
    page = Client(server.ws_url)
    free = shutil.disk_usage(small_disk).free
    row = b"1.2345,2.3456,3.4567,4.5678,some text\n"
    big = b"a,b,c,d,e\n" + row * ((free + 2**20) // len(row))

    status, body = clean(upload(server, "big.csv", big, upload_id="too-big"))
    assert_error((status, body), 507, "storage_error")
    error = page.until(lambda e: e["type"] == "upload_error" and e["data"]["upload_id"] == "too-big")[-1]
    assert error["data"]["code"] == "storage_error" and error["data"]["filename"] == "big.csv", error
    assert call(server, "GET", "/api/v1/datasets")[1]["items"] == []
    assert stored_files(server) == []
    leftovers = [p for p in small_disk.rglob("*") if p.is_file() and p.stat().st_size > 64 * 1024]
    assert leftovers == [], leftovers
    # Nothing is left behind that still takes the space either: the half-written file is closed, not
    # only unlinked (a deleted file that stays open keeps its blocks until the handle is collected).
    space_back = wait_until(lambda: shutil.disk_usage(small_disk).free >= free - 64 * 1024, timeout=5, interval=0.05)
    assert space_back, (shutil.disk_usage(small_disk).free, open_files_under(small_disk))

    status, item = upload(server, "iris.csv", IRIS, upload_id="small")
    assert status == 201 and item["rows"] == 150, item
    assert page.until(lambda e: e["type"] == "upload_complete" and e["data"]["upload_id"] == "small")
    assert [p.name for p in stored_files(server)] == ["v1.csv"]
    page.close()


# -- the server SIGKILLed while it trains -------------------------------------------------------------


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())}"
    except psutil.Error:
        return f"{process.pid} (gone)"


def test_server_sigkilled_during_training(tmp_path):
    first = AppProcess(tmp_path, "ml", MLOPS_BACKGROUND="false")
    try:
        pipeline = slow_pipeline(first)
        job_id = train(first, pipeline["id"])
        job: dict = {}

        def running():
            job.update(call(first, "GET", f"/api/v1/jobs/{job_id}")[1])
            return job["status"] == "running" and job["step"] > 0

        assert wait_until(running, timeout=TIMEOUT, interval=0.1), job
        tree = psutil.Process(first.proc.pid).children(recursive=True)
        trainers = [p for p in tree if p.ppid() != first.proc.pid]  # the fork server's children
        assert trainers, [describe(p) for p in tree]

        first.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        first.proc.wait(timeout=10)
        def survivors() -> list[str]:
            return [describe(p) for p in tree if alive(p)]

        assert wait_until(lambda: not survivors(), timeout=GONE_WITHIN_S, interval=0.02), survivors()
        print(f"\n{len(tree)} processes of the killed server gone {time.monotonic() - killed:.2f} s after the SIGKILL")
    finally:
        first.stop()

    second = AppProcess(tmp_path, "ml", port=first.port, MLOPS_BACKGROUND="false")
    try:
        status, job = call(second, "GET", f"/api/v1/jobs/{job_id}")
        assert status == 200 and job["status"] == "failed" and job["finished_at"], job
        assert "stopped" in job["error"], job
        events = call(second, "GET", "/api/v1/events?after=0&limit=1000")[1]["events"]
        errors = [e["data"] for e in events if e["type"] == "training_error" and e["data"]["job_id"] == job_id]
        assert [e["code"] for e in errors] == ["worker_lost"], errors
        assert call(second, "GET", f"/api/v1/models/{job['model_id']}")[1]["status"] == "failed"
        assert call(second, "GET", "/api/v1/jobs?status=running")[1]["items"] == []
    finally:
        second.stop()
