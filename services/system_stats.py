"""Sample CPU, memory, disk and network with psutil and publish ``system_stats`` on a fixed cadence."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from events.hub import Hub
from events.log import EventLogUnavailable

log = logging.getLogger(__name__)


class StatsReader:
    """Turns psutil counters into one payload per call, rates taken over the time since the last call."""

    def __init__(self, disk_path: Path):
        self.disk_path = str(disk_path)
        self.host = socket.gethostname()
        self.process = psutil.Process()
        psutil.cpu_percent(interval=None)  # prime: the first non-blocking call has no baseline
        psutil.cpu_percent(interval=None, percpu=True)
        self._last = (time.monotonic(), psutil.disk_io_counters(), psutil.net_io_counters())

    def read(self) -> dict[str, Any]:
        now, disk_io, net_io = time.monotonic(), psutil.disk_io_counters(), psutil.net_io_counters()
        then, last_disk, last_net = self._last
        self._last = (now, disk_io, net_io)
        elapsed = max(now - then, 1e-6)

        def rate(new, old, field: str) -> float:
            if new is None or old is None:  # no block devices visible (some containers)
                return 0.0
            return max(0.0, (getattr(new, field) - getattr(old, field)) / elapsed)

        memory, swap, disk = psutil.virtual_memory(), psutil.swap_memory(), psutil.disk_usage(self.disk_path)
        load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
        return {
            "host": self.host,
            "cpu_percent": psutil.cpu_percent(interval=None),
            "cpu_per_core": psutil.cpu_percent(interval=None, percpu=True),
            "load_1": load[0],
            "load_5": load[1],
            "load_15": load[2],
            "mem_percent": memory.percent,
            "mem_used": memory.total - memory.available,
            "mem_total": memory.total,
            "swap_percent": swap.percent,
            "disk_path": self.disk_path,
            "disk_percent": disk.percent,
            "disk_used": disk.used,
            "disk_free": disk.free,
            "disk_total": disk.total,
            "disk_read_bps": rate(disk_io, last_disk, "read_bytes"),
            "disk_write_bps": rate(disk_io, last_disk, "write_bytes"),
            "net_sent_bps": rate(net_io, last_net, "bytes_sent"),
            "net_recv_bps": rate(net_io, last_net, "bytes_recv"),
            "process_rss": self.process.memory_info().rss,
            "interval_s": max(round(elapsed, 3), 0.001),  # two reads within 0.5 ms must not round to 0
        }


class StatsSampler:
    """Background thread: one sample every ``interval_s`` in the process holding the sampler lease."""

    LEASE = "system-stats"

    def __init__(self, hub: Hub, disk_path: Path, interval_s: float):
        self.hub = hub
        self.interval_s = interval_s
        self.reader = StatsReader(disk_path)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlops-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def sample_once(self) -> None:
        ttl = max(3 * self.interval_s, 2.0)
        self.leading = self.hub.log.acquire_lease(self.LEASE, self.owner, ttl)
        payload = self.reader.read()  # read even when not leading, to keep rate baselines fresh
        if self.leading:
            self.hub.publish("system_stats", payload)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except EventLogUnavailable as exc:
                self.errors += 1
                if self.errors == 1 or self.errors % 60 == 0:
                    log.warning("system stats not published: %s", exc)
            except Exception:
                self.errors += 1
                log.exception("system stats sample failed")
            next_at += self.interval_s
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (suspended, overloaded): realign instead of bursting
                next_at, delay = time.monotonic(), 0
            self._stop.wait(delay)
