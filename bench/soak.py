#!/usr/bin/env python
"""Soak: mixed load against one dashboard for ``--duration`` (10 min); memory, fds and threads over time.

The dashboard runs as the README deploys it (``_common.Server``: gunicorn, one gthread worker,
``--threads``; ``MLOPS_AUTH=local``; the stats sampler and health monitor on, every setting at its
default unless an option says otherwise; ``MLOPS_WS_MAX_CLIENTS`` below ``--threads`` as the README
asks), with the ``memory://`` event log or ``--event-log redis``. Before the load the event history
is filled to its bound (``MLOPS_HISTORY`` events or ``MLOPS_HISTORY_MAX_MB``), as on a server that has
run for a while, so the history's designed growth is not read as a leak. Then, all at once:

* WebSockets: ``--clients`` sockets to ``/ws``. ``--stalled`` of them read the hello and then never
  read again (a frozen tab): the server must cut them (its send timeout,
  ``MLOPS_WS_SEND_TIMEOUT_S``, resets them once their buffers are full; its heartbeat closes a socket
  it has not heard from in 3 intervals). They notice the cut from the TCP state, without reading, and
  reconnect like the page does (full-jitter backoff, ``?after=<seq of their last hello>&epoch=``);
  with ``--frozen-hold`` they keep their end of each cut connection open (a peer that never closes).
  The others read everything, check that seqs have no gaps, answer pings, ping every ``heartbeat_s``
  like the page, and reload (close 1001, reconnect fresh) on average every ``--churn-s``.
* events: ``activity_update`` events of ``--event-kb`` KiB POSTed at ``--event-rate``/s (the volume
  that fills a frozen socket's buffers; the sampler's ``system_stats`` come on top);
* page loads: ``GET /``, ``/_dash-layout``, ``/_dash-dependencies``, ``/api/v1/snapshot`` on a new
  connection, ``--page-rate``/s;
* uploads: every ``--upload-every`` s one of the CSVs shipped with scikit-learn and plotly
  (multipart ``POST /api/v1/datasets`` under a new name), deleted again at once;
* training: every ``--train-every`` s a new pipeline (linear model on breast_cancer, iris or wine)
  is created, trained (``POST /api/v1/pipelines/<id>/train``, polled to the end), its model deployed
  and made the prediction target; pipelines beyond the newest ``--keep-pipelines`` are deleted;
* predictions: ``POST /api/v1/pipelines/<id>/predict`` with 1-5 real rows, ``--predict-rate``/s.

Every ``--sample-s`` (10 s) it records, for the server's process tree and for the gunicorn worker
alone: RSS, open fds, threads, processes, the worker's TCP connections (and how many are not
ESTABLISHED), CPU; and prints one row. At the end: the RSS slope after ``--warmup-s`` (least squares,
MiB/min), fds / threads / connections idle before the load, at the start, after warm-up, at the end
and idle again after every client left, request counts and latency percentiles per kind, the
WebSocket figures, and errors by kind: an HTTP status, a connection error or a WebSocket close other
than the cut of a frozen socket or a reload is an error (exit code 1). Times never fail the run.

Only 127.0.0.1; the server runs in its own process group and is always stopped; the run stops by
itself (a watchdog ends it if the teardown hangs). ``--smoke``: ~25 s of load with 20 sockets (3
frozen), a 2 s send timeout and a 4 MiB history, through every code path.

Run from the repo root:  .venv/bin/python bench/soak.py [--duration 600] [--event-log redis] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import csv
import gzip
import io
import json
import math
import os
import random
import re
import shlex
import signal
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ROOT,
    Server,
    ServerStartError,
    code_versions,
    fmt_ms,
    machine_facts,
    print_quiet,
    summary,
    system_busy_s,
    tree_cpu_s,
    tree_rss_mb,
)

import plotly  # noqa: E402  (only for its bundled CSVs)
import sklearn  # noqa: E402  (only for its bundled CSVs)
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus  # noqa: E402

SKLEARN_DATA = Path(sklearn.__file__).parent / "datasets" / "data"
PLOTLY_DATA = Path(plotly.__file__).parent / "package_data" / "datasets"
# Accepted by the dashboard as they are (digits.csv.gz has no header and is refused, rightly).
UPLOADS = [SKLEARN_DATA / n for n in ("iris.csv", "wine_data.csv", "breast_cancer.csv", "linnerud_exercise.csv")] + [
    PLOTLY_DATA / f"{n}.csv.gz" for n in ("tips", "gapminder", "stocks", "carshare", "experiment", "election", "wind", "medals")
]
TRAIN_SETS = ("breast_cancer", "iris", "wine_data")  # scikit-learn's layout: features, then "target"
PAGE_PATHS = ("/", "/_dash-layout", "/_dash-dependencies", "/api/v1/snapshot")
HTTP_TIMEOUT = 60.0
SEQ = '{"seq":'
TCP_STATES = {1: "ESTABLISHED", 7: "CLOSE (reset)", 8: "CLOSE_WAIT (server closed)"}
CUT = "frozen socket cut by the server"


# -- counts shared by every load ---------------------------------------------------------------------


class Tally:
    """Successes with their latency, unexpected failures and expected cuts, by kind; thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done: collections.Counter[str] = collections.Counter()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter[str] = collections.Counter()
        self.expected: collections.Counter[str] = collections.Counter()
        self.first_error: dict[str, str] = {}

    def ok(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.done[kind] += 1
            self.latency[kind].append(seconds * 1000.0)

    def error(self, kind: str, what: str, detail: str = "") -> None:
        key = f"{kind}: {what}"
        with self.lock:
            self.errors[key] += 1
            self.first_error.setdefault(key, detail)

    def note(self, what: str) -> None:
        with self.lock:
            self.expected[what] += 1

    def counts(self) -> tuple[dict[str, int], int, int]:
        """(successes by kind, errors so far, frozen sockets cut so far)."""
        with self.lock:
            cuts = sum(n for key, n in self.expected.items() if key.startswith(CUT))
            return dict(self.done), sum(self.errors.values()), cuts


def call(tally: Tally, session: requests.Session, kind: str, method: str, url: str,
         ok: tuple[int, ...] = (200, 201, 202, 204), **kwargs) -> requests.Response | None:
    """One request; a status outside ``ok`` or a connection error is an error of ``kind``."""
    t0 = time.perf_counter()
    try:
        r = session.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        tally.error(kind, type(exc).__name__, str(exc)[:300])
        return None
    if r.status_code not in ok:
        try:
            code = r.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = ""
        tally.error(kind, f"HTTP {r.status_code} {code}".strip(), r.text[:300])
        return None
    tally.ok(kind, time.perf_counter() - t0)
    return r


def paced(stop: threading.Event, period: float, jitter: float = 0.2):
    """Yield every ``period`` s (+-``jitter`` of it) until ``stop``; a late turn is not made up."""
    due = time.monotonic() + random.uniform(0, period)  # the loops do not start in step
    while not stop.wait(max(0.0, due - time.monotonic())):
        yield
        due = max(due + period * random.uniform(1 - jitter, 1 + jitter), time.monotonic())


# -- HTTP loads ----------------------------------------------------------------------------------------


@dataclass
class TrainSet:
    name: str
    dataset_id: int
    rows: list[dict[str, float]] = field(default_factory=list)  # instances for predictions


def read_upload(path: Path) -> tuple[str, bytes]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return path.name.removesuffix(".gz"), data


class Loads:
    """The HTTP side of the soak: one thread per kind of load, all ended by ``stop``."""

    def __init__(self, server: Server, args, tally: Tally, stop: threading.Event):
        self.url = server.url
        self.api = server.url + "/api/v1"
        self.args = args
        self.tally = tally
        self.stop = stop
        self.files = [read_upload(p) for p in UPLOADS]
        self.train_sets: list[TrainSet] = []
        self.target: tuple[int, list[dict[str, float]]] | None = None  # (pipeline id, rows) predictions go to
        self.pipelines_created = self.pipelines_deleted = 0

    def setup(self) -> None:
        """Upload the training datasets (kept for the whole run)."""
        s = requests.Session()
        for name in TRAIN_SETS:
            raw = (SKLEARN_DATA / f"{name}.csv").read_bytes()
            r = s.post(f"{self.api}/datasets", files={"file": (f"{name}.csv", raw, "text/csv")},
                       data={"name": f"soak-train-{name}"}, timeout=HTTP_TIMEOUT)
            if r.status_code != 201:
                raise RuntimeError(f"uploading {name}.csv: HTTP {r.status_code} {r.text[:300]}")
            item = r.json()
            features = [c["name"] for c in item["columns"] if c["name"] != "target"]
            lines = list(csv.reader(io.StringIO(raw.decode())))[1:]  # line 1: scikit-learn's counts header
            rows = [dict(zip(features, map(float, line[:-1]))) for line in lines if line]
            self.train_sets.append(TrainSet(name, item["id"], rows))

    def threads(self) -> list[threading.Thread]:
        a = self.args
        loads = [f for f, on in ((self.events, a.event_rate), (self.pages, a.page_rate), (self.predictions, a.predict_rate),
                                 (self.uploads, a.upload_every), (self.training, a.train_every)) if on > 0]
        return [threading.Thread(target=f, name=f"soak-{f.__name__}", daemon=True) for f in loads]

    def events(self) -> None:
        s = requests.Session()
        filler = "x" * max(0, self.args.event_kb * 1024 - 120)  # the envelope adds ~120 bytes
        for n, _ in enumerate(paced(self.stop, 1 / self.args.event_rate, jitter=0.0)):
            body = {"type": "activity_update", "data": {"message": f"soak {n} {filler}", "category": "soak"}}
            call(self.tally, s, "POST /api/v1/events", "POST", f"{self.api}/events", json=body, ok=(201,))

    def pages(self) -> None:
        for _ in paced(self.stop, 1 / self.args.page_rate):
            t0 = time.perf_counter()
            with requests.Session() as s:  # a new visitor: a new connection
                ok = all([call(self.tally, s, f"GET {p}", "GET", self.url + p) is not None for p in PAGE_PATHS])
            if ok:
                self.tally.ok("page load (the 4 GETs)", time.perf_counter() - t0)

    def predictions(self) -> None:
        s = requests.Session()
        rng = random.Random(7)
        for _ in paced(self.stop, 1 / self.args.predict_rate):
            target = self.target
            if target is None:
                continue
            pipeline_id, rows = target
            body = {"instances": rng.sample(rows, rng.randint(1, 5))}
            call(self.tally, s, "POST predict", "POST", f"{self.api}/pipelines/{pipeline_id}/predict", json=body, ok=(200,))

    def uploads(self) -> None:
        s = requests.Session()
        for n, _ in enumerate(paced(self.stop, self.args.upload_every)):
            filename, data = self.files[n % len(self.files)]
            r = call(self.tally, s, "POST /api/v1/datasets (upload)", "POST", f"{self.api}/datasets",
                     files={"file": (filename, data, "text/csv")}, data={"name": f"soak-{n}-{filename}"}, ok=(201,))
            if r is not None:
                call(self.tally, s, "DELETE dataset", "DELETE", f"{self.api}/datasets/{r.json()['id']}")

    def training(self) -> None:
        s = requests.Session()
        live: collections.deque[int] = collections.deque()
        for n, _ in enumerate(paced(self.stop, self.args.train_every, jitter=0.1)):
            ts = self.train_sets[n % len(self.train_sets)]
            body = {"name": f"soak-{n}-{ts.name}", "dataset_id": ts.dataset_id, "target": "target", "model": "linear"}
            r = call(self.tally, s, "POST pipeline", "POST", f"{self.api}/pipelines", json=body, ok=(201,))
            if r is None:
                continue
            pipeline_id = r.json()["id"]
            self.pipelines_created += 1
            live.append(pipeline_id)
            t0 = time.perf_counter()
            r = call(self.tally, s, "POST train", "POST", f"{self.api}/pipelines/{pipeline_id}/train")
            job = self.wait_job(s, r.json()["id"]) if r is not None else None
            if job is not None and job["status"] == "succeeded":
                self.tally.ok("training (submit -> succeeded)", time.perf_counter() - t0)
                if call(self.tally, s, "POST deploy", "POST", f"{self.api}/models/{job['model_id']}/deploy", ok=(200,)):
                    self.target = (pipeline_id, ts.rows)
            elif job is not None:
                self.tally.error("training", f"job {job['status']}", json.dumps(job)[:300])
            while len(live) > self.args.keep_pipelines and not (self.target and self.target[0] == live[0]):
                old = live.popleft()
                if call(self.tally, s, "DELETE pipeline", "DELETE", f"{self.api}/pipelines/{old}"):
                    self.pipelines_deleted += 1

    def wait_job(self, s: requests.Session, job_id: str, limit_s: float = 180.0) -> dict | None:
        deadline = time.monotonic() + limit_s
        while not self.stop.wait(0.3):
            r = call(self.tally, s, "GET job", "GET", f"{self.api}/jobs/{job_id}", ok=(200,))
            if r is not None and r.json()["status"] in {"succeeded", "failed", "cancelled"}:
                return r.json()
            if time.monotonic() > deadline:
                self.tally.error("training", f"no result in {limit_s:.0f} s")
                return None
        return None  # the run ended meanwhile


def prefill(server: Server, args, tally: Tally) -> tuple[int, float]:
    """Fill the event history to its bound with the soak's own events; (events, seconds)."""
    sys.path.insert(0, str(ROOT))
    from config import Settings  # the code under test's defaults, not numbers copied here

    defaults = Settings()
    history = int(server.env.get("MLOPS_HISTORY", defaults.history))
    max_mb = float(server.env.get("MLOPS_HISTORY_MAX_MB", defaults.history_max_mb))
    count = min(history, math.ceil(max_mb * 2**20 * 1.15 / (args.event_kb * 1024))) + 10
    filler = "x" * max(0, args.event_kb * 1024 - 120)
    counter = iter(range(count))
    lock = threading.Lock()
    t0 = time.monotonic()

    def worker():
        s = requests.Session()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            body = {"type": "activity_update", "data": {"message": f"prefill {n} {filler}", "category": "soak"}}
            call(tally, s, "POST /api/v1/events (prefill)", "POST", f"{server.url}/api/v1/events", json=body, ok=(201,))

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    return count, time.monotonic() - t0


# -- WebSockets ----------------------------------------------------------------------------------------


def backoff(attempts: int, rng: random.Random) -> float:
    """The page's reconnect delay: full jitter under min(10 s, 250 ms * 2^attempts), at least 100 ms."""
    return max(0.1, rng.random() * min(10.0, 0.25 * 2**attempts))


def seq_at(raw: str, i: int) -> int:
    j = k = i + len(SEQ)
    while k < len(raw) and raw[k].isdigit():
        k += 1
    return int(raw[j:k]) if k > j else -1


class Reader:
    """A page that reads every frame: checks seqs, answers pings, pings, reloads now and then."""

    def __init__(self, idx: int, ws_url: str, tally: Tally, churn_s: float):
        self.idx = idx
        self.ws_url = ws_url
        self.tally = tally
        self.churn_s = churn_s
        self.rng = random.Random(idx)
        self.epoch: str | None = None
        self.last = 0
        self.open = False
        self.frames = self.events = self.gaps = self.reloads = self.resumes = 0

    async def run(self, stop: asyncio.Event) -> None:
        attempts, fresh = 0, True
        while not stop.is_set():
            url = self.ws_url
            if not fresh and self.epoch is not None:
                url += f"?after={self.last}&epoch={urllib.parse.quote(self.epoch)}"
            try:
                async with connect(url, ping_interval=None, max_size=None, open_timeout=30, close_timeout=5) as ws:
                    hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if fresh or hello.get("epoch") != self.epoch:
                        self.epoch, self.last = hello["epoch"], hello["seq"]
                    attempts, self.open = 0, True
                    outcome = await self.session(ws, float(hello.get("heartbeat_s") or 15.0), stop)
                    self.open = False
                    if outcome == "reload":
                        self.reloads += 1
                        self.tally.note("reader: page reload (client close 1001)")
                        await ws.close(1001, "page reload")
                        fresh = True
                        await asyncio.sleep(self.rng.uniform(0.2, 1.0))
                        continue
                    await ws.close(1001, "soak over")
                    return
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                what = f"closed by server {rcvd.code} {rcvd.reason}".strip() if rcvd else "connection lost (no close frame)"
                self.tally.error("WebSocket reader", what)
            except InvalidStatus as exc:
                self.tally.error("WebSocket reader connect", f"HTTP {exc.response.status_code}")
            except (InvalidHandshake, OSError, asyncio.TimeoutError) as exc:
                self.tally.error("WebSocket reader connect", type(exc).__name__, str(exc)[:200])
            self.open = False
            fresh = False
            self.resumes += 1
            await asyncio.sleep(backoff(attempts, self.rng))
            attempts += 1

    async def session(self, ws, heartbeat_s: float, stop: asyncio.Event) -> str:
        reload_at = time.monotonic() + (self.rng.expovariate(1 / self.churn_s) if self.churn_s > 0 else math.inf)
        last_ping = time.monotonic()
        while True:
            now = time.monotonic()
            if stop.is_set():
                return "stop"
            if now >= reload_at:
                return "reload"
            if now - last_ping >= heartbeat_s:  # like the page: a ping every heartbeat_s
                await ws.send(json.dumps({"kind": "ping", "t": time.time()}))
                last_ping = now
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.0)  # recv is cancellation-safe
            except asyncio.TimeoutError:
                continue
            self.frames += 1
            if raw.startswith('{"kind":"events"'):
                first, last = seq_at(raw, raw.find(SEQ)), seq_at(raw, raw.rfind(SEQ))
                if first > self.last + 1:
                    self.gaps += 1
                    self.tally.error("WebSocket reader", "gap in seqs", f"expected {self.last + 1}, frame starts at {first}")
                self.events += raw.count(SEQ)
                self.last = max(self.last, last)
            elif raw.startswith('{"kind":"ping"'):
                await ws.send(json.dumps({"kind": "pong", "t": json.loads(raw).get("t")}))
            elif raw.startswith('{"kind":"reset"'):
                message = json.loads(raw)
                self.epoch, self.last = message.get("epoch", self.epoch), message["seq"]
                self.tally.note("reader: reset frame (history moved on)")


class Stalled(threading.Thread):
    """A frozen tab: reads the hello, then nothing. Notices the server's cut from the TCP state (never
    reading) and reconnects like the page, asking for what followed its last hello."""

    def __init__(self, idx: int, port: int, tally: Tally, stop: threading.Event, delay_s: float = 0.0, hold: bool = False):
        super().__init__(name=f"soak-stalled-{idx}", daemon=True)
        self.delay_s = delay_s  # frozen tabs freeze at different moments, not in step
        self.hold = hold  # keep the cut socket open (a peer that never closes its end) until the run ends
        self.held: list[socket.socket] = []
        self.port = port
        self.tally = tally
        self.stop_event = stop
        self.rng = random.Random(1000 + idx)
        self.epoch: str | None = None
        self.seq = 0
        self.open = False
        self.connects = 0
        self.cut_after: list[float] = []  # seconds from hello to the cut

    def run(self) -> None:
        attempts = 0
        if self.stop_event.wait(self.delay_s):
            return
        while not self.stop_event.is_set():
            sock = None
            try:
                sock = self.handshake()
                if sock is not None:
                    attempts = 0
                    self.stall(sock)
            except (OSError, ValueError) as exc:
                self.tally.error("WebSocket stalled connect", type(exc).__name__, str(exc)[:200])
            finally:
                self.open = False
                if sock is not None and not (self.hold and sock in self.held):
                    sock.close()
            if self.stop_event.wait(backoff(attempts, self.rng)):
                break
            attempts += 1
        for sock in self.held:
            sock.close()

    def handshake(self) -> socket.socket | None:
        path = "/ws"
        if self.epoch is not None:
            path += f"?after={self.seq}&epoch={urllib.parse.quote(self.epoch)}"
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise ValueError(f"closed during the handshake: {head[:100]!r}")
            head += chunk
        status = head.split(b" ", 2)[1].decode()
        if status != "101":
            self.tally.error("WebSocket stalled connect", f"HTTP {status}")
            sock.close()
            return None
        hello = json.loads(self.read_frame(sock))
        if hello.get("kind") != "hello":
            raise ValueError(f"expected hello, got {hello}")
        self.epoch, self.seq = hello["epoch"], hello["seq"]
        self.connects += 1
        return sock

    @staticmethod
    def read_frame(sock: socket.socket) -> bytes:
        def exact(n: int) -> bytes:
            out = b""
            while len(out) < n:
                chunk = sock.recv(n - len(out))
                if not chunk:
                    raise ValueError("closed while reading the hello")
                out += chunk
            return out

        b1 = exact(2)[1] & 0x7F
        length = b1 if b1 < 126 else int.from_bytes(exact(2 if b1 == 126 else 8), "big")
        return exact(length)

    def stall(self, sock: socket.socket) -> None:
        """Read nothing more; poll the TCP state until the server ends the connection or the run ends."""
        self.open = True
        started = time.monotonic()
        while not self.stop_event.wait(0.5):
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
            if state != 1:  # not ESTABLISHED
                if self.hold:
                    self.held.append(sock)
                self.cut_after.append(time.monotonic() - started)
                self.tally.note(f"{CUT}: {TCP_STATES.get(state, f'TCP state {state}')}")
                return


class Sockets:
    """Readers on an asyncio loop in a thread of their own; frozen sockets on plain threads."""

    def __init__(self, server: Server, args, tally: Tally, stop: threading.Event):
        self.readers = [Reader(i, server.ws_url, tally, args.churn_s) for i in range(args.clients - args.stalled)]
        spread = min(30.0, args.warmup_s / 2)  # the frozen sockets start spread over this, inside the warm-up
        self.stalled = [Stalled(i, server.port, tally, stop, i * spread / max(1, args.stalled), args.frozen_hold)
                        for i in range(args.stalled)]
        self.stop = stop
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="soak-readers", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        stop = asyncio.Event()

        async def watch():
            while not self.stop.is_set():
                await asyncio.sleep(0.2)
            stop.set()

        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(r.run(stop) for r in self.readers), return_exceptions=True)
        watcher.cancel()

    def start(self, timeout: float = 60.0) -> float:
        t0 = time.monotonic()
        self.thread.start()
        for s in self.stalled:
            s.start()
        while time.monotonic() - t0 < timeout and sum(r.open for r in self.readers) < len(self.readers):
            time.sleep(0.1)
        return time.monotonic() - t0

    def open(self) -> int:
        return sum(r.open for r in self.readers) + sum(s.open for s in self.stalled)

    def join(self, timeout: float = 20.0) -> None:
        self.thread.join(timeout)
        for s in self.stalled:
            s.join(timeout=2)


# -- sampling ------------------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    rss_tree: float  # the resident processes: gunicorn master and worker, the fork server, the resource tracker
    rss_worker: float
    procs: int  # resident processes
    jobs: int  # training processes alive at the moment (children of the fork server; they come and go)
    rss_jobs: float
    fds_tree: int
    fds_worker: int
    threads_tree: int
    threads_worker: int
    conns: int
    conns_closing: int
    counts: dict[str, int]
    errors: int
    cuts: int
    ws_open: int
    cpu_server: float  # % of one core since the previous sample
    cpu_bench: float
    cpu_other: float


class Sampler:
    def __init__(self, server: Server, tally: Tally):
        self.server = server
        self.tally = tally
        self.me = psutil.Process()
        self.prev = None

    def take(self, t: float, ws_open: int = 0) -> Sample:
        procs = self.server.processes()
        worker = self.server.worker()
        forkservers = {p.pid for p in procs if _is_forkserver(p)}
        jobs = [p for p in procs if _ppid(p) in forkservers]
        resident = [p for p in procs if _ppid(p) not in forkservers]
        rss_tree = fds_tree = threads_tree = 0
        for p in resident:
            try:
                with p.oneshot():
                    rss_tree += p.memory_info().rss
                    fds_tree += p.num_fds()
                    threads_tree += p.num_threads()
            except psutil.Error:
                pass
        rss_w = fds_w = threads_w = conns = closing = 0
        if worker is not None:
            try:
                with worker.oneshot():
                    rss_w, fds_w, threads_w = worker.memory_info().rss, worker.num_fds(), worker.num_threads()
                tcp = worker.net_connections(kind="tcp")
                conns = len(tcp)
                closing = sum(c.status not in ("ESTABLISHED", "LISTEN") for c in tcp)
            except psutil.Error:
                pass
        now = time.monotonic()
        cpu = (tree_cpu_s(procs), sum(self.me.cpu_times()[:2]), system_busy_s()[0], now)
        pct = [0.0, 0.0, 0.0]
        if self.prev is not None:
            wall = now - self.prev[3]
            srv, me, busy = (cpu[i] - self.prev[i] for i in range(3))
            pct = [100 * max(0.0, srv) / wall, 100 * me / wall, 100 * max(0.0, busy - max(0.0, srv) - me) / wall]
        self.prev = cpu
        counts, errors, cuts = self.tally.counts()
        return Sample(t, rss_tree / 2**20, rss_w / 2**20, len(resident), len(jobs), tree_rss_mb(jobs), fds_tree, fds_w,
                      threads_tree, threads_w, conns, closing, counts, errors, cuts, ws_open, *pct)


def _ppid(p: psutil.Process) -> int | None:
    try:
        return p.ppid()
    except psutil.Error:
        return None


def _is_forkserver(p: psutil.Process) -> bool:
    try:
        return "forkserver" in " ".join(p.cmdline())
    except psutil.Error:
        return False


KINDS_SHOWN = (("pages", "page load (the 4 GETs)"), ("preds", "POST predict"), ("upl", "POST /api/v1/datasets (upload)"),
               ("train", "training (submit -> succeeded)"), ("events", "POST /api/v1/events"))
ROW_HEAD = (f"{'t s':>6} {'RSS res':>8} {'RSS wkr':>8} {'procs':>5} {'jobs':>4} {'RSS jobs':>8} {'fds res':>7} {'fds wkr':>7} {'thr res':>7} "
            f"{'thr wkr':>7} {'conns':>5} {'!estab':>6} {'ws open':>7} "
            + " ".join(f"{name:>6}" for name, _ in KINDS_SHOWN)
            + f" {'errors':>6} {'cuts':>5} {'CPU srv':>7} {'bench':>5} {'other':>5}")


def print_row(s: Sample, prev: Sample | None, label: str = "") -> None:
    delta = [s.counts.get(kind, 0) - (prev.counts.get(kind, 0) if prev else 0) for _, kind in KINDS_SHOWN]
    print(f"{s.t:>6.0f} {s.rss_tree:>8.1f} {s.rss_worker:>8.1f} {s.procs:>5} {s.jobs:>4} {s.rss_jobs:>8.1f} {s.fds_tree:>7} "
          f"{s.fds_worker:>7} {s.threads_tree:>7} {s.threads_worker:>7} {s.conns:>5} {s.conns_closing:>6} {s.ws_open:>7} "
          + " ".join(f"{d:>6}" for d in delta)
          + f" {s.errors:>6} {s.cuts:>5} {s.cpu_server:>6.0f}% {s.cpu_bench:>4.0f}% {s.cpu_other:>4.0f}%"
          + (f"  {label}" if label else ""), flush=True)


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 2:
        return math.nan
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    return 60.0 * sum((t - mx) * (v - my) for t, v in points) / sxx if sxx else math.nan


def fd_kinds(process: psutil.Process | None) -> dict[str, int]:
    """Open fds of ``process`` by kind: socket, pipe, anon_inode:..., or the file's directory."""
    out: collections.Counter[str] = collections.Counter()
    if process is None:
        return {}
    fd_dir = Path(f"/proc/{process.pid}/fd")
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return {}
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue
        if target.startswith(("socket:", "pipe:")):
            kind = target.split(":", 1)[0]
        elif target.startswith("anon_inode:"):
            kind = target
        else:
            kind = re.sub(r"^.*/mlops-bench-[^/]+", "<server temp dir>", str(Path(target).parent)).replace(str(ROOT), "<repo>")
        out[kind] += 1
    return dict(sorted(out.items()))


def memory_facts(process: psutil.Process | None) -> str:
    """The kernel's peak RSS (VmHWM) and the anonymous part of the RSS now, from /proc."""
    if process is None:
        return "-"
    facts = {}
    try:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                facts[key] = f"{int(value.split()[0]) / 1024:.1f} MiB"
    except (OSError, ValueError, IndexError):
        pass
    return ", ".join(f"{k} {v}" for k, v in facts.items()) or "-"


# -- report --------------------------------------------------------------------------------------------


def report(samples: list[Sample], idle0: Sample, idle1: Sample | None, tally: Tally, loads: Loads, sockets: Sockets,
           args, run_s: float, server: Server) -> None:
    after = [s for s in samples if s.t >= args.warmup_s] or samples[-1:]
    warm = after[0]
    end = samples[-1]
    print(f"\n== soak: summary ({run_s:.0f} s of load; warm-up {args.warmup_s:g} s; {len(after)} samples after it) ==")
    for label, key in (("RSS, resident procs", "rss_tree"), ("RSS, gunicorn worker", "rss_worker")):
        values = [getattr(s, key) for s in after]
        slope = slope_per_min([(s.t, getattr(s, key)) for s in after])
        late = after[len(after) // 2:]  # does the growth slow down? (a bound being approached, or a leak)
        late_slope = slope_per_min([(s.t, getattr(s, key)) for s in late])
        print(f"{label:<21} idle {getattr(idle0, key):7.1f} MiB | at warm-up end {getattr(warm, key):7.1f} | end "
              f"{getattr(end, key):7.1f} | after warm-up min {min(values):7.1f} max {max(values):7.1f} | "
              f"slope after warm-up {slope:+.3f} MiB/min (least squares over {len(after)} samples); over the last "
              f"half (t >= {late[0].t:.0f} s) {late_slope:+.3f}")
    idle_after = idle1 if idle1 is not None else end
    print(f"{'':<21} {'idle before':>11} {'load start':>10} {'warm-up end':>11} {'end':>6} {'idle after':>10}")
    for label, key in (("fds, worker", "fds_worker"), ("fds, resident procs", "fds_tree"), ("threads, worker", "threads_worker"),
                       ("threads, resident", "threads_tree"), ("TCP conns, worker", "conns"),
                       ("  not ESTABLISHED", "conns_closing"), ("resident processes", "procs"), ("training processes", "jobs")):
        print(f"{label:<21} {getattr(idle0, key):>11} {getattr(samples[0], key):>10} {getattr(warm, key):>11} "
              f"{getattr(end, key):>6} {getattr(idle_after, key):>10}")

    print("\n== soak: requests (latency ms, client side) ==")
    print(f"{'kind':<34} {'count':>7} {'per s':>6}  latency")
    with tally.lock:
        kinds = sorted(tally.done)
        for kind in kinds:
            if kind.endswith("(prefill)"):
                continue
            values = tally.latency[kind]
            print(f"{kind:<34} {len(values):>7} {len(values) / run_s:>6.2f}  {fmt_ms(summary(values))}")
    print(f"pipelines created {loads.pipelines_created}, deleted {loads.pipelines_deleted}")

    print("\n== soak: WebSockets ==")
    readers, stalled = sockets.readers, sockets.stalled
    print(f"readers {len(readers)}: frames {sum(r.frames for r in readers):,}, events {sum(r.events for r in readers):,}, "
          f"seq gaps {sum(r.gaps for r in readers)}, page reloads {sum(r.reloads for r in readers)}, "
          f"reconnects after an error {sum(r.resumes for r in readers)}")
    cuts = sorted(t for s in stalled for t in s.cut_after)
    print(f"frozen sockets {len(stalled)}: connects {sum(s.connects for s in stalled)}, cut by the server {len(cuts)} times"
          + (f", connected before the cut: p50 {summary(cuts)['p50']:.1f} s, max {cuts[-1]:.1f} s" if cuts else ""))

    print("\n== soak: errors (any is unexpected) ==")
    with tally.lock:
        if not tally.errors:
            print("none")
        for key, n in tally.errors.most_common():
            detail = tally.first_error.get(key, "")
            print(f"{n:>6}  {key}" + (f"  (first: {detail[:200]})" if detail else ""))
        print("expected (not errors):")
        for key, n in tally.expected.most_common():
            print(f"{n:>6}  {key}")
        if not tally.expected:
            print("     -")

    log = server.log_path.read_text(errors="replace").splitlines() if server.log_path.exists() else []
    bad = [line for line in log if any(w in line for w in ("ERROR", "Traceback", "CRITICAL", "[WARNING]"))]
    print(f"\nserver log: {len(log)} lines, {len(bad)} with ERROR / Traceback / CRITICAL / [WARNING]")
    for line in list(dict.fromkeys(bad))[:8]:
        print(f"  {line[:240]}")


# -- main ----------------------------------------------------------------------------------------------


def apply_smoke(args) -> None:
    args.duration, args.warmup_s, args.sample_s = 25.0, 8.0, 3.0
    args.clients, args.stalled = 20, 3
    args.event_rate, args.event_kb, args.churn_s = 20.0, 32, 8.0
    args.upload_every, args.train_every, args.predict_rate, args.page_rate = 3.0, 5.0, 5.0, 2.0
    args.ws_send_timeout = args.ws_send_timeout or 2.0
    args.history_mb = args.history_mb or 4.0
    args.wait_quiet, args.idle_after_s = 0.0, 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    ap.add_argument("--warmup-s", type=float, default=120.0, help="the RSS slope uses samples after this (default 120)")
    ap.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples (default 10)")
    ap.add_argument("--event-log", choices=["memory", "redis"], default="memory")
    ap.add_argument("--threads", type=int, default=150, help="gunicorn --threads (default 150)")
    ap.add_argument("--clients", type=int, default=100, help="WebSockets, frozen ones included (default 100)")
    ap.add_argument("--stalled", type=int, default=10, help="WebSockets that never read after the hello (default 10)")
    ap.add_argument("--frozen-hold", action="store_true",
                    help="frozen sockets keep their end of a cut connection open until the run ends (a peer that never "
                         "closes) and reconnect beside it")
    ap.add_argument("--churn-s", type=float, default=120.0, help="a reading page reloads on average this often, s; 0: never (default 120)")
    ap.add_argument("--event-rate", type=float, default=8.0, help="activity_update events POSTed per s (default 8; 0: none)")
    ap.add_argument("--event-kb", type=int, default=16, help="KiB per event (default 16; at most 63)")
    ap.add_argument("--page-rate", type=float, default=1.0, help="page loads per s (default 1; 0: none)")
    ap.add_argument("--predict-rate", type=float, default=5.0, help="predictions per s (default 5; 0: none)")
    ap.add_argument("--upload-every", type=float, default=10.0, help="s between uploads (default 10; 0: none)")
    ap.add_argument("--train-every", type=float, default=20.0, help="s between trainings (default 20; 0: none, and no predictions)")
    ap.add_argument("--keep-pipelines", type=int, default=2, help="newest pipelines kept; older ones are deleted (default 2)")
    ap.add_argument("--ws-send-timeout", type=float, default=None, help="MLOPS_WS_SEND_TIMEOUT_S (default: the server's)")
    ap.add_argument("--history-mb", type=float, default=None, help="MLOPS_HISTORY_MAX_MB (default: the server's)")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the server, e.g. MALLOC_ARENA_MAX=2 (repeatable; for diagnosis)")
    ap.add_argument("--idle-after-s", type=float, default=10.0, help="wait after the clients leave before the last sample")
    ap.add_argument("--wait-quiet", type=float, default=60.0, help="wait up to this many s for an idle machine first (0: no check)")
    ap.add_argument("--smoke", action="store_true", help="~25 s of load, 20 sockets (3 frozen), 2 s send timeout, 4 MiB history, no idle wait")
    args = ap.parse_args()
    if args.smoke:
        apply_smoke(args)
    if not 0 <= args.stalled <= args.clients or args.event_kb < 1 or args.event_kb > 63 or args.sample_s <= 0 or min(
            args.event_rate, args.page_rate, args.predict_rate, args.upload_every, args.train_every, args.churn_s) < 0:
        ap.error("need 0 <= --stalled <= --clients, 1 <= --event-kb <= 63, --sample-s > 0 and rates and periods >= 0")

    started = time.monotonic()
    print(f"machine: {machine_facts()}")
    print(f"code: {code_versions('events/ws.py', 'events/hub.py', 'services/serving.py', 'services/training.py', 'services/datasets.py')}")
    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(f"load average before start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print_quiet(args.wait_quiet)

    server = Server(kind="gunicorn", event_log=args.event_log, threads=args.threads, background=True)
    server.env.pop("MLOPS_STATS_INTERVAL_S", None)  # the sampler at its default interval, as deployed
    for name in ("MLOPS_HISTORY", "MLOPS_WS_QUEUE", "MLOPS_WS_BATCH_MS", "MLOPS_WS_HEARTBEAT_S", "MLOPS_DATABASE_URL",
                 "MLOPS_ALLOWED_HOSTS", "MLOPS_ADMIN_USER", "MLOPS_ADMIN_PASSWORD", "MLOPS_WS_SEND_TIMEOUT_S", "MLOPS_HISTORY_MAX_MB"):
        server.env.pop(name, None)  # nothing from this shell's environment: defaults unless an option says
    server.env.update({"MLOPS_AUTH": "local", "MLOPS_WS_MAX_CLIENTS": str(max(1, args.threads - 25))})
    if args.ws_send_timeout:
        server.env["MLOPS_WS_SEND_TIMEOUT_S"] = f"{args.ws_send_timeout:g}"
    if args.history_mb:
        server.env["MLOPS_HISTORY_MAX_MB"] = f"{args.history_mb:g}"
    for pair in args.server_env:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            ap.error(f"--server-env {pair!r}: expected NAME=VALUE")
        server.env[name] = value

    tally = Tally()
    stop = threading.Event()
    finished = threading.Event()
    budget_s = args.duration + 420.0  # setup (history fill, connects) and teardown are bounded well below this

    def watchdog():
        if not finished.wait(budget_s):
            print(f"\n!! watchdog: the run did not end within {budget_s:.0f} s; stopping the server", flush=True)
            server.stop()
            os._exit(3)

    threading.Thread(target=watchdog, name="soak-watchdog", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    samples: list[Sample] = []
    failed = False
    run_s = 0.0
    sockets = None
    try:
        server.start()
        print(f"server: {server.describe()} | MLOPS_AUTH=local | MLOPS_WS_MAX_CLIENTS={server.env['MLOPS_WS_MAX_CLIENTS']} | "
              f"MLOPS_WS_SEND_TIMEOUT_S={server.env.get('MLOPS_WS_SEND_TIMEOUT_S', 'default')} | "
              f"MLOPS_HISTORY_MAX_MB={server.env.get('MLOPS_HISTORY_MAX_MB', 'default')} | SQLite in a temp dir | pid {server.proc.pid}"
              + (f" | extra env {' '.join(args.server_env)}" if args.server_env else ""))
        print(f"load: {args.clients} WebSockets ({args.stalled} frozen{', keeping cut sockets open' if args.frozen_hold else ''}, "
              f"readers reload every ~{args.churn_s:g} s), "
              f"{args.event_rate:g} events/s x {args.event_kb} KiB, {args.page_rate:g} page loads/s, {args.predict_rate:g} "
              f"predictions/s, an upload every {args.upload_every:g} s, a training every {args.train_every:g} s; "
              f"{args.duration:g} s, a sample every {args.sample_s:g} s")
        sampler = Sampler(server, tally)
        time.sleep(1.0)
        idle0 = sampler.take(0.0)
        fds0 = fd_kinds(server.worker())
        loads = Loads(server, args, tally, stop)
        loads.setup()
        count, seconds = prefill(server, args, tally)
        after_fill = sampler.take(0.0)
        print(f"history filled: {count} events of {args.event_kb} KiB in {seconds:.1f} s; RSS idle {idle0.rss_tree:.1f} -> "
              f"{after_fill.rss_tree:.1f} MiB (worker {idle0.rss_worker:.1f} -> {after_fill.rss_worker:.1f})")
        sockets = Sockets(server, args, tally, stop)
        connect_s = sockets.start()
        print(f"{sum(r.open for r in sockets.readers)}/{len(sockets.readers)} reading WebSockets open after {connect_s:.1f} s; "
              f"the {args.stalled} frozen ones connect one by one over {sockets.stalled[-1].delay_s if sockets.stalled else 0:.0f} s")

        print(f"\n== soak: over time (RSS MiB; res: the resident processes (gunicorn master and worker, fork server, "
              f"resource tracker); jobs: training processes alive now; fds, threads: open now; conns: the worker's TCP "
              f"connections, !estab: of them not ESTABLISHED; request columns: done in the interval; errors, cuts (frozen "
              f"sockets cut): so far; CPU: % of one core in the interval, server = resident + training processes alive at "
              f"both ends) ==")
        print(ROW_HEAD)
        print_row(idle0, None, "idle, before the load")
        t0 = time.monotonic()
        threads = loads.threads()
        for t in threads:
            t.start()
        prev = None
        while True:
            t = time.monotonic() - t0
            s = sampler.take(t, sockets.open())
            samples.append(s)
            print_row(s, prev, "<- warm-up end" if prev is not None and prev.t < args.warmup_s <= s.t else "")
            prev = s
            if server.proc.poll() is not None:
                failed = True
                print(f"!! the server exited with {server.proc.returncode}:\n{server.log_tail(15)}")
                break
            if t >= args.duration:
                break
            time.sleep(max(0.0, min(args.sample_s * len(samples), args.duration) - (time.monotonic() - t0)))
        run_s = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(timeout=HTTP_TIMEOUT + 5)
        sockets.join()
        time.sleep(args.idle_after_s)
        idle1 = sampler.take(time.monotonic() - t0)
        print_row(idle1, samples[-1], f"idle, {args.idle_after_s:g} s after every client left")
        report(samples, idle0, idle1, tally, loads, sockets, args, run_s, server)
        worker = server.worker()
        fds1 = fd_kinds(worker)
        grown = {k: fds1.get(k, 0) - fds0.get(k, 0) for k in sorted(set(fds0) | set(fds1)) if fds1.get(k, 0) != fds0.get(k, 0)}
        print(f"worker fds idle before -> idle after, by kind: {fds0} -> {fds1}; difference {grown or 'none'}")
        print(f"worker memory: {memory_facts(worker)}")
        failed |= bool(tally.errors)
    except (ServerStartError, RuntimeError, requests.RequestException) as exc:
        failed = True
        print(f"\n!! {type(exc).__name__}: {exc}")
        tail = server.log_tail(15)
        if tail and "server exited" not in str(exc):
            print(f"server log tail:\n{tail}")
    finally:
        stop.set()
        server.stop()
        finished.set()
    print(f"\ntotal time {time.monotonic() - started:.0f} s; load average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
