"""Health checks and transitions, and the psutil sampler, against a real memory log."""

from __future__ import annotations

import time
from pathlib import Path

from events.catalogue import validate
from events.hub import Hub
from events.log import open_event_log
from services.health import HealthChecks, HealthMonitor
from services.live_state import LiveState
from services.system_stats import StatsReader, StatsSampler
from tests.conftest import wait_until


def setup(tmp_path: Path, min_free_disk_mb: int = 0):
    hub = Hub(open_event_log("memory://"), poll_s=0.05)
    state = LiveState(10)
    hub.listeners.append(state)
    hub.start()
    checks = HealthChecks(hub, state, tmp_path, stats_interval_s=1.0, min_free_disk_mb=min_free_disk_mb)
    return hub, state, checks



def test_stats_reader_produces_a_valid_payload(tmp_path):
    reader = StatsReader(tmp_path)
    time.sleep(0.1)
    payload = reader.read()
    validate("system_stats", payload)  # raises if the schema and the reader disagree
    assert payload["disk_path"] == str(tmp_path)
    assert payload["mem_total"] > 0 and 0 <= payload["cpu_percent"] <= 100 * len(payload["cpu_per_core"])
    assert payload["process_rss"] > 10 * 2**20


def test_sampler_publishes_on_its_interval(tmp_path):
    hub, state, _ = setup(tmp_path)
    sampler = StatsSampler(hub, tmp_path, interval_s=0.1)
    sampler.start()
    try:
        assert wait_until(lambda: len(state.snapshot()["samples"]) >= 5)
        assert sampler.alive() and sampler.leading
    finally:
        sampler.stop()
        hub.stop()
    assert not sampler.alive()


def test_health_change_only_on_transitions(tmp_path):
    hub, state, checks = setup(tmp_path)
    monitor = HealthMonitor(checks, interval_s=1.0)
    try:
        first = monitor.evaluate_once()
        assert first == 3  # every component is new
        assert wait_until(lambda: len(state.health_statuses()) == 3)
        assert state.health_statuses()["stats_sampler"] == "degraded"  # no samples yet
        assert monitor.evaluate_once() == 0  # nothing changed, nothing published
        hub.publish("system_stats", StatsReader(tmp_path).read())
        assert wait_until(lambda: state.last_stats_ts() is not None)
        assert monitor.evaluate_once() == 1
        assert wait_until(lambda: state.health_statuses()["stats_sampler"] == "healthy")
        events = hub.log.read_after(0, None)
        changes = [e.data for e in events if e.type == "health_change"]
        assert changes[-1]["component"] == "stats_sampler" and changes[-1]["previous"] == "degraded"
        assert changes[-1]["status"] == "healthy" and changes[-1]["overall"] == "healthy"
    finally:
        hub.stop()


def test_low_disk_is_reported(tmp_path):
    hub, _, checks = setup(tmp_path, min_free_disk_mb=10**9)
    try:
        report = checks.report()
        assert report["status"] == "down" and report["components"]["disk"]["status"] == "down"
    finally:
        hub.stop()


def test_unreachable_event_log_is_down(tmp_path):
    from events.redis_log import RedisEventLog

    hub = Hub(RedisEventLog("redis://127.0.0.1:1/0", 100, 60), poll_s=0.05)
    state = LiveState(10)
    checks = HealthChecks(hub, state, tmp_path, 1.0, 0)
    report = checks.report()
    assert report["status"] == "down"
    assert report["components"]["event_log"]["status"] == "down"
    assert "unreachable" in report["components"]["event_log"]["message"]
