#!/usr/bin/env python
"""CSV upload: the dashboard's streamed multipart endpoint vs. the ``dcc.Upload`` callback path.

For each size in ``--sizes`` (MB, 1 MB = 2**20 bytes) a CSV with mixed columns
(id,count,score,ratio,category,comment) is generated block by block in a temp dir, then:

* ``stream``: a fresh dashboard (``python app.py``, own temp data dir, ``MLOPS_BACKGROUND=false``) is
  started, warmed up with a tiny upload, and the file is POSTed to ``/api/v1/datasets?upload_id=``
  as a real ``multipart/form-data`` body that is never held in memory by the client: the
  Content-Length is computed from the multipart preamble + file size + epilogue and the body is sent
  in 1 MiB chunks with ``http.client``.
* ``dcc.Upload`` (sizes in ``--dash-sizes``): a minimal separate Dash app (source written to the
  temp dir) with ``dcc.Upload(id="up")`` and a callback ``Output("out", "children")`` /
  ``Input("up", "contents")`` that splits the data URL, base64-decodes it and runs
  ``pandas.read_csv``. The benchmark POSTs to ``/_dash-update-component`` the body the Dash renderer
  sends (``output``, ``outputs``, ``inputs``, ``changedPropIds``, ``parsedChangedPropsIds``, and the
  page's ``endId`` query argument). Building that body (read file, base64, JSON) is the browser's
  cost: it is done and timed in this process before the request, and not counted in server RSS.

Measured per upload: wall time from the first byte sent to the response (and its split: time to
the last byte sent vs. the rest, i.e. server-side parsing after the body arrived; loopback socket
buffers are a few MB, so "last byte sent" is within milliseconds of "last byte received"), MB/s, the
server process's RSS (psutil every 20 ms in a thread: baseline after warm-up, peak, growth; plus the
kernel's exact high-water mark VmHWM as a check) and the server's CPU seconds. Every measurement
uses a freshly started server, so one upload's retained memory does not hide the next one's.

Only 127.0.0.1 is touched. Servers run in their own process group and are always stopped; temp
files are deleted unless ``--keep``. Every wait is bounded (``--timeout`` per request).

``--smoke``: streamed 1 and 2 MB, dcc.Upload 1 MB (~10 s).

Run from the repo root:  .venv/bin/python bench/upload.py [--sizes 10,100,500] [--dash-sizes 10,100] [--keep] [--smoke]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
MB = 2**20
CHUNK = 1 * MB
HOST = "127.0.0.1"
SAMPLE_S = 0.02

DASH_APP_SOURCE = '''\
"""Minimal Dash app: the usual dcc.Upload -> base64 -> pandas.read_csv callback (benchmark only)."""
import base64
import io
import sys

import dash
import pandas as pd
from dash import Input, Output, dcc, html

app = dash.Dash(__name__)
app.layout = html.Div([dcc.Upload(id="up", children=html.Div("Drop a CSV here")), html.Div(id="out")])


@app.callback(Output("out", "children"), Input("up", "contents"), prevent_initial_call=True)
def parse(contents):
    if contents is None:
        return dash.no_update
    content_type, content_string = contents.split(",", 1)
    decoded = base64.b64decode(content_string)
    df = pd.read_csv(io.BytesIO(decoded))
    return f"{len(df)} rows"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), debug=False, threaded=True)
'''


# -- machine ---------------------------------------------------------------------------------------
def machine_facts() -> list[str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    vm = psutil.virtual_memory()
    import dash  # only for its version

    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", ".", ":!bench"], capture_output=True, text=True, timeout=5, check=False).stdout
        changed = len([line for line in dirty.splitlines() if line.strip()])
        code = f"code {head}" + (f" + {changed} uncommitted change(s) outside bench/" if changed else " (clean)")
    except (OSError, subprocess.SubprocessError):
        code = "code: git unavailable"
    return [
        f"date      {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}",
        (
            f"machine   {os.cpu_count()} cores ({psutil.cpu_count(logical=False)} physical) | CPU {model} | "
            f"RAM {vm.total / 2**30:.1f} GiB ({vm.available / 2**30:.1f} GiB available) | {platform.system()} {platform.release()}"
        ),
        f"software  Python {platform.python_version()} | pandas {pd.__version__} | numpy {np.__version__} | dash {dash.__version__} | {code}",
    ]


# -- CSV generation --------------------------------------------------------------------------------
_WORDS_TEXT = (
    "model training loss accuracy epoch batch gradient drift feature label deploy rollback canary "
    "latency throughput cluster node gpu memory pipeline dataset version schema metric alert review "
    "approve retrain baseline shadow traffic request error timeout retry queue worker cache index"
)
WORDS = _WORDS_TEXT.split()
CATEGORIES = np.array(["train", "validation", "test", "holdout", "shadow", "canary", "prod", "staging", "archive", "scratch", "gold", "silver"])
HEADER = b"id,count,score,ratio,category,comment\n"


def _phrases(rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    out = []
    for i in range(n):
        k = int(rng.integers(2, 9))
        text = " ".join(rng.choice(WORDS, size=k))
        if i % 25 == 0:
            text = text.replace(" ", ", ", 1)  # some cells need quoting
        out.append(text)
    return np.array(out, dtype=object)


def _tail_block(rng: np.random.Generator, phrases: np.ndarray, n: int) -> list[str]:
    """``n`` CSV lines of every column but ``id`` (pandas formats and quotes them), as a list."""
    ratio = np.round(rng.random(n), 4)
    ratio[rng.random(n) < 0.01] = np.nan  # empty cells
    frame = pd.DataFrame(
        {
            "count": rng.integers(0, 100_000, n),
            "score": np.round(rng.normal(50.0, 15.0, n), 6),
            "ratio": ratio,
            "category": CATEGORIES[rng.integers(0, len(CATEGORIES), n)],
            "comment": phrases[rng.integers(0, len(phrases), n)],
        }
    )
    return frame.to_csv(header=False, index=False, lineterminator="\n").split("\n")[:-1]


def generate_csv(path: Path, size_bytes: int, seed: int = 7, block_rows: int = 100_000, templates: int = 8) -> int:
    """Write a CSV of ``size_bytes`` (cut at a line end) block by block; returns the data rows.

    pandas formats up to ``templates`` distinct blocks of ``block_rows`` rows (~7 MB each, built when
    first needed); each written block is one of them behind fresh sequential ids, so writing runs at
    ~100 MB/s and memory stays at a few blocks whatever the file size.
    """
    rng = np.random.default_rng(seed)
    phrases = _phrases(rng)
    tails: list[list[str]] = []
    rows = 0
    written = 0
    with open(path, "wb") as fh:
        fh.write(HEADER)
        written += len(HEADER)
        while written < size_bytes:
            if len(tails) < templates:
                tails.append(_tail_block(rng, phrases, block_rows))
                tail = tails[-1]
            else:
                tail = tails[int(rng.integers(0, len(tails)))]
            block = ("\n".join(map("{},{}".format, range(rows + 1, rows + 1 + len(tail)), tail)) + "\n").encode()
            room = size_bytes - written
            if len(block) > room:
                cut = block.rfind(b"\n", 0, room) + 1
                if cut == 0:  # not even one line fits: end with one whole line anyway
                    cut = block.find(b"\n") + 1
                block = block[:cut]
            fh.write(block)
            written += len(block)
            rows += block.count(b"\n")
    return rows


# -- processes -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Proc:
    """A server subprocess in its own process group, with its log in a file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path, port: int):
        self.name, self.cmd, self.env, self.cwd, self.log_path, self.port = name, cmd, env, cwd, log_path, port
        self.popen: subprocess.Popen | None = None
        self._log = None

    def start(self) -> Proc:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the server's lifetime, closed in stop()
        self.popen = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_http(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            try:
                status, body = http_get(self.port, path, timeout=3)
                if status == 200:
                    return
                last = f"HTTP {status} {body[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.popen.pid, sig)  # its own session: only this server (and its children)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()
            self._log = None


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- measurement -----------------------------------------------------------------------------------
def vm_hwm(pid: int) -> int | None:
    """Kernel's peak resident set size of the process since it started (Linux), bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class RssSampler(threading.Thread):
    """Samples a process's RSS every ``interval`` s until stopped; keeps (monotonic time, rss) pairs.

    With ``probe`` (a callable returning bytes the server has received so far) it also notes the first
    time the probe reached ``target`` bytes.
    """

    def __init__(self, pid: int, interval: float = SAMPLE_S, probe=None, target: int = 0):
        super().__init__(name=f"rss-{pid}", daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.probe = probe
        self.target = target
        self.t_received: float | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.samples.append((time.monotonic(), self.proc.memory_info().rss))
            except psutil.Error:
                return
            if self.probe is not None and self.t_received is None and self.probe() >= self.target:
                self.t_received = time.monotonic()
            self._stop_event.wait(self.interval)

    def stop(self) -> list[tuple[float, int]]:
        self._stop_event.set()
        self.join(timeout=5)
        return self.samples

    @staticmethod
    def peak(samples: list[tuple[float, int]], t0: float = -math.inf, t1: float = math.inf) -> int | None:
        values = [rss for t, rss in samples if t0 <= t <= t1]
        return max(values) if values else None


def baseline_rss(pid: int, seconds: float = 0.5) -> int:
    proc = psutil.Process(pid)
    values = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        values.append(proc.memory_info().rss)
        time.sleep(SAMPLE_S)
    return int(np.median(values))


def cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


@dataclass
class Result:
    path: str
    size_mb: float
    ok: bool = False
    status: int | None = None
    error: str = ""
    seconds: float = math.nan  # first byte sent -> response
    send_s: float = math.nan  # first byte -> last byte sent
    after_s: float = math.nan  # last byte sent -> response (server parse/profile)
    rows: int | None = None
    rows_expected: int | None = None
    baseline_mb: float = math.nan
    peak_mb: float = math.nan
    peak_recv_mb: float = math.nan  # peak while the body was being sent
    peak_after_mb: float = math.nan  # peak after the last byte (parsing)
    hwm_growth_mb: float = math.nan
    after_rss_mb: float = math.nan
    server_cpu_s: float = math.nan
    client_build_s: float = math.nan
    body_mb: float = math.nan
    client_rss_mb: float = math.nan
    extra: dict = field(default_factory=dict)

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.baseline_mb

    @property
    def mb_s(self) -> float:
        return self.size_mb / self.seconds if self.seconds and self.seconds > 0 else math.nan


def send_chunks(conn: http.client.HTTPConnection, source, remaining: int) -> None:
    """Send ``remaining`` bytes from a readable (file or memoryview-backed reader) in 1 MiB chunks."""
    while remaining > 0:
        chunk = source.read(min(CHUNK, remaining))
        if not chunk:
            raise RuntimeError(f"source ended {remaining} bytes early")
        conn.send(chunk)
        remaining -= len(chunk)


def post_streamed(port: int, path: str, content_type: str, parts: list, total: int, timeout: float) -> tuple[int, bytes, float, float, float]:
    """POST a body made of ``parts`` (bytes, or (file path, size)) without holding it: returns status, body, t0, t_sent, t_resp."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(total))
        conn.putheader("Accept", "application/json")
        conn.endheaders()
        t0 = time.monotonic()
        send_error = None
        try:
            for part in parts:
                if isinstance(part, (bytes, bytearray, memoryview)):
                    view = memoryview(part)
                    for i in range(0, len(view), CHUNK):
                        conn.send(view[i : i + CHUNK])
                else:
                    file_path, size = part
                    with open(file_path, "rb", buffering=0) as fh:
                        send_chunks(conn, fh, size)
        except (BrokenPipeError, ConnectionResetError) as exc:  # the server answered early (413, error ...)
            send_error = exc
        t_sent = time.monotonic()
        try:
            resp = conn.getresponse()
            body = resp.read()
        except (http.client.HTTPException, OSError) as exc:
            raise RuntimeError(f"no response ({exc!r}; sending stopped with {send_error!r})") from None
        t_resp = time.monotonic()
        return resp.status, body, t0, t_sent, t_resp
    finally:
        conn.close()


def multipart(file_path: Path, name: str) -> tuple[str, list, int]:
    boundary = f"----mlopsbench{uuid.uuid4().hex}"
    size = file_path.stat().st_size
    preamble = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="name"\r\n\r\n'
        f"{name}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{file_path.name}"\r\n'
        f"Content-Type: text/csv\r\n\r\n"
    ).encode()
    epilogue = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", [preamble, (file_path, size), epilogue], len(preamble) + size + len(epilogue)


def part_bytes(tmp_dir: Path) -> int:
    """Bytes the dashboard has written to its upload temp files (``<data_dir>/tmp/upload-*.part``)."""
    total = 0
    try:
        with os.scandir(tmp_dir) as it:
            for entry in it:
                if entry.name.startswith("upload-") and entry.name.endswith(".part"):
                    try:
                        total += entry.stat().st_size
                    except OSError:
                        pass
    except OSError:
        pass
    return total


def measure(res: Result, pid: int, do_request, probe=None, target: int = 0) -> tuple[int, bytes] | None:
    """Baseline, sample RSS during ``do_request()``, fill timings and memory into ``res``."""
    res.baseline_mb = baseline_rss(pid) / MB
    hwm0 = vm_hwm(pid)
    cpu0 = cpu_s(pid)
    sampler = RssSampler(pid, probe=probe, target=target)
    sampler.start()
    try:
        status, body, t0, t_sent, t_resp = do_request()
    finally:
        time.sleep(0.1)  # one or two samples after the response
        samples = sampler.stop()
    try:
        res.server_cpu_s = cpu_s(pid) - cpu0
        hwm1 = vm_hwm(pid)
        if hwm0 is not None and hwm1 is not None:
            if hwm1 > hwm0:
                res.hwm_growth_mb = (hwm1 - res.baseline_mb * MB) / MB
            else:  # the upload stayed under an earlier high-water mark (start-up, warm-up): only a bound
                res.extra["hwm_bound_mb"] = (hwm0 - res.baseline_mb * MB) / MB
        res.after_rss_mb = psutil.Process(pid).memory_info().rss / MB
    except psutil.Error:
        pass
    res.status = status
    res.seconds, res.send_s, res.after_s = t_resp - t0, t_sent - t0, t_resp - t_sent
    if probe is not None:
        if sampler.t_received is None:
            res.extra["received_unseen"] = True
        else:  # the server's own split: its temp file complete -> response
            t_sent = min(max(sampler.t_received, t0), t_resp)
            res.send_s, res.after_s = t_sent - t0, t_resp - t_sent
            res.extra["split"] = "server temp file"
    peak = RssSampler.peak(samples)
    res.peak_mb = peak / MB if peak else math.nan
    p1 = RssSampler.peak(samples, t0, t_sent)
    p2 = RssSampler.peak(samples, t_sent, math.inf)
    res.peak_recv_mb = p1 / MB if p1 else math.nan
    res.peak_after_mb = p2 / MB if p2 else math.nan
    return status, body


def stream_run(size_mb: float, csv_path: Path, rows_expected: int, work: Path, warm_csv: Path, timeout: float, max_upload_mb: int) -> Result:
    res = Result("stream (multipart)", size_mb, rows_expected=rows_expected)
    port = free_port()
    data_dir = work / f"dashboard-data-{size_mb:g}"
    env = dict(os.environ)
    env.update(
        {
            "MLOPS_HOST": HOST,
            "MLOPS_PORT": str(port),
            "MLOPS_DATA_DIR": str(data_dir),
            "MLOPS_BACKGROUND": "false",
            "MLOPS_EVENT_LOG": "memory://",
            "MLOPS_MIN_FREE_DISK_MB": "0",
            "MLOPS_MAX_UPLOAD_MB": str(max_upload_mb),
            "MLOPS_DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("MLOPS_DATABASE_URL", None)  # SQLite in the temp data dir
    server = Proc("dashboard", [str(PYTHON), "app.py"], env, ROOT, work / f"dashboard-{size_mb:g}.log", port)
    try:
        server.start().wait_http("/api/v1/health")
        # Warm-up: first read_csv, first DB write, first JSON response are not what is measured.
        ctype, parts, total = multipart(warm_csv, "bench-warmup")
        status, body, *_ = post_streamed(port, f"/api/v1/datasets?upload_id=warm-{uuid.uuid4().hex}", ctype, parts, total, timeout)
        if status != 201:
            raise RuntimeError(f"warm-up upload: HTTP {status} {body[:300]!r}")
        ctype, parts, total = multipart(csv_path, f"bench-{size_mb:g}mb")
        res.extra["body_bytes"] = total
        url = f"/api/v1/datasets?upload_id=bench-{uuid.uuid4().hex}"
        size = csv_path.stat().st_size
        # "received" = the server's temp file holds all but its last write buffer (flushed at close)
        status, body = measure(
            res, server.pid, lambda: post_streamed(port, url, ctype, parts, total, timeout),
            probe=lambda: part_bytes(data_dir / "tmp"), target=max(1, size - 64 * 1024),
        )
        if status != 201:
            res.error = f"HTTP {status}: {body[:300].decode(errors='replace')}"
            return res
        item = json.loads(body)
        res.rows = item.get("rows")
        res.extra["columns"] = [c.get("name", c) if isinstance(c, dict) else c for c in item.get("columns", [])]
        res.extra["size_bytes"] = item.get("size_bytes")
        res.ok = res.rows == rows_expected and item.get("size_bytes") == csv_path.stat().st_size
        if not res.ok:
            res.error = f"response rows={res.rows} size_bytes={item.get('size_bytes')} (expected {rows_expected}, {csv_path.stat().st_size})"
    except Exception as exc:  # noqa: BLE001 - report and go on with the next size
        res.error = f"{type(exc).__name__}: {exc}"
        if not server.alive():
            res.error += f"\n  server exited with {server.popen.returncode}; log tail:\n{server.log_tail()}"
    finally:
        server.stop()
    return res


def renderer_body_parts(value_prefix: str) -> tuple[bytes, bytes]:
    """The renderer's JSON body around the data URL's base64 text (``JSON.stringify(payload)``)."""
    marker = "@@B64@@"
    payload = {
        "output": "out.children",
        "outputs": {"id": "out", "property": "children"},
        "inputs": [{"id": "up", "property": "contents", "value": value_prefix + marker}],
        "changedPropIds": ["up.contents"],
        "parsedChangedPropsIds": ["up.contents"],
        # "state" is undefined (no State) and JSON.stringify drops it
    }
    text = json.dumps(payload, separators=(",", ":"))
    head, tail = text.split(marker)
    return head.encode(), tail.encode()


def build_dash_body(csv_path: Path) -> bytes:
    """What the browser does: FileReader.readAsDataURL (base64 of the whole file) and JSON.stringify."""
    head, tail = renderer_body_parts("data:text/csv;base64,")
    raw = csv_path.read_bytes()
    b64 = base64.b64encode(raw)
    del raw
    body = b"".join((head, b64, tail))  # base64 text needs no JSON escaping
    return body


def dash_end_id(port: int) -> str | None:
    """The signed ``end_id`` the page config carries; the renderer echoes it as ``?endId=`` on callbacks."""
    status, html = http_get(port, "/")
    if status != 200:
        return None
    m = re.search(rb'<script id="_dash-config" type="application/json">(.*?)</script>', html, re.DOTALL)
    if not m:
        return None
    try:
        return json.loads(m.group(1)).get("end_id")
    except ValueError:
        return None


def dash_run(size_mb: float, csv_path: Path, rows_expected: int, work: Path, warm_csv: Path, timeout: float) -> Result:
    res = Result("dcc.Upload (base64 callback)", size_mb, rows_expected=rows_expected)
    port = free_port()
    app_path = work / "dash_upload_app.py"
    if not app_path.exists():
        app_path.write_text(DASH_APP_SOURCE)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server = Proc("dash app", [str(PYTHON), str(app_path), str(port)], env, work, work / f"dash-{size_mb:g}.log", port)
    held: dict[str, bytes] = {}  # the request body, dropped in finally
    try:
        server.start().wait_http("/_dash-layout")
        end_id = dash_end_id(port)
        url = "/_dash-update-component" + (f"?endId={end_id}" if end_id else "")
        res.extra["endId"] = bool(end_id)
        ctype = "application/json"
        warm = build_dash_body(warm_csv)
        status, answer, *_ = post_streamed(port, url, ctype, [warm], len(warm), timeout)
        if status != 200:
            raise RuntimeError(f"warm-up callback: HTTP {status} {answer[:300]!r}")
        del warm
        me = psutil.Process()
        rss0 = me.memory_info().rss
        t = time.monotonic()
        held["body"] = build_dash_body(csv_path)
        res.client_build_s = time.monotonic() - t
        res.client_rss_mb = (me.memory_info().rss - rss0) / MB
        size = len(held["body"])
        res.body_mb = size / MB
        status, answer = measure(res, server.pid, lambda: post_streamed(port, url, ctype, [held["body"]], size, timeout))
        if status != 200:
            res.error = f"HTTP {status}: {answer[:300].decode(errors='replace')}"
            return res
        out = json.loads(answer)
        text = out.get("response", {}).get("out", {}).get("children", "")
        m = re.match(r"(\d+) rows", str(text))
        res.rows = int(m.group(1)) if m else None
        res.ok = res.rows == rows_expected
        if not res.ok:
            res.error = f"unexpected callback answer: {answer[:200]!r}"
    except Exception as exc:  # noqa: BLE001 - report and go on with the next size
        res.error = f"{type(exc).__name__}: {exc}"
        if not server.alive():
            res.error += f"\n  server exited with {server.popen.returncode}; log tail:\n{server.log_tail()}"
    finally:
        held.clear()
        server.stop()
    return res


# -- report ----------------------------------------------------------------------------------------
def fmt(v: float, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def print_table(results: list[Result]) -> None:
    cols = [
        ("path", 29, lambda r: r.path),
        ("size MB", 8, lambda r: fmt(r.size_mb, "g")),
        ("rows", 10, lambda r: str(r.rows) if r.rows is not None else "-"),
        ("seconds", 8, lambda r: fmt(r.seconds)),
        ("MB/s", 7, lambda r: fmt(r.mb_s, ".1f")),
        ("send s", 7, lambda r: fmt(r.send_s)),
        ("parse s", 7, lambda r: fmt(r.after_s)),
        ("base MB", 8, lambda r: fmt(r.baseline_mb, ".0f")),
        ("peak MB", 8, lambda r: fmt(r.peak_mb, ".0f")),
        ("growth MB", 9, lambda r: fmt(r.growth_mb, ".0f")),
        ("x file", 6, lambda r: fmt(r.growth_mb / r.size_mb, ".2f") if r.size_mb else "-"),
        ("HWM+ MB", 8, lambda r: f"<={r.extra['hwm_bound_mb']:.0f}" if "hwm_bound_mb" in r.extra else fmt(r.hwm_growth_mb, ".0f")),
        ("srv CPU s", 9, lambda r: fmt(r.server_cpu_s)),
        ("ok", 3, lambda r: "yes" if r.ok else "NO"),
    ]
    line = "  ".join(name.rjust(w) if i else name.ljust(w) for i, (name, w, _) in enumerate(cols))
    print(line)
    print("-" * len(line))
    for r in results:
        print("  ".join(f(r).rjust(w) if i else f(r).ljust(w) for i, (_, w, f) in enumerate(cols)))


def print_details(results: list[Result]) -> None:
    print()
    print("details")
    for r in results:
        head = f"  {r.path:<29} {r.size_mb:>5g} MB:"
        if r.ok or r.status is not None:
            parts = [
                f"peak while receiving {fmt(r.peak_recv_mb, '.0f')} MB, after the body arrived {fmt(r.peak_after_mb, '.0f')} MB",
                f"RSS after response {fmt(r.after_rss_mb, '.0f')} MB",
            ]
            if r.path.startswith("dcc"):
                parts.append(
                    f"client (browser-side) build: read+base64+JSON {fmt(r.client_build_s)} s, body {fmt(r.body_mb, '.1f')} MB, "
                    f"client RSS +{fmt(r.client_rss_mb, '.0f')} MB holding the body; request+build {fmt(r.seconds + r.client_build_s)} s"
                )
            print(head, "; ".join(parts))
        if r.error:
            print(f"{head} ERROR {r.error}")


def parse_sizes(raw: str) -> list[float]:
    if not raw.strip():
        return []
    sizes = [float(x) for x in raw.split(",") if x.strip()]
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=parse_sizes, default=parse_sizes("10,100,500"), help="streamed upload sizes, MB (default 10,100,500)")
    ap.add_argument("--dash-sizes", type=parse_sizes, default=parse_sizes("10,100"), help="dcc.Upload sizes, MB (default 10,100; '' to skip)")
    ap.add_argument("--timeout", type=float, default=600.0, help="socket timeout per request, s (default 600)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (CSV files, server logs, data dirs)")
    ap.add_argument("--smoke", action="store_true", help="a short run through every code path: streamed 1,2 MB; dcc.Upload 1 MB")
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.dash_sizes, args.timeout = [1.0, 2.0], [1.0], 60.0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    work = Path(tempfile.mkdtemp(prefix="mlops-bench-upload-"))
    results: list[Result] = []
    try:
        print("\n".join(machine_facts()))
        print(f"command   {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
        sizes = sorted(set(args.sizes) | set(args.dash_sizes))
        need = sum(sizes) * MB * 1.05 + (max(args.sizes, default=0) * MB * 1.1)  # files + server copies
        free = shutil.disk_usage(work).free
        if need > free:
            print(f"not enough disk in {work}: need ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
            return 2
        max_upload_mb = max(1024, math.ceil(max(args.sizes, default=0) * 1.01) + 1)
        print(f"temp dir  {work}{' (kept)' if args.keep else ''}")
        print(
            f"servers   stream: python app.py (Werkzeug threaded), fresh per size, MLOPS_BACKGROUND=false, SQLite, "
            f"MLOPS_MAX_UPLOAD_MB={max_upload_mb}; dcc.Upload: minimal Dash app, app.run(threaded=True), fresh per size"
        )
        print()

        warm_csv = work / "warmup.csv"
        generate_csv(warm_csv, 32 * 1024, seed=1)
        files: dict[float, tuple[Path, int]] = {}
        for size in sizes:
            path = work / f"bench-{size:g}mb.csv"
            t = time.monotonic()
            rows = generate_csv(path, int(size * MB))
            files[size] = (path, rows)
            print(f"generated {path.name}: {path.stat().st_size:,} bytes, {rows:,} rows in {time.monotonic() - t:.1f} s", flush=True)
        print()

        for size in args.sizes:
            path, rows = files[size]
            print(f"stream      {size:g} MB ...", end=" ", flush=True)
            r = stream_run(size, path, rows, work, warm_csv, args.timeout, max_upload_mb)
            results.append(r)
            print(f"{fmt(r.seconds)} s, growth {fmt(r.growth_mb, '.0f')} MB" + ("" if r.ok else f"  ({r.error.splitlines()[0] if r.error else 'failed'})"), flush=True)

        avail = psutil.virtual_memory().available
        for size in args.dash_sizes:
            path, rows = files[size]
            # server: body + JSON str + split copy + decoded + DataFrame; client: file + base64 + body
            estimate = size * MB * 12
            if estimate > avail * 0.8:
                r = Result("dcc.Upload (base64 callback)", size, rows_expected=rows, error=f"skipped: needs ~{estimate / 2**30:.1f} GiB, {avail / 2**30:.1f} GiB available")
                results.append(r)
                print(f"dcc.Upload  {size:g} MB ... {r.error}")
                continue
            print(f"dcc.Upload  {size:g} MB ...", end=" ", flush=True)
            r = dash_run(size, path, rows, work, warm_csv, args.timeout)
            results.append(r)
            print(f"{fmt(r.seconds)} s, growth {fmt(r.growth_mb, '.0f')} MB" + ("" if r.ok else f"  ({r.error.splitlines()[0] if r.error else 'failed'})"), flush=True)

        print()
        print("MB = 2^20 bytes. seconds: first body byte sent -> response (dcc.Upload: excludes the browser-side base64/JSON build).")
        print("send s: -> body received (stream: the server's temp file is complete, polled every 20 ms; dcc.Upload: last byte")
        print("sent by the client); parse s: -> response (stream: parse + profile + store). RSS of the server process, sampled every 20 ms;")
        print("base = median before the upload (after a warm-up request), growth = peak - base, x file = growth / file size,")
        print("HWM+ = kernel VmHWM after - base (exact peak, check on the sampling; '<=N': stayed under the start-up high-water mark).")
        print()
        print_table(results)
        print_details(results)
        return 0 if results and all(r.ok for r in results) else 1
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
