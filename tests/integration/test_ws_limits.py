"""Limits on real servers: clients that stop reading or vanish, too many sockets, request bodies that stall.

Each server is the real thing (the tests' threaded Werkzeug, ``python app.py``, gunicorn gthread), the
peers are raw sockets or the ``websockets`` client, and every bound is waited for, never timed.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import wait_until
from tests.integration.test_api import assert_error, call
from tests.integration.test_gunicorn import start_gunicorn
from tests.integration.wsclient import Client
from tests.processes import AppProcess

EVENT_BYTES = 60_000
SILENT_ADDRESS = "127.0.0.2"  # loopback, so MLOPS_AUTH=local serves it
SILENT_CLIENTS = 20
LIMITS = {  # small bounds, so each test reaches them in seconds
    "MLOPS_WS_SEND_TIMEOUT_S": "1",
    "MLOPS_REQUEST_TIMEOUT_S": "1",
    "MLOPS_WS_QUEUE": "100000",  # the send timeout, not the queue bound, must be what drops a silent client
    "MLOPS_WS_HEARTBEAT_S": "30",  # nor the heartbeat (90 s)
    "MLOPS_BACKGROUND": "false",
}


@dataclasses.dataclass
class Target:
    """A running server as these tests see it: where it listens, which process serves, what it logged."""

    url: str
    pid: int
    log: Callable[[], str]
    pooled: bool = False  # its threads stay in a pool when their request ends (gunicorn gthread)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def threads(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))

    def publish_big(self, i: int) -> int:
        """Publish an activity of ~60 KB that no compression shrinks; returns its seq."""
        message = f"{i} " + base64.b64encode(os.urandom(EVENT_BYTES * 3 // 4)).decode()
        status, body = call(self, "POST", "/api/v1/events",
                            {"type": "activity_update", "data": {"message": message, "category": "limits"}})
        assert status == 201, body
        return body["seq"]


def silent_socket(port: int, path: str = "/ws") -> socket.socket:
    """Open a WebSocket by hand, read the 101 and nothing after it: a frozen tab, a stuck script.

    It comes from an address of its own, so no other connection of the test can take its port once reset.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(SILENT_ADDRESS, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def server_side(port: int, peers: set[int]) -> list[tuple[str, int]]:
    """(TCP state, bytes queued to send) of the server's end of each connection from a silent socket's port."""
    silent = socket.inet_aton(SILENT_ADDRESS)[::-1].hex().upper()  # as /proc/net/tcp writes it
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        (_, local), (address, remote) = (f.rsplit(":", 1) for f in fields[1:3])
        if int(local, 16) == port and address == silent and int(remote, 16) in peers:
            found.append((fields[3], int(fields[4].split(":")[0], 16)))
    return found


class Reader:
    """A client that reads every frame as it comes, on a thread of its own."""

    def __init__(self, ws_url: str):
        self.client = Client(ws_url)
        self.seqs: list[int] = []
        self.closed: ConnectionClosed | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                frame = json.loads(self.client.conn.recv())
                self.seqs += [e["seq"] for e in frame.get("events", [])]
        except ConnectionClosed as exc:
            self.closed = exc

    def close(self) -> None:
        self.client.close()
        self._thread.join(timeout=5)


def drop_silent_clients(target: Target, silent: int) -> dict:
    """Open ``silent`` sockets that never read beside one that does, publish big events until the
    server has dropped the silent ones, and check what they leave behind. Returns what was measured."""
    reader = Reader(target.ws_url)
    baseline = target.threads()
    sockets = [silent_socket(target.port) for _ in range(silent)]
    peers = {s.getsockname()[1] for s in sockets}
    opened = target.threads()
    started = time.monotonic()
    published: list[int] = []
    # The server's end holds data for a silent client until it is reset; publish until none does.
    while time.monotonic() - started < 40 and (len(published) < 5 or server_side(target.port, peers)):
        published.append(target.publish_big(len(published)))
    dropped_after = time.monotonic() - started
    assert server_side(target.port, peers) == [], "silent clients still hold their connection and buffers"
    if not target.pooled:
        assert wait_until(lambda: target.threads() <= baseline, timeout=10), (
            f"{target.threads()} threads, {baseline} before the silent clients"
        )
    assert wait_until(lambda: set(published) <= set(reader.seqs), timeout=10), "the reading client missed events"
    assert reader.closed is None
    assert reader.seqs == sorted(set(reader.seqs))
    reader.close()
    for s in sockets:
        s.close()
    return {"published": len(published), "dropped_after_s": round(dropped_after, 2),
            "threads": (baseline, opened, target.threads())}


# ---- the tests' Werkzeug server, in this process ----------------------------------------------------------

@pytest.fixture
def limited(make_live_server, settings) -> Target:
    server = make_live_server(dataclasses.replace(
        settings, ws_send_timeout_s=1.0, ws_queue=100_000, ws_heartbeat_s=30.0,
    ))
    return Target(server.url, os.getpid(), lambda: "")


def test_clients_that_stop_reading_are_reset_and_leave_nothing(limited, caplog, capfd):
    caplog.set_level(logging.INFO)
    measured = drop_silent_clients(limited, SILENT_CLIENTS)
    print("werkzeug (tests):", measured)
    resets = [r for r in caplog.records if r.name == "events.ws" and "slow consumer" in r.getMessage()]
    assert len(resets) == SILENT_CLIENTS
    assert not [r for r in caplog.records if r.exc_info], "a dropped client logged a traceback"
    assert "Traceback" not in capfd.readouterr().err


def test_a_peer_that_vanishes_mid_send_is_one_log_line(make_live_server, settings, caplog, capfd):
    caplog.set_level(logging.INFO)
    server = make_live_server(dataclasses.replace(settings, ws_send_timeout_s=60.0, ws_queue=100_000))
    target = Target(server.url, os.getpid(), lambda: "")
    sock = silent_socket(target.port)
    peer = sock.getsockname()[1]
    i = 0
    while not [q for _, q in server_side(target.port, {peer}) if q > 1_000_000]:  # its window is shut
        target.publish_big(i)
        i += 1
        assert i < 500, "the server never queued data for the silent peer"
    # More than the largest send buffer the kernel gives: the sending thread is now blocked in a send.
    send_buffer_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    for j in range(send_buffer_max // EVENT_BYTES + 5):
        target.publish_big(i + j)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, as when the peer's machine drops the connection
    assert wait_until(lambda: server.runtime.hub.clients() == 0, timeout=10)
    assert wait_until(lambda: any(r.name == "events.ws" for r in caplog.records))
    lines = [r.getMessage() for r in caplog.records if r.name == "events.ws"]
    assert len(lines) == 1 and f":{peer} gone" in lines[0], lines
    assert not [r for r in caplog.records if r.exc_info], "a vanished peer logged a traceback"
    assert "Traceback" not in capfd.readouterr().err


def test_sockets_past_the_limit_are_refused_while_pages_and_health_answer(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, ws_max_clients=3))
    clients = [Client(server.ws_url) for _ in range(3)]
    for _ in range(2):  # a refusal gives its slot back
        with pytest.raises(InvalidStatus) as info:
            connect(server.ws_url, open_timeout=5)
        response = info.value.response
        assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
        assert_error((503, json.loads(response.body)), 503, "too_many_sockets")
    assert call(server, "GET", "/api/v1/health")[0] == 200
    with urllib.request.urlopen(server.url + "/", timeout=10) as page:
        assert page.status == 200
    clients.pop().close()
    assert wait_until(lambda: server.runtime.hub.clients() == 2)
    clients.append(Client(server.ws_url))  # the slot was freed when that socket closed
    assert server.runtime.hub.clients() == 3
    for client in clients:
        client.close()


# ---- python app.py ----------------------------------------------------------------------------------------

@pytest.fixture
def app_process(tmp_path: Path) -> Iterator[Target]:
    process = AppProcess(tmp_path, "app", **LIMITS)
    yield Target(process.url, process.proc.pid, lambda: (tmp_path / "app.log").read_text())
    process.stop()


def stalled_post(port: int) -> socket.socket:
    """A POST whose headers promise a body that never comes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: 1000\r\n\r\n{{\"type\":".encode())
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_python_app_py_drops_stalled_bodies_and_silent_clients_but_keeps_quiet_ones(app_process):
    baseline = app_process.threads()
    stalled = [stalled_post(app_process.port) for _ in range(5)]
    # MLOPS_REQUEST_TIMEOUT_S=1: each is answered or cut once its body stalls that long
    assert wait_until(lambda: all(closed_by_server(s) for s in stalled), timeout=20), "a stalled body holds its thread"
    assert wait_until(lambda: app_process.threads() <= baseline, timeout=10)
    # The reader says nothing for longer than the request timeout (its heartbeat is 30 s) and stays.
    measured = drop_silent_clients(app_process, SILENT_CLIENTS)
    print("python app.py:", measured)
    log = app_process.log()
    assert log.count("reset (slow consumer)") == SILENT_CLIENTS
    assert "Traceback" not in log


# ---- gunicorn gthread -------------------------------------------------------------------------------------

@contextlib.contextmanager
def gunicorn_worker(tmp_path: Path, **env: str) -> Iterator[Target]:
    with start_gunicorn(tmp_path, workers=1, **env) as server:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) == 1
        yield Target(server.url, int(children[0]), lambda: (tmp_path / "gunicorn.log").read_text(), pooled=True)


def test_gunicorn_gthread_refuses_past_the_limit_and_drops_silent_clients(tmp_path):
    silent = 8  # with the reader: 9 of gunicorn's 20 threads, the rest serve requests
    with gunicorn_worker(tmp_path, **LIMITS, MLOPS_WS_MAX_CLIENTS=str(silent + 1)) as worker:
        full = Reader(worker.ws_url), *[silent_socket(worker.port) for _ in range(silent)]
        with pytest.raises(InvalidStatus) as info:
            connect(worker.ws_url, open_timeout=5)
        assert info.value.response.status_code == 503
        assert call(worker, "GET", "/api/v1/health")[0] == 200
        with urllib.request.urlopen(worker.url + "/", timeout=10) as page:
            assert page.status == 200
        full[0].close()
        for s in full[1:]:
            s.close()
        assert wait_until(lambda: full_house(worker, silent + 1), timeout=15, interval=0.5), "slots never came back"
        measured = drop_silent_clients(worker, silent)
        print("gunicorn gthread:", measured)
        # A slot comes back when its request ends, so a full house again means every thread was given back.
        assert wait_until(lambda: full_house(worker, silent + 1), timeout=15, interval=0.5), "slots never came back"
        stalled = stalled_post(worker.port)
        assert wait_until(lambda: closed_by_server(stalled), timeout=20), "a stalled body holds a gunicorn thread"
        log = worker.log()
    assert "Traceback" not in log  # (the app's INFO lines are not configured under gunicorn)
    assert "not below --threads" not in log


def full_house(target: Target, count: int) -> bool:
    """Whether ``count`` sockets can be open at once (then closes them)."""
    clients: list[Client] = []
    try:
        for _ in range(count):
            clients.append(Client(target.ws_url))
        return True
    except InvalidStatus:
        return False
    finally:
        for client in clients:
            client.close()
