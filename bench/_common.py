"""Shared helpers for the benchmarks: start/stop the dashboard as a subprocess, publish, statistics.

Only 127.0.0.1 is touched. The server runs in its own process group (``start_new_session``) so
stopping it ends the gunicorn master, its worker and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
REDIS_BASE = "redis://127.0.0.1:6379/0"


def tree_rss_mb(processes: list[psutil.Process]) -> float:
    """Resident memory of ``processes`` together, MiB (processes that ended count as 0)."""
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def tree_cpu_s(processes: list[psutil.Process]) -> float:
    """CPU seconds (user + system) consumed so far by ``processes`` together."""
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_ts(ts: str) -> float:
    """Envelope ``ts`` (ISO 8601 UTC, microseconds, ``Z``) as POSIX seconds."""
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {
        "n": len(s),
        "p50": percentile(s, 50),
        "p90": percentile(s, 90),
        "p99": percentile(s, 99),
        "max": s[-1] if s else math.nan,
    }


def fmt_ms(stats: dict[str, float]) -> str:
    return "p50 {p50:7.1f}  p90 {p90:7.1f}  p99 {p99:7.1f}  max {max:7.1f} ms  (n={n})".format(**stats)


def machine_facts() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", ".", ":!bench"], capture_output=True, text=True, timeout=5).stdout
        changed = len([line for line in dirty.splitlines() if line.strip()])
        code = f"code {head}" + (f" + {changed} uncommitted change(s) outside bench/" if changed else " (clean)")
    except (OSError, subprocess.SubprocessError):
        code = "code: git unavailable"
    return (
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} | nproc {os.cpu_count()} | CPU {model} | "
        f"RAM {mem:.1f} GiB | Python {platform.python_version()} | {code}"
    )


def command_line() -> str:
    """This process's command as one could paste it, for the header of a result."""
    import shlex

    return " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])


def code_versions(*paths: str) -> str:
    """Short content hashes of files under test, marked when they differ from HEAD: other people may be
    editing them while a benchmark runs, so a result names the exact code it measured."""
    import hashlib

    out = []
    for rel in paths:
        try:
            digest = hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()[:10]
        except OSError:
            out.append(f"{rel} missing")
            continue
        try:
            status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", rel],
                                    capture_output=True, text=True, timeout=5).stdout.strip()[:2].strip()
        except (OSError, subprocess.SubprocessError):
            status = "?"
        mark = {"": "committed", "M": "modified", "??": "untracked", "A": "added"}.get(status, status)
        out.append(f"{rel} sha256:{digest} ({mark})")
    return "; ".join(out)


class ServerStartError(RuntimeError):
    """The dashboard did not come up (import error, bad setting, port ...); the message has its log tail."""


class Server:
    """The dashboard in a subprocess: gunicorn (gthread worker) or ``python app.py`` (Werkzeug)."""

    def __init__(
        self,
        kind: str = "gunicorn",
        event_log: str = "memory",
        threads: int = 150,
        batch_ms: float | None = None,
        heartbeat_s: float | None = None,
        ws_queue: int | None = None,
        background: bool = False,
        log_path: Path | None = None,
    ):
        if kind not in {"gunicorn", "dev"}:
            raise ValueError(kind)
        if event_log not in {"memory", "redis"}:
            raise ValueError(event_log)
        self.kind = kind
        self.event_log = event_log
        self.threads = threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-"))
        self.stream = f"mlops-bench:{uuid.uuid4().hex}" if event_log == "redis" else None
        self.log_path = log_path or self.tmp / "server.log"
        self.env = dict(os.environ)
        self.env.update(
            {
                "MLOPS_HOST": "127.0.0.1",
                "MLOPS_PORT": str(self.port),
                "MLOPS_DATA_DIR": str(self.tmp / "data"),
                "MLOPS_EVENT_LOG": f"{REDIS_BASE}?stream={self.stream}" if self.stream else "memory://",
                # The stats sampler and health monitor would publish their own events; keep them out.
                "MLOPS_BACKGROUND": "true" if background else "false",
                "MLOPS_STATS_INTERVAL_S": "3600",
                "MLOPS_MIN_FREE_DISK_MB": "0",
                "MLOPS_DEBUG": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if batch_ms is not None:
            self.env["MLOPS_WS_BATCH_MS"] = str(batch_ms)
        if heartbeat_s is not None:
            self.env["MLOPS_WS_HEARTBEAT_S"] = str(heartbeat_s)
        if ws_queue is not None:
            self.env["MLOPS_WS_QUEUE"] = str(ws_queue)
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    def describe(self) -> str:
        env = self.env
        try:  # the defaults of the code under test, not numbers copied here
            sys.path.insert(0, str(ROOT))
            from config import Settings

            defaults = Settings()
            batch_default, queue_default = f"default({defaults.ws_batch_ms:g})", f"default({defaults.ws_queue})"
        except Exception:  # noqa: BLE001 - config.py mid-edit: just say "default"
            batch_default = queue_default = "default"
        if self.kind == "gunicorn":
            how = f"gunicorn -w 1 -k gthread --threads {self.threads}"
        else:
            how = "python app.py (Werkzeug threaded dev server)"
        return (
            f"{how}; MLOPS_EVENT_LOG={env['MLOPS_EVENT_LOG']}; MLOPS_BACKGROUND={env['MLOPS_BACKGROUND']}; "
            f"MLOPS_WS_BATCH_MS={env.get('MLOPS_WS_BATCH_MS', batch_default)}; "
            f"MLOPS_WS_QUEUE={env.get('MLOPS_WS_QUEUE', queue_default)}"
        )

    def command(self) -> list[str]:
        if self.kind == "gunicorn":
            return [
                str(GUNICORN),
                "--no-control-socket",
                "-w", "1",
                "-k", "gthread",
                "--threads", str(self.threads),
                "--graceful-timeout", "2",
                "-b", f"127.0.0.1:{self.port}",
                "app:server",
            ]  # fmt: skip
        return [str(PYTHON), "app.py"]

    def start(self, timeout: float = 45.0) -> Server:
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(f"server exited with {self.proc.returncode}:\n{self.log_tail(12)}")
            try:
                r = requests.get(f"{self.url}/api/v1/health", timeout=2)
                if r.status_code == 200:
                    return self
                last = f"HTTP {r.status_code} {r.text[:200]}"
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ServerStartError(f"server not healthy after {timeout:.0f} s ({last}):\n{self.log_tail(12)}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def processes(self) -> list[psutil.Process]:
        if not self.proc:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_mb(self) -> float:
        """Resident memory of the server process and all its children, MiB."""
        return tree_rss_mb(self.processes())

    def cpu_s(self) -> float:
        """CPU seconds (user + system) consumed so far by the server process tree."""
        return tree_cpu_s(self.processes())

    def worker(self) -> psutil.Process | None:
        """The gunicorn worker (the master's child that runs gunicorn), which serves the requests."""
        procs = self.processes()
        if not procs or self.kind != "gunicorn":
            return procs[0] if procs else None
        for child in procs[0].children():
            try:
                if "gunicorn" in " ".join(child.cmdline()):
                    return child
            except psutil.Error:
                continue
        return None

    def threads_count(self) -> int:
        n = 0
        for p in self.processes():
            try:
                n += p.num_threads()
            except psutil.Error:
                pass
        return n

    def stop(self) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after 5 s); drop Redis keys."""
        try:
            if self.proc and self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.proc.wait(timeout=5)
            # Leftovers of the group (a worker that outlived its master) are ended by pid.
            if self.proc:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        finally:
            if self._log_file:
                self._log_file.close()
            if self.stream:
                try:
                    import redis

                    client = redis.Redis.from_url(REDIS_BASE, socket_connect_timeout=2)
                    keys = client.keys(f"{self.stream}*")
                    if keys:
                        client.delete(*keys)
                    client.close()
                except Exception as exc:  # noqa: BLE001 - report, never mask the benchmark's own error
                    print(f"warning: could not delete Redis keys {self.stream}*: {exc}", file=sys.stderr)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Server:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class Publisher:
    """POSTs ``training_progress`` events; records, per seq, the POST start time and the envelope ts."""

    def __init__(self, base_url: str, job_id: str = "bench"):
        self.url = f"{base_url}/api/v1/events"
        self.job_id = job_id
        self.lock = threading.Lock()
        self.sent: dict[int, tuple[float, float]] = {}  # seq -> (POST start, envelope ts), POSIX seconds
        self.errors: list[str] = []
        self.post_s: list[float] = []  # round-trip time of each successful POST
        self.step = 0
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def publish_one(self) -> int | None:
        with self.lock:
            self.step += 1
            step = self.step
        body = {"type": "training_progress", "data": {"job_id": self.job_id, "step": step, "fraction": 0.5}}
        t0 = time.time()
        try:
            r = self._session().post(self.url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=10)
        except requests.RequestException as exc:
            with self.lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            return None
        t1 = time.time()
        if r.status_code != 201:
            with self.lock:
                self.errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
            return None
        env = r.json()
        with self.lock:
            self.sent[env["seq"]] = (t0, parse_ts(env["ts"]))
            self.post_s.append(t1 - t0)
        return env["seq"]

    def run_rate(self, rate: float, duration: float, stop: threading.Event | None = None) -> float:
        """Publish at ``rate``/s for ``duration`` s on a fixed schedule (no catch-up bursts beyond it)."""
        count = int(round(rate * duration))
        start = time.monotonic()
        for i in range(count):
            if stop is not None and stop.is_set():
                break
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.publish_one()
        return time.monotonic() - start

    def run_burst(self, count: int, threads: int, within_s: float | None = None) -> float:
        """Publish ``count`` events from ``threads`` threads, as fast as possible or paced over ``within_s``."""
        counter = iter(range(count))
        counter_lock = threading.Lock()
        start = time.monotonic()

        def worker():
            while True:
                with counter_lock:
                    i = next(counter, None)
                if i is None:
                    return
                if within_s:
                    delay = start + i * within_s / count - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self.publish_one()

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        return time.monotonic() - start

    def close(self) -> None:
        pass


def system_busy_s() -> tuple[float, float]:
    """(busy CPU seconds summed over all CPUs, steal seconds) since boot, from /proc/stat via psutil."""
    t = psutil.cpu_times()
    steal = getattr(t, "steal", 0.0)
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return busy, steal


def wait_quiet(max_wait: float, threshold: float = 25.0) -> tuple[bool, list[float]]:
    """Wait (up to ``max_wait`` s) until the whole machine's CPU use is below ``threshold`` % of one
    core for 2 consecutive seconds; returns (quiet, history of 1 s readings). Other people's test
    runs on the same machine would otherwise distort the numbers."""
    history: list[float] = []
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = system_busy_s()[0], time.monotonic()
        time.sleep(1.0)
        history.append(100.0 * (system_busy_s()[0] - b0) / (time.monotonic() - t0))
        if len(history) >= 2 and history[-1] < threshold and history[-2] < threshold:
            return True, history
        if time.monotonic() >= deadline:
            return False, history


def print_quiet(max_wait: float) -> bool:
    """Wait up to ``max_wait`` s for an idle machine, print the CPU readings seen; True if it was idle.

    ``max_wait`` <= 0 (``--smoke``, ``--wait-quiet 0``) skips the check and says so."""
    if max_wait <= 0:
        print("machine CPU check skipped (--wait-quiet 0 / --smoke)")
        return False
    quiet, history = wait_quiet(max_wait)
    print(
        f"machine CPU before start (1 s readings, % of one core): {' '.join(f'{v:.0f}' for v in history)}"
        + ("" if quiet else "  -- NOT quiet: other processes are using the CPU, numbers will be disturbed")
    )
    return quiet
