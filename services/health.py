"""Component health: checks of what exists, ``health_change`` events on transitions only."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from events.hub import Hub
from events.log import EventLogUnavailable
from events.serialize import parse_iso, utc_now
from services.live_state import LiveState, worst
from storage.db import Database, StorageUnavailable

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Check:
    status: str  # healthy | degraded | down
    message: str


class HealthChecks:
    """The checks of this deployment; each returns a ``Check`` and never raises."""

    def __init__(
        self, hub: Hub, state: LiveState, data_dir: Path, stats_interval_s: float, min_free_disk_mb: int, db: Database | None = None
    ):
        self.db = db
        self.hub = hub
        self.state = state
        self.data_dir = data_dir
        self.stats_interval_s = stats_interval_s
        self.min_free_bytes = min_free_disk_mb * 1024 * 1024
        self.checks: dict[str, Callable[[], Check]] = {
            "event_log": self.event_log,
            "stats_sampler": self.stats_sampler,
            "disk": self.disk,
        }
        if db is not None:
            self.checks["storage"] = self.storage

    def event_log(self) -> Check:
        try:
            self.hub.log.ping()
        except EventLogUnavailable as exc:
            return Check("down", str(exc))
        if not self.hub.alive():
            return Check("degraded", "event pump is not running: live updates stopped in this process")
        return Check("healthy", f"{self.hub.log.describe()} reachable")

    def stats_sampler(self) -> Check:
        ts = self.state.last_stats_ts()
        if ts is None:
            return Check("degraded", "no system stats received yet")
        age = (utc_now() - parse_iso(ts)).total_seconds()
        if age <= 3 * self.stats_interval_s + 1:
            return Check("healthy", f"last sample {age:.1f} s ago")
        if age <= 10 * self.stats_interval_s + 5:
            return Check("degraded", f"last sample {age:.0f} s ago (expected every {self.stats_interval_s:g} s)")
        return Check("down", f"no sample for {age:.0f} s")

    def storage(self) -> Check:
        try:
            self.db.ping()
        except StorageUnavailable as exc:
            return Check("down", str(exc))
        return Check("healthy", f"{self.db.describe()} reachable")

    def disk(self) -> Check:
        try:
            usage = shutil.disk_usage(self.data_dir)
        except OSError as exc:
            return Check("down", f"data dir {self.data_dir} unusable: {exc}")
        free_mb = usage.free / 2**20
        if usage.free >= self.min_free_bytes:
            return Check("healthy", f"{free_mb:,.0f} MB free")
        status = "down" if usage.free < self.min_free_bytes / 10 else "degraded"
        return Check(status, f"only {free_mb:,.0f} MB free (minimum {self.min_free_bytes / 2**20:,.0f} MB)")

    def run(self) -> dict[str, Check]:
        results = {}
        for name, check in self.checks.items():
            try:
                results[name] = check()
            except Exception as exc:  # a broken check reports itself, it does not hide the others
                log.exception("health check %s failed", name)
                results[name] = Check("down", f"check failed: {exc}")
        return results

    def report(self) -> dict:
        """The body of ``GET /api/v1/health``."""
        results = self.run()
        return {
            "status": worst([c.status for c in results.values()]),
            "components": {name: dataclasses.asdict(c) for name, c in results.items()},
        }


class HealthMonitor:
    """Background thread in the lease holder: re-runs the checks, publishes each transition once."""

    LEASE = "health-monitor"

    def __init__(self, checks: HealthChecks, interval_s: float):
        self.checks = checks
        self.interval_s = interval_s
        self.owner = uuid.uuid4().hex
        self._sent: dict[str, str] = {}  # what this process published and the pump may not have applied yet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlops-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def evaluate_once(self) -> int:
        """Publish ``health_change`` for components whose status differs from the stream's; return count."""
        hub = self.checks.hub
        if not hub.log.acquire_lease(self.LEASE, self.owner, max(3 * self.interval_s, 5.0)):
            return 0
        results = self.checks.run()
        known = self.checks.state.health_statuses()
        overall = worst([c.status for c in results.values()])
        published = 0
        for name, check in results.items():
            if known.get(name) == check.status:
                self._sent.pop(name, None)
            elif self._sent.get(name) != check.status:
                self._sent[name] = check.status
                hub.publish(
                    "health_change",
                    {
                        "component": name,
                        "status": check.status,
                        "previous": known.get(name),
                        "message": check.message,
                        "overall": overall,
                    },
                )
                published += 1
        return published

    def _run(self) -> None:
        # The first look waits for the sampler's first samples, so a start is not reported as degraded.
        delay = 2 * self.interval_s
        while not self._stop.wait(delay):
            delay = self.interval_s
            try:
                self.evaluate_once()
            except EventLogUnavailable:
                pass  # the event log check itself reports this through the API; nothing to publish to
            except Exception:
                log.exception("health evaluation failed")
