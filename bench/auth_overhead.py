#!/usr/bin/env python
"""What authentication costs a request: the same dashboard with ``MLOPS_AUTH=local`` (A) and ``=on`` (B).

Two dashboards run at once (``bench/_common.Server``: gunicorn, 1 gthread worker, ``--threads``, own
temp data dir and SQLite, ``MLOPS_BACKGROUND=false``, 127.0.0.1 only) with the same settings except
auth: A has ``MLOPS_AUTH=local`` (no credentials; the Host and loopback checks still run), B has
``MLOPS_AUTH=on`` with ``MLOPS_ADMIN_USER`` / ``MLOPS_ADMIN_PASSWORD``. On B a bearer token is created
through ``POST /api/v1/tokens`` (HTTP Basic) and a login session through the ``/login`` form (GET it,
take the hidden ``csrf_token``, POST user name, password, token and ``next``). Before any timing the
script checks that A answers as ``local``, B refuses a request without credentials (401) and B sees
the token and the cookie as ``token`` / ``session`` (``GET /api/v1/me``).

Both servers get ``--snapshot-samples`` ``system_stats`` events first (1 s samples, chart window of
that many seconds), so ``GET /api/v1/snapshot`` returns that many samples, as a page that has been
open that long would.

HTTP: for each request (``GET /api/v1/charts``, a static list; ``GET /api/v1/snapshot``) and each of
B's credentials (``Authorization: Bearer``; the login cookie) one pair is run: ``--warmup`` requests
per server unmeasured, then ``--requests`` per server, interleaved A,B,B,A,A,B,... (one request in
flight at a time, over one keep-alive ``requests.Session`` per server and credential, so machine
noise hits both alike). Reported per pair: client-side latency p50/p90/p99/mean (ms) of A and of B,
B/A of the medians and of the means, the added microseconds (medians, means, and the median of the
paired differences B_i - A_i), the ratio of medians in each quarter of the pair (its spread is the
noise), and each server's CPU (process tree, psutil) per request during the pair. Errors (any
non-200) are counted and make the exit code 1; times never do.

WebSocket: ``--connects`` connections per server and credential, interleaved the same way, each
timed from the start of ``websockets.sync.client.connect`` to the receipt of the ``hello`` frame
(then closed, untimed); B sends ``Authorization: Bearer`` or the login cookie as a header.

``--profile N`` (default 2000; 0 skips) then explains B's extra time in this process with Flask's test
client (no gunicorn, no sockets), in thread CPU time: two dashboards (``create_app``, local and on,
each on a temp dir); the request cost per variant, with warm caches (back-to-back requests, median of
rounds) and with the CPU caches evicted before each request (64 MiB written, untimed: closer to a
server whose core ran other processes between two requests); direct timings of the stages of
authentication (token hash, SQLAlchemy session, the token query as raw sqlite3 / SQLAlchemy Core /
ORM, the whole ``token_principal``, cookie decoding, ``session_user``, ``Edge.before`` and
``Edge.after``); and a cProfile of N bearer requests against N local ones: the functions whose
cumulative and own time per request grow most (cProfile inflates deep call chains such as
SQLAlchemy's: the direct timings are the numbers, the profile is the map).

``--smoke``: a short run (a few requests, connects and profile calls; no wait for an idle machine)
through every code path, printing the same tables; well under 30 s.

Run from the repo root:  .venv/bin/python bench/auth_overhead.py [--requests 2000] [--connects 200]
    [--warmup 200] [--snapshot-samples 60] [--profile 2000] [--threads 150] [--smoke]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import html
import json
import math
import os
import pstats
import re
import secrets
import shlex
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, ServerStartError, code_versions, machine_facts, print_quiet, summary  # noqa: E402

from websockets.sync.client import connect as ws_connect  # noqa: E402

CHARTS = "/api/v1/charts"
SNAPSHOT = "/api/v1/snapshot"
ADMIN = "bench-admin"
PASSWORD = "bench-" + secrets.token_urlsafe(12)
CODE = ("security/edge.py", "security/__init__.py", "services/accounts.py", "storage/db.py", "config.py")


class BenchError(RuntimeError):
    """Setup or a correctness check failed (not a timing)."""


# ---- setup ---------------------------------------------------------------------------------------
def start_pair(args) -> tuple[Server, Server]:
    """A (local) and B (on), identical otherwise, started at the same time."""
    common = {"MLOPS_STATS_INTERVAL_S": "1", "MLOPS_CHART_WINDOW_S": str(max(10, args.snapshot_samples))}
    a = Server(kind="gunicorn", threads=args.threads)
    b = Server(kind="gunicorn", threads=args.threads)
    for server in (a, b):
        server.env.update(common)
        for name in ("MLOPS_AUTH", "MLOPS_ADMIN_USER", "MLOPS_ADMIN_PASSWORD", "MLOPS_ALLOWED_HOSTS",
                     "MLOPS_ALLOWED_ORIGINS", "MLOPS_SECRET_KEY", "MLOPS_URL_PREFIX", "MLOPS_DATABASE_URL"):
            server.env.pop(name, None)  # nothing from the caller's environment may differ between them
    a.env["MLOPS_AUTH"] = "local"
    b.env.update({"MLOPS_AUTH": "on", "MLOPS_ADMIN_USER": ADMIN, "MLOPS_ADMIN_PASSWORD": PASSWORD})
    errors: list[BaseException] = []

    def start(server: Server) -> None:
        try:
            server.start()
        except BaseException as exc:  # noqa: BLE001 - reported below, after both tried
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        a.stop()
        b.stop()
        raise errors[0]
    return a, b


def login(server: Server) -> requests.Session:
    """A session holding B's login cookie, obtained through the /login form like a browser."""
    s = requests.Session()
    r = s.get(f"{server.url}/login", timeout=10)
    match = re.search(r'name="csrf_token" value="([^"]*)"', r.text)
    if r.status_code != 200 or match is None:
        raise BenchError(f"GET /login: HTTP {r.status_code}, no csrf_token input: {r.text[:200]}")
    form = {"username": ADMIN, "password": PASSWORD, "csrf_token": html.unescape(match.group(1)), "next": "/"}
    r = s.post(f"{server.url}/login", data=form, allow_redirects=False, timeout=30)
    if r.status_code != 303 or "mlops_session" not in s.cookies:
        raise BenchError(f"POST /login: HTTP {r.status_code}, cookies {sorted(s.cookies.keys())}: {r.text[:200]}")
    return s


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def expect(r: requests.Response, status: int, what: str) -> requests.Response:
    if r.status_code != status:
        raise BenchError(f"{what}: expected HTTP {status}, got {r.status_code}: {r.text[:300]}")
    return r


def stats_event(i: int) -> dict:
    return {
        "type": "system_stats",
        "data": {
            "host": "bench", "cpu_percent": 12.5 + i % 7, "cpu_per_core": [10.0 + i % 5, 15.0], "load_1": 0.5,
            "load_5": 0.4, "load_15": 0.3, "mem_percent": 41.2, "mem_used": 9_800_000_000 + i,
            "mem_total": 25_000_000_000, "swap_percent": 0.0, "disk_path": "/", "disk_percent": 63.1,
            "disk_used": 60_000_000_000, "disk_free": 35_000_000_000, "disk_total": 95_000_000_000,
            "disk_read_bps": 1024.0 * (i % 3), "disk_write_bps": 4096.0, "net_sent_bps": 2000.0 + i,
            "net_recv_bps": 3000.0, "process_rss": 250_000_000, "interval_s": 1.0,
        },
    }


def setup(a: Server, b: Server, args) -> dict:
    """Token, login cookie, sessions, correctness checks, snapshot contents; returns the clients."""
    t0 = time.monotonic()
    r = expect(requests.post(f"{b.url}/api/v1/tokens", auth=(ADMIN, PASSWORD), json={"name": "bench"}, timeout=30),
               201, "POST /api/v1/tokens (Basic)")
    token = r.json()["token"]
    sa = requests.Session()
    sb_token = requests.Session()
    sb_token.headers["Authorization"] = f"Bearer {token}"
    sb_cookie = login(b)
    setup_s = time.monotonic() - t0

    who = {
        "A": expect(sa.get(f"{a.url}/api/v1/me", timeout=10), 200, "A /me").json(),
        "B bearer": expect(sb_token.get(f"{b.url}/api/v1/me", timeout=10), 200, "B /me bearer").json(),
        "B cookie": expect(sb_cookie.get(f"{b.url}/api/v1/me", timeout=10), 200, "B /me cookie").json(),
    }
    wanted = {"A": ("local", "local"), "B bearer": ("token", "on"), "B cookie": ("session", "on")}
    for key, (auth, mode) in wanted.items():
        if who[key].get("auth") != auth or who[key].get("mode") != mode:
            raise BenchError(f"{key}: /api/v1/me says {who[key]}, expected auth={auth} mode={mode}")
    anonymous = requests.get(f"{b.url}{CHARTS}", timeout=10)
    expect(anonymous, 401, "B without credentials")
    wrong = requests.get(f"{b.url}{CHARTS}", headers={"Authorization": "Bearer mlops_" + "x" * 43}, timeout=10)
    expect(wrong, 401, "B with an unknown token")

    for i in range(args.snapshot_samples):
        body = stats_event(i)
        expect(sa.post(f"{a.url}/api/v1/events", json=body, timeout=10), 201, "A POST /api/v1/events")
        expect(sb_token.post(f"{b.url}/api/v1/events", json=body, timeout=10), 201, "B POST /api/v1/events")
    bodies = {}
    for path in (CHARTS, SNAPSHOT):
        ja = expect(sa.get(f"{a.url}{path}", timeout=10), 200, f"A {path}")
        jb = expect(sb_token.get(f"{b.url}{path}", timeout=10), 200, f"B {path}")
        jc = expect(sb_cookie.get(f"{b.url}{path}", timeout=10), 200, f"B cookie {path}")
        bodies[path] = (len(ja.content), len(jb.content), len(jc.content))
        if path == CHARTS and not (ja.json() == jb.json() == jc.json()):
            raise BenchError("GET /api/v1/charts differs between A and B")
        if path == SNAPSHOT:
            n = [len(x.json()["samples"]) for x in (ja, jb, jc)]
            if n != [args.snapshot_samples] * 3:
                raise BenchError(f"snapshot samples A / B / B cookie = {n}, expected {args.snapshot_samples}")
    print(f"setup: token and login in {setup_s:.2f} s (argon2 verifications); /api/v1/me: A {who['A']['auth']}, "
          f"B {who['B bearer']['auth']} / {who['B cookie']['auth']}; B without credentials and with an unknown "
          f"token: 401; response bytes A / B bearer / B cookie: "
          + ", ".join(f"{p} {x[0]} / {x[1]} / {x[2]}" for p, x in bodies.items()))
    return {"token": token, "A": sa, "B bearer": sb_token, "B cookie": sb_cookie}


# ---- measuring -----------------------------------------------------------------------------------
def order(i: int) -> tuple[int, int]:
    """A,B then B,A then A,B ...: neither server is always first."""
    return (0, 1) if i % 2 == 0 else (1, 0)


def http_pair(a: Server, b: Server, sa: requests.Session, sb: requests.Session, path: str, n: int, warmup: int) -> dict:
    urls = (f"{a.url}{path}", f"{b.url}{path}")
    sessions = (sa, sb)
    times: tuple[list[float], list[float]] = ([], [])
    errors: list[str] = []

    def one(k: int, keep: bool) -> None:
        t0 = time.perf_counter_ns()
        try:
            r = sessions[k].get(urls[k], timeout=30)
            status = r.status_code
        except requests.RequestException as exc:
            errors.append(f"{'AB'[k]}: {type(exc).__name__}: {exc}")
            return
        t1 = time.perf_counter_ns()
        if status != 200:
            errors.append(f"{'AB'[k]}: HTTP {status} {r.text[:120]}")
        elif keep:
            times[k].append((t1 - t0) / 1e6)

    for i in range(warmup):
        for k in order(i):
            one(k, False)
    cpu0 = (a.cpu_s(), b.cpu_s())
    t0 = time.monotonic()
    for i in range(n):
        for k in order(i):
            one(k, True)
    wall = time.monotonic() - t0
    cpu = (a.cpu_s() - cpu0[0], b.cpu_s() - cpu0[1])
    return compare(times[0], times[1], errors, cpu, wall)


def ws_once(url: str, headers: dict[str, str]) -> float:
    t0 = time.perf_counter_ns()
    with ws_connect(url, additional_headers=headers, open_timeout=10, close_timeout=5, proxy=None) as ws:
        raw = ws.recv(timeout=10)
        t1 = time.perf_counter_ns()
    hello = json.loads(raw)
    if hello.get("kind") != "hello":
        raise BenchError(f"expected a hello frame, got {raw[:200]}")
    return (t1 - t0) / 1e6


def ws_pair(a: Server, b: Server, headers_b: dict[str, str], n: int, warmup: int) -> dict:
    urls, headers = (a.ws_url, b.ws_url), ({}, headers_b)
    times: tuple[list[float], list[float]] = ([], [])
    errors: list[str] = []

    def one(k: int, keep: bool) -> None:
        try:
            ms = ws_once(urls[k], headers[k])
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{'AB'[k]}: {type(exc).__name__}: {exc}")
            return
        if keep:
            times[k].append(ms)

    for i in range(warmup):
        for k in order(i):
            one(k, False)
    cpu0 = (a.cpu_s(), b.cpu_s())
    t0 = time.monotonic()
    for i in range(n):
        for k in order(i):
            one(k, True)
    wall = time.monotonic() - t0
    cpu = (a.cpu_s() - cpu0[0], b.cpu_s() - cpu0[1])
    return compare(times[0], times[1], errors, cpu, wall)


def compare(ta: list[float], tb: list[float], errors: list[str], cpu: tuple[float, float], wall: float) -> dict:
    sa, sb = summary(ta), summary(tb)
    mean_a = statistics.fmean(ta) if ta else math.nan
    mean_b = statistics.fmean(tb) if tb else math.nan
    paired = [y - x for x, y in zip(ta, tb)]
    quarters = []
    k = len(paired) // 4
    if k >= 5:
        for q in range(4):
            qa, qb = ta[q * k:(q + 1) * k], tb[q * k:(q + 1) * k]
            quarters.append(statistics.median(qb) / statistics.median(qa))
    return {
        "A": sa | {"mean": mean_a}, "B": sb | {"mean": mean_b},
        "ratio_p50": sb["p50"] / sa["p50"] if ta and tb else math.nan,
        "ratio_mean": mean_b / mean_a if ta and tb else math.nan,
        "added_p50_us": (sb["p50"] - sa["p50"]) * 1000 if ta and tb else math.nan,
        "added_mean_us": (mean_b - mean_a) * 1000 if ta and tb else math.nan,
        "paired_us": statistics.median(paired) * 1000 if paired else math.nan,
        "quarters": quarters,
        "errors": errors,
        "cpu_s": cpu,
        "cpu_us": (cpu[0] / len(ta) * 1e6 if ta else math.nan, cpu[1] / len(tb) * 1e6 if tb else math.nan),
        "wall_s": wall,
    }


def print_pair(label: str, r: dict) -> None:
    a, b = r["A"], r["B"]
    q = " ".join(f"{x:.3f}" for x in r["quarters"]) or "-"
    print(f"  {label}: A p50 {a['p50']:.3f} p90 {a['p90']:.3f} p99 {a['p99']:.3f} mean {a['mean']:.3f} max {a['max']:.2f} ms"
          f" | B p50 {b['p50']:.3f} p90 {b['p90']:.3f} p99 {b['p99']:.3f} mean {b['mean']:.3f} max {b['max']:.2f} ms (n={b['n']})")
    print(f"    ratio B/A p50 {r['ratio_p50']:.3f}, mean {r['ratio_mean']:.3f}; added p50 {r['added_p50_us']:+.0f} us, "
          f"mean {r['added_mean_us']:+.0f} us, paired median {r['paired_us']:+.0f} us; ratio p50 per quarter {q}; "
          f"server CPU A {r['cpu_s'][0]:.2f} s ({r['cpu_us'][0]:.0f} us/req), B {r['cpu_s'][1]:.2f} s "
          f"({r['cpu_us'][1]:.0f} us/req); {r['wall_s']:.1f} s; errors {len(r['errors'])}")
    for err in r["errors"][:3]:
        print(f"    error: {err}")


def print_table(http: list[tuple[str, str, dict]], ws: list[tuple[str, str, dict]], cpu_total: tuple[float, float], n_total: int) -> None:
    print("\n== summary: B (MLOPS_AUTH=on) vs A (MLOPS_AUTH=local); client-side ms, requests interleaved; "
          "us = microseconds added per request ==")
    head = (f"{'request':<22} {'variant':<16} {'n':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'mean':>7} "
            f"{'ratio p50':>9} {'ratio mean':>10} {'+us p50':>8} {'+us mean':>8} {'+us paired':>10} "
            f"{'srv CPU us/req':>14} {'ratio CPU':>9}")
    print(head)
    for rows in (http, ws):
        for request, cred, r in rows:
            a, b = r["A"], r["B"]
            print(f"{request:<22} {'A local':<16} {a['n']:>5} {a['p50']:>7.3f} {a['p90']:>7.3f} {a['p99']:>7.3f} "
                  f"{a['mean']:>7.3f} {'':>9} {'':>10} {'':>8} {'':>8} {'':>10} {r['cpu_us'][0]:>14.0f}")
            print(f"{'':<22} {'B on, ' + cred:<16} {b['n']:>5} {b['p50']:>7.3f} {b['p90']:>7.3f} {b['p99']:>7.3f} "
                  f"{b['mean']:>7.3f} {r['ratio_p50']:>9.3f} {r['ratio_mean']:>10.3f} {r['added_p50_us']:>+8.0f} "
                  f"{r['added_mean_us']:>+8.0f} {r['paired_us']:>+10.0f} {r['cpu_us'][1]:>14.0f} "
                  f"{r['cpu_us'][1] / r['cpu_us'][0] if r['cpu_us'][0] else math.nan:>9.3f}")
    ratio = cpu_total[1] / cpu_total[0] if cpu_total[0] else math.nan
    print(f"server CPU during the HTTP phase: A (local) {cpu_total[0]:.2f} s, B (on) {cpu_total[1]:.2f} s, "
          f"ratio B/A {ratio:.3f} (each server answered {n_total} measured requests)")


# ---- in-process profile --------------------------------------------------------------------------
def median_us(fn, calls: int, rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean thread CPU time of ``calls`` back-to-back calls, microseconds.

    Thread CPU time leaves out the time this thread waited for a core, so other work on a shared
    machine disturbs it less than wall time (a SQLite read from the page cache is CPU time too)."""
    per = []
    for _ in range(rounds):
        t0 = time.thread_time_ns()
        for _ in range(calls):
            fn()
        per.append((time.thread_time_ns() - t0) / calls / 1000)
    return statistics.median(per)


EVICT = bytearray(64 * 2**20)
EVICT_ONES = b"\x01" * (len(EVICT) // 64)


def evict_caches() -> None:
    """Write one byte per 64-byte line of 64 MiB: the CPU caches then hold none of the server's code or
    data, as after another process ran on the core (in the live run the client and the other server
    run between two requests). ~15 ms; never timed."""
    EVICT[::64] = EVICT_ONES


def cold_us(fn) -> float:
    evict_caches()
    t0 = time.thread_time_ns()
    fn()
    return (time.thread_time_ns() - t0) / 1000


class Meter:
    """Thread CPU time spent inside chosen functions of the in-process apps, per phase and variant.

    The functions are swapped for timing wrappers on the app objects (never in the code), and put back."""

    def __init__(self):
        self.key: tuple[str, str] = ("", "")
        self.ns: dict[tuple[str, str, str], int] = {}
        self.count: dict[tuple[str, str], int] = {}
        self._undo: list = []

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            t0 = time.thread_time_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                key = (*self.key, name)
                self.ns[key] = self.ns.get(key, 0) + time.thread_time_ns() - t0
        return timed

    def patch_attr(self, obj, attr: str, name: str) -> None:
        had, before = attr in vars(obj), vars(obj).get(attr)
        setattr(obj, attr, self.wrap(name, getattr(obj, attr)))
        self._undo.append(lambda: setattr(obj, attr, before) if had else delattr(obj, attr))

    def patch_list(self, funcs: list, target, name: str) -> None:
        index = funcs.index(target)
        funcs[index] = self.wrap(name, target)
        self._undo.append(lambda: funcs.__setitem__(index, target))

    def request(self, phase: str, variant: str, fn):
        self.key = (phase, variant)
        self.count[self.key] = self.count.get(self.key, 0) + 1
        return self.wrap("whole request", fn)()

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()

    def us(self, phase: str, variant: str, name: str) -> float:
        n = self.count.get((phase, variant), 0)
        return self.ns.get((phase, variant, name), 0) / n / 1000 if n else math.nan


def edge_of(server) -> object:
    for fn in server.before_request_funcs.get(None, []):
        owner = getattr(fn, "__self__", None)
        if type(owner).__name__ == "Edge":
            return owner
    raise BenchError("no Edge.before in before_request_funcs")


def profile(n: int, rounds: int) -> None:
    import logging

    logging.getLogger("mlops").setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import select

    from app import create_app
    from config import Settings
    from services.accounts import hash_token
    from storage.models import ApiToken, User

    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-auth-"))
    apps = []
    try:
        base = {"background": False, "min_free_disk_mb": 0, "event_log": "memory://", "host": "127.0.0.1"}
        local_app = create_app(Settings(data_dir=tmp / "local", auth="local", **base))
        on_app = create_app(Settings(data_dir=tmp / "on", auth="on", admin_user=ADMIN, admin_password=PASSWORD, **base))
        apps = [local_app, on_app]
        runtime = on_app.mlops
        local_client = local_app.server.test_client()
        token_client = on_app.server.test_client()
        basic = "Basic " + base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()
        r = token_client.post("/api/v1/tokens", headers={"Authorization": basic}, json={"name": "profile"})
        if r.status_code != 201:
            raise BenchError(f"in-process POST /api/v1/tokens: {r.status_code} {r.get_data(as_text=True)[:200]}")
        token = r.get_json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        cookie_client = on_app.server.test_client()
        page = cookie_client.get("/login").get_data(as_text=True)
        csrf = html.unescape(re.search(r'name="csrf_token" value="([^"]*)"', page).group(1))
        r = cookie_client.post("/login", data={"username": ADMIN, "password": PASSWORD, "csrf_token": csrf, "next": "/"})
        if r.status_code != 303:
            raise BenchError(f"in-process login: HTTP {r.status_code}")
        cookie = cookie_client.get_cookie("mlops_session")
        checks = {
            "local": local_client.get("/api/v1/me").get_json(),
            "bearer": token_client.get("/api/v1/me", headers=bearer).get_json(),
            "cookie": cookie_client.get("/api/v1/me").get_json(),
        }
        if [checks[k].get("auth") for k in ("local", "bearer", "cookie")] != ["local", "token", "session"]:
            raise BenchError(f"in-process /api/v1/me: {checks}")

        def get(client, headers=None):
            return lambda: client.get(CHARTS, headers=headers)

        variants = {"A local": get(local_client), "B bearer": get(token_client, bearer), "B cookie": get(cookie_client)}
        for fn in variants.values():
            for _ in range(50):
                fn()
        local_edge, on_edge = edge_of(local_app.server), edge_of(on_app.server)
        meter = Meter()
        for app_, edge in ((local_app, local_edge), (on_app, on_edge)):
            meter.patch_list(app_.server.before_request_funcs[None], edge.before, "Edge.before")
            meter.patch_list(app_.server.after_request_funcs[None], edge.after, "Edge.after")
            meter.patch_attr(app_.server.session_interface, "open_session", "open_session (cookie decode)")
        meter.patch_attr(runtime.accounts, "token_principal", "  Accounts.token_principal")
        meter.patch_attr(runtime.accounts, "session_user", "  Accounts.session_user")
        calls = max(10, n // 10)
        per_request: dict[str, list[float]] = {k: [] for k in variants}
        try:
            for _ in range(rounds):  # variants take turns, so drifting machine load hits all of them
                for key, fn in variants.items():
                    per_request[key].append(median_us(lambda: meter.request("warm", key, fn), calls, rounds=1))
            cold_calls = max(10, n // 20)
            per_cold: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(cold_calls):
                for key, fn in variants.items():
                    per_cold[key].append(cold_us(lambda: meter.request("cold", key, fn)))
        finally:
            meter.undo()
        if edge_of(on_app.server) is not on_edge or "token_principal" in vars(runtime.accounts):
            raise BenchError("the timing wrappers were not removed")

        def line(values: dict[str, list[float]]) -> str:
            m = {k: statistics.median(v) for k, v in values.items()}
            a = m["A local"]
            return (", ".join(f"{k} {v:.0f} us" for k, v in m.items())
                    + f"; B bearer - A {m['B bearer'] - a:+.0f} us ({m['B bearer'] / a:.3f}x), "
                    f"B cookie - A {m['B cookie'] - a:+.0f} us ({m['B cookie'] / a:.3f}x)")

        print(f"\n== in-process profile (Flask test client, GET {CHARTS}; thread CPU time) ==")
        print(f"  per request, warm caches (median of {rounds} rounds of {calls} back-to-back requests): {line(per_request)}")
        print(f"  per request, caches evicted before each (median of {cold_calls}): {line(per_cold)}")
        print("  inside those requests, thread CPU us per request (means; indented: part of the line above):")
        names = ["whole request", "Edge.before", "  Accounts.token_principal", "  Accounts.session_user",
                 "open_session (cookie decode)", "Edge.after"]
        print(f"    {'':<30}" + "".join(f"{phase + ' ' + k:>18}" for phase in ("warm", "cold") for k in variants))
        for name_ in names + ["rest of the request"]:
            cells = []
            for phase in ("warm", "cold"):
                for k in variants:
                    if name_ == "rest of the request":
                        v = meter.us(phase, k, "whole request") - sum(
                            meter.us(phase, k, x) for x in names[1:] if not x.startswith(" ") and not math.isnan(meter.us(phase, k, x)))
                    else:
                        v = meter.us(phase, k, name_)
                    cells.append(f"{v:>18.1f}" if v == v and v != 0 else f"{'-':>18}")
            print(f"    {name_:<30}" + "".join(cells))

        # Stages, timed directly.
        accounts, db = runtime.accounts, runtime.db
        digest = hash_token(token)
        user_principal = accounts.token_principal(token)
        uid = user_principal.user_id
        version = accounts.authenticate(ADMIN, PASSWORD).session_version
        stmt = select(ApiToken, User).join(User).where(ApiToken.token_hash == digest)
        sqlite_path = db.engine.url.database if db.engine.dialect.name == "sqlite" else None
        raw = sqlite3.connect(sqlite_path, check_same_thread=False) if sqlite_path else None
        raw_sql = ("SELECT api_tokens.*, users.* FROM api_tokens JOIN users ON users.id = api_tokens.user_id "
                   "WHERE api_tokens.token_hash = ?")
        stage_calls = max(50, n // 4)

        def empty_session():
            with db.session():
                pass

        def core_query():
            with db.engine.connect() as conn:
                conn.execute(stmt).first()

        def orm_query():
            with db.session() as s:
                s.execute(stmt).first()

        def checkout():
            with db.engine.connect():
                pass

        cookie_headers = {"Cookie": f"mlops_session={cookie.value}"}
        response = on_app.server.response_class("{}", mimetype="application/json")
        interface = on_app.server.session_interface
        nothing = contextlib.nullcontext
        # (label, function, a factory of the context it runs in): a request context is pushed per round.
        stages = [
            ("hash_token (sha256 of the token)", lambda: hash_token(token), nothing),
            ("db.session() with no statement", empty_session, nothing),
            ("engine.connect() checkout + return (pool reset = rollback)", checkout, nothing),
        ]
        if raw is not None:
            stages.append(("token query, raw sqlite3 (same SQL, own connection)",
                           lambda: raw.execute(raw_sql, (digest,)).fetchone(), nothing))
        stages += [
            ("build the token select() (done per call in token_principal)",
             lambda: select(ApiToken, User).join(User).where(ApiToken.token_hash == digest), nothing),
            ("token query, SQLAlchemy Core (engine.connect + execute + first)", core_query, nothing),
            ("token query, ORM (db.session + execute prebuilt select + first + commit)", orm_query, nothing),
            ("Accounts.token_principal (whole)", lambda: accounts.token_principal(token), nothing),
            ("Accounts.session_user (the cookie's user row)", lambda: accounts.session_user(uid, version), nothing),
            ("open_session: verify + decode the login cookie", lambda: interface.open_session(on_app.server, flask_request()),
             lambda: on_app.server.test_request_context(CHARTS, headers=cookie_headers)),
        ]
        for label, app_, edge, headers in (("A local", local_app, local_edge, {}), ("B bearer", on_app, on_edge, bearer),
                                           ("B cookie", on_app, on_edge, cookie_headers)):
            context = (lambda a=app_, h=headers: a.server.test_request_context(CHARTS, headers=h))
            stages.append((f"Edge.before, {label}", edge.before, context))
            stages.append((f"Edge.after, {label}", (lambda e=edge: e.after(response)), context))
        per_stage: dict[str, list[float]] = {label: [] for label, _, _ in stages}
        for _ in range(rounds):  # stages take turns, so drifting machine load hits all of them
            for label, fn, context in stages:
                with context():
                    per_stage[label].append(median_us(fn, stage_calls, rounds=1))
        if raw is not None:
            raw.close()
        print(f"  stages, warm caches (thread CPU us per call: median and min of {rounds} rounds of {stage_calls} calls, "
              "stages interleaved):")
        for label, values in per_stage.items():
            print(f"    {statistics.median(values):8.1f} us  (min {min(values):7.1f})  {label}")

        # cProfile: where B's extra time goes, function by function.
        profiles = {}
        for key in ("A local", "B bearer"):
            prof = cProfile.Profile()
            fn = variants[key]
            prof.enable()
            for _ in range(n):
                fn()
            prof.disable()
            profiles[key] = pstats.Stats(prof).stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
        a_stats, b_stats = profiles["A local"], profiles["B bearer"]
        total_a = sum(v[2] for v in a_stats.values()) / n * 1e6
        total_b = sum(v[2] for v in b_stats.values()) / n * 1e6
        print(f"  cProfile, {n} requests each: total {total_a:.0f} us/request (A local) vs {total_b:.0f} (B bearer), "
              f"{total_b - total_a:+.0f} us under the profiler")

        def name(key) -> str:
            file, line, func = key
            try:
                file = str(Path(file).resolve().relative_to(ROOT))
            except ValueError:
                parts = Path(file).parts
                file = "/".join(parts[parts.index("site-packages") + 1:]) if "site-packages" in parts else Path(file).name
            return f"{file}:{line}({func})"

        harness = ("werkzeug/test.py", "flask/testing.py", "bench/auth_overhead.py")
        rows = []
        for key in set(a_stats) | set(b_stats):
            if any(key[0].endswith(h) for h in harness):
                continue  # the test client and this script: the same work for both
            ca = a_stats.get(key, (0, 0, 0.0, 0.0))
            cb = b_stats.get(key, (0, 0, 0.0, 0.0))
            rows.append(((cb[3] - ca[3]) / n * 1e6, (cb[2] - ca[2]) / n * 1e6, cb[1] / n, ca[1] / n, key))
        print("  functions whose cumulative time per request grows most (B bearer - A local; calls per request B / A):")
        for cum, own, calls_b, calls_a, key in sorted(rows, key=lambda x: -x[0])[:25]:
            print(f"    cum {cum:+7.1f} us  own {own:+6.1f} us  calls {calls_b:5.1f} / {calls_a:5.1f}  {name(key)}")
        print("  functions whose own time per request grows most:")
        for cum, own, calls_b, calls_a, key in sorted(rows, key=lambda x: -x[1])[:15]:
            print(f"    own {own:+6.1f} us  cum {cum:+7.1f} us  calls {calls_b:5.1f} / {calls_a:5.1f}  {name(key)}")
    finally:
        for app_ in apps:
            try:
                app_.mlops.stop()
            except Exception:  # noqa: BLE001 - cleaning up after the profile
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def flask_request():
    import flask

    return flask.request._get_current_object()


# ---- main ----------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="measured requests per server per pair (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="unmeasured requests per server before each pair (default 200)")
    ap.add_argument("--connects", type=int, default=200, help="measured WebSocket connects per server per pair (default 200)")
    ap.add_argument("--snapshot-samples", type=int, default=60, help="system_stats samples in the snapshot (default 60)")
    ap.add_argument("--threads", type=int, default=150, help="gunicorn --threads for both servers (default 150)")
    ap.add_argument("--profile", type=int, default=2000, help="requests per in-process profile, 0 to skip (default 2000)")
    ap.add_argument("--wait-quiet", type=float, default=60.0, help="wait up to this many s for an idle machine first (0: no check)")
    ap.add_argument("--smoke", action="store_true",
                    help="a short run through every code path: 30 requests, 10 connects, 5 warm-up, profile 50, no idle wait")
    args = ap.parse_args()
    if args.smoke:
        args.requests, args.warmup, args.connects, args.profile, args.wait_quiet = 30, 5, 10, 50, 0.0
        args.snapshot_samples = min(args.snapshot_samples, 10)
    if args.requests < 1 or args.connects < 1 or args.warmup < 0 or args.snapshot_samples < 0:
        ap.error("--requests and --connects must be >= 1, --warmup and --snapshot-samples >= 0")

    print(f"machine: {machine_facts()}")
    print(f"code: {code_versions(*CODE)}")
    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(f"load average before start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.wait_quiet > 0:
        print_quiet(args.wait_quiet)
    else:
        print("machine CPU check skipped (--wait-quiet 0 / --smoke)")
    started = time.monotonic()
    failed = False
    a = b = None
    try:
        a, b = start_pair(args)
        print(f"A: {a.describe()}; MLOPS_AUTH=local; pid {a.proc.pid}")
        print(f"B: {b.describe()}; MLOPS_AUTH=on, admin {ADMIN}; pid {b.proc.pid}")
        print(f"both: 127.0.0.1, own SQLite in a temp dir, MLOPS_STATS_INTERVAL_S=1, "
              f"MLOPS_CHART_WINDOW_S={a.env['MLOPS_CHART_WINDOW_S']}; started in {time.monotonic() - started:.1f} s")
        clients = setup(a, b, args)

        http: list[tuple[str, str, dict]] = []
        cpu_total = [0.0, 0.0]
        print(f"\nHTTP: {args.requests} requests per server per pair after {args.warmup} unmeasured, interleaved")
        for path in (CHARTS, SNAPSHOT):
            for cred in ("bearer", "cookie"):
                r = http_pair(a, b, clients["A"], clients[f"B {cred}"], path, args.requests, args.warmup)
                print_pair(f"GET {path}, B {cred}", r)
                http.append((f"GET {path}", cred, r))
                cpu_total[0] += r["cpu_s"][0]
                cpu_total[1] += r["cpu_s"][1]
                failed |= bool(r["errors"])

        ws: list[tuple[str, str, dict]] = []
        print(f"\nWebSocket: {args.connects} connects per server per pair, connect start -> hello frame, interleaved")
        ws_warmup = min(args.warmup, 20)
        for cred, headers in (("bearer", {"Authorization": f"Bearer {clients['token']}"}),
                              ("cookie", {"Cookie": cookie_header(clients["B cookie"])})):
            r = ws_pair(a, b, headers, args.connects, ws_warmup)
            print_pair(f"/ws, B {cred}", r)
            ws.append(("WS /ws connect->hello", cred, r))
            failed |= bool(r["errors"])

        print_table(http, ws, (cpu_total[0], cpu_total[1]), len(http) * args.requests)
    except (ServerStartError, BenchError) as exc:
        failed = True
        print(f"\n!! {type(exc).__name__}: {exc}")
    finally:
        for s in (a, b):
            if s is not None:
                s.stop()
    if args.profile > 0 and not failed:
        try:
            profile(args.profile, rounds=3 if args.smoke else 7)
        except BenchError as exc:
            failed = True
            print(f"\n!! profile: {exc}")
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
