"""The event-log contract, run against every backend (Redis is a real server)."""

from __future__ import annotations

import threading
import time

import pytest

from events.catalogue import InvalidEvent
from events.log import Event, Gap, open_event_log
from tests.samples import STATS


def health(i: int) -> dict:
    return {"component": f"c{i}", "status": "healthy", "message": str(i), "overall": "healthy"}


@pytest.fixture(params=["memory", "redis"])
def make_log(request):
    logs = []

    def factory(max_events=100, max_age_s=3600.0):
        if request.param == "memory":
            url = "memory://"
        else:
            url = request.getfixturevalue("redis_url")
        log = open_event_log(url, max_events, max_age_s)
        logs.append(log)
        return log

    factory.backend = request.param
    yield factory
    for log in logs:
        log.close()


def test_append_assigns_increasing_seq_and_envelope(make_log):
    log = make_log()
    epoch, head = log.head()
    assert head == 0 and epoch
    events = [log.publish("health_change", health(i)) for i in range(5)]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert all(e.epoch == epoch for e in events)
    first = events[0]
    assert first.type == "health_change" and first.data["component"] == "c0"
    assert first.ts.endswith("Z") and "T" in first.ts
    assert Event.from_raw(first.raw).envelope() == first.envelope()
    assert log.head() == (epoch, 5)


def test_read_after_returns_the_rest_in_order(make_log):
    log = make_log()
    for i in range(10):
        log.publish("health_change", health(i))
    epoch, _ = log.head()
    assert [e.seq for e in log.read_after(6, epoch)] == [7, 8, 9, 10]
    assert [e.seq for e in log.read_after(0, epoch, limit=3)] == [1, 2, 3]
    assert log.read_after(10, epoch) == []
    assert [e.data["component"] for e in log.read_after(8, None)] == ["c8", "c9"]


def test_read_after_other_epoch_or_future_seq_is_a_gap(make_log):
    log = make_log()
    log.publish("health_change", health(1))
    epoch, head = log.head()
    gap = log.read_after(0, "another-epoch")
    assert isinstance(gap, Gap) and gap.epoch == epoch and gap.seq == head
    assert isinstance(log.read_after(5, epoch), Gap)


def test_history_is_bounded_by_count(make_log):
    log = make_log(max_events=100)
    for i in range(400):
        log.publish("health_change", health(i))
    epoch, head = log.head()
    assert head == 400
    assert isinstance(log.read_after(0, epoch), Gap)  # the start was trimmed
    assert [e.seq for e in log.read_after(395, epoch)] == [396, 397, 398, 399, 400]
    kept_epoch, kept_head, recent = log.recent(50)
    assert (kept_epoch, kept_head) == (epoch, 400) and [e.seq for e in recent] == list(range(351, 401))


def test_history_is_bounded_by_age(make_log):
    log = make_log(max_age_s=1.0)
    log.publish("health_change", health(1))
    time.sleep(1.2)
    log.publish("health_change", health(2))
    epoch, _ = log.head()
    assert isinstance(log.read_after(0, epoch), Gap)  # seq 1 is too old to replay
    assert [e.seq for e in log.read_after(1, epoch)] == [2]
    assert [e.seq for e in log.recent(10)[2]] == [2]  # what is still kept, even though seq 1 is gone


def test_invalid_events_never_reach_the_log(make_log):
    log = make_log()
    with pytest.raises(InvalidEvent):
        log.publish("no_such_type", {})
    with pytest.raises(InvalidEvent):
        log.publish("system_stats", dict(STATS, cpu_percent="lots"))
    assert log.head()[1] == 0


def test_wait_after_wakes_on_append(make_log):
    log = make_log()
    epoch, _ = log.head()
    timer = threading.Timer(0.2, lambda: log.publish("health_change", health(1)))
    timer.start()
    events = log.wait_after(0, epoch, timeout=600.0)  # were it not woken by the append, the test times out
    timer.join()
    assert [e.seq for e in events] == [1]
    assert log.wait_after(1, epoch, timeout=0.1) == []


def test_concurrent_appends_get_distinct_contiguous_seqs(make_log):
    log = make_log(max_events=10_000)
    threads = [threading.Thread(target=lambda: [log.publish("health_change", health(i)) for i in range(50)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    epoch, head = log.head()
    assert head == 200
    assert [e.seq for e in log.read_after(0, epoch, limit=1000)] == list(range(1, 201))


def test_leases_are_exclusive_and_renewable(make_log):
    log = make_log()
    assert log.acquire_lease("sampler", "a", 5.0)
    assert log.acquire_lease("sampler", "a", 5.0)  # renewal
    if make_log.backend == "redis":
        assert not log.acquire_lease("sampler", "b", 5.0)
        assert log.acquire_lease("other", "b", 5.0)


def test_redis_history_lost_changes_epoch(redis_url):
    log = open_event_log(redis_url, 100, 3600)
    log.publish("health_change", health(1))
    old_epoch, _ = log.head()
    log.delete_history()
    event = log.publish("health_change", health(2))
    assert event.epoch != old_epoch and event.seq == 1
    assert isinstance(log.read_after(1, old_epoch), Gap)
    assert isinstance(log.wait_after(5, old_epoch, timeout=0.1), Gap)
    log.close()


def test_two_redis_clients_share_one_history(redis_url):
    a, b = open_event_log(redis_url, 100, 3600), open_event_log(redis_url, 100, 3600)
    a.publish("health_change", health(1))
    b.publish("health_change", health(2))
    assert a.head() == b.head()
    assert [e.data["component"] for e in b.read_after(0, a.head()[0])] == ["c1", "c2"]
    a.close()
    b.close()
