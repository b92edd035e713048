"""Fan-out, back-pressure and the page snapshot, on the memory log."""

from __future__ import annotations

from events.hub import Hub, Mailbox
from events.log import open_event_log
from services.live_state import LiveState
from tests.conftest import wait_until
from tests.samples import STATS


def health(name, status="healthy"):
    return {"component": name, "status": status, "message": "", "overall": status}


def make_hub(chart_points=5):
    hub = Hub(open_event_log("memory://"), poll_s=0.1)
    state = LiveState(chart_points)
    hub.listeners.append(state)
    return hub, state


def test_subscriber_gets_everything_after_its_position():
    hub, _ = make_hub()
    hub.publish("health_change", health("a"))
    hub.start()
    try:
        box, epoch, seq = hub.subscribe(100)
        assert seq == 1
        hub.publish("health_change", health("b"))
        item = box.get(timeout=2)
        assert item[0] == "events" and [e.seq for e in item[1]] == [2]
    finally:
        hub.stop()


def test_mailbox_overflow_drops_and_flags_instead_of_growing():
    box = Mailbox(max_events=3)
    log = open_event_log("memory://")
    events = [log.publish("health_change", health(str(i))) for i in range(4)]
    assert box.offer_events(events[:2])
    assert not box.offer_events(events[2:])  # would exceed 3
    assert box.overflowed and box.pending_events == 0
    assert box.get(timeout=0.1) == ("overflow", None)


def test_snapshot_holds_bounded_samples_and_health_at_its_seq():
    hub, state = make_hub(chart_points=5)
    hub.start()
    try:
        for i in range(8):
            hub.publish("system_stats", dict(STATS, cpu_percent=float(i)))
        disk = hub.publish("health_change", health("disk", "degraded"))
        assert wait_until(lambda: state.snapshot()["seq"] == 9)
        snap = state.snapshot()
        assert [s["cpu_percent"] for s in snap["samples"]] == [3.0, 4.0, 5.0, 6.0, 7.0]
        assert [s["seq"] for s in snap["samples"]] == [4, 5, 6, 7, 8]
        assert snap["health"] == {
            "status": "degraded", "components": {"disk": {"status": "degraded", "message": "", "since": disk.ts}},
        }
        assert snap["latest_stats"]["cpu_percent"] == 7.0 and snap["epoch"] == hub.log.head()[0]
    finally:
        hub.stop()


def test_snapshot_keeps_the_last_prediction_volume_samples():
    hub, state = make_hub(chart_points=3)
    hub.start()
    try:
        for i in range(5):
            last = hub.publish("prediction_volume", {"model_id": 7, "pipeline_id": 2, "count": i + 1, "total": 10 * (i + 1),
                                              "interval_s": 1.0, "latency_p50_ms": 1.5, "latency_p95_ms": 3.0})
        assert wait_until(lambda: state.snapshot()["seq"] == 5)
        predictions = state.snapshot()["predictions"]
        assert [p["seq"] for p in predictions] == [3, 4, 5]  # bounded like the chart samples
        assert predictions[-1] == {"seq": 5, "t": last.ts, "model_id": 7, "pipeline_id": 2,
                                   "count": 5, "total": 50, "interval_s": 1.0}
    finally:
        hub.stop()


def test_new_process_bootstraps_its_snapshot_from_the_log():
    log = open_event_log("memory://")
    for i in range(3):
        log.publish("system_stats", dict(STATS, cpu_percent=float(i)))
    hub = Hub(log, poll_s=0.1)
    state = LiveState(10)
    hub.listeners.append(state)
    hub.start()
    try:
        snap = state.snapshot()
        assert snap["seq"] == 3 and len(snap["samples"]) == 3
    finally:
        hub.stop()


def test_disconnect_all_reaches_every_mailbox():
    hub, _ = make_hub()
    boxes = [hub.subscribe(10)[0] for _ in range(3)]
    assert hub.disconnect_all(1012, "restart") == 3
    assert all(box.get(timeout=0.1) == ("close", (1012, "restart")) for box in boxes)
