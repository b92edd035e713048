"""The event-log contract, run against every backend (Redis is a real server)."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

import psutil
import pytest
import redis

from events.catalogue import InvalidEvent
from events.log import DEFAULT_MAX_BYTES, Event, Gap, envelope_bytes, open_event_log
from tests.samples import STATS


def health(i: int, size: int = 0) -> dict:
    """A health_change payload; with ``size``, its message is about that many bytes (unique per ``i``)."""
    # Non-ASCII, one character beyond the BMP: the bound counts UTF-8 bytes, not what a Python str takes.
    message = f"{i}:" + "é" * (size // 2) + "🙂" if size else str(i)
    return {"component": f"c{i}", "status": "healthy", "message": message, "overall": "healthy"}


@pytest.fixture(params=["memory", "redis"])
def make_log(request):
    logs = []

    def factory(max_events=100, max_age_s=3600.0, max_bytes=DEFAULT_MAX_BYTES):
        if request.param == "memory":
            url = "memory://"
        else:
            url = request.getfixturevalue("redis_url")
        log = open_event_log(url, max_events, max_age_s, max_bytes)
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


def test_history_is_bounded_by_bytes(make_log):
    log = make_log(max_events=1000, max_bytes=20_000)
    epoch, _ = log.head()
    sizes = [envelope_bytes(log.publish("health_change", health(i, 1000)).raw) for i in range(100)]
    assert log.head() == (epoch, 100)  # trimming the oldest is not a lost history: same epoch
    kept, held = log.usage()
    assert held == sum(sizes[-kept:]) <= 20_000 < held + sizes[-kept - 1]  # drops only what it must
    first = 100 - kept + 1
    assert [e.seq for e in log.read_after(first - 1, epoch)] == list(range(first, 101))  # the rest replays
    assert [e.data["component"] for e in log.read_after(98, epoch)] == ["c98", "c99"]
    gap = log.read_after(first - 2, epoch)
    assert isinstance(gap, Gap) and (gap.epoch, gap.seq) == (epoch, 100)
    assert isinstance(log.read_after(0, epoch), Gap)
    assert [e.seq for e in log.recent(1000)[2]] == list(range(first, 101))
    assert sum(envelope_bytes(e.raw) for e in log.recent(1000)[2]) == held


def test_an_event_larger_than_the_byte_bound_is_still_kept_alone(make_log):
    log = make_log(max_bytes=5_000)
    log.publish("health_change", health(1, 1000))
    big = log.publish("health_change", health(2, 8000))
    epoch, _ = log.head()
    assert log.usage() == (1, envelope_bytes(big.raw))
    assert [e.data["message"] for e in log.read_after(1, epoch)] == [big.data["message"]]
    assert isinstance(log.read_after(0, epoch), Gap)
    log.publish("health_change", health(3, 1000))
    assert log.usage()[0] == 1 and [e.seq for e in log.read_after(2, epoch)] == [3]


def test_wait_after_behind_the_byte_bound_is_a_gap_of_the_same_epoch(make_log):
    log = make_log(max_bytes=10_000)
    epoch, _ = log.head()
    for i in range(30):
        log.publish("health_change", health(i, 1000))
    gap = log.wait_after(1, epoch, timeout=0.1)
    assert isinstance(gap, Gap) and (gap.epoch, gap.seq) == (epoch, 30)


def test_memory_log_holds_its_byte_bound_of_large_events_and_no_more():
    bound = 16 * 2**20
    log = open_event_log("memory://", 10_000, 3600.0, bound)
    log.publish("health_change", health(0, 60_000))
    gc.collect()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        written = sum(envelope_bytes(log.publish("health_change", health(i, 60_000)).raw) for i in range(1, 2000))
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    rss_growth = process.memory_info().rss - rss_before
    kept, held = log.usage()
    assert written > 6 * bound  # the history was trimmed many times over
    assert held <= bound and kept < 2000
    # Trimmed events leave nothing behind: what Python still holds is the kept envelopes, about once.
    assert retained < 1.1 * bound, retained
    assert rss_growth < 3 * bound, rss_growth  # a generous sanity bound: the allocator may keep some
    epoch, head = log.head()
    assert [e.seq for e in log.read_after(head - kept, epoch, limit=5)] == list(range(head - kept + 1, head - kept + 6))
    assert isinstance(log.read_after(head - kept - 1, epoch), Gap)


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


def test_redis_byte_count_stays_exact_with_several_appenders(redis_url):
    bound = 50_000
    logs = [open_event_log(redis_url, 10_000, 3600, bound) for _ in range(4)]  # a connection each

    def append(log, worker):
        for i in range(40):
            log.publish("health_change", health(worker * 100 + i, 600 + 97 * (i % 7)))

    threads = [threading.Thread(target=append, args=(log, n)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    stream = logs[0].stream
    entries = client.xrange(stream)
    kept, held = logs[0].usage()
    assert held == sum(envelope_bytes(fields["e"]) for _id, fields in entries) <= bound
    assert kept == len(entries) and logs[0].head()[1] == 160
    assert [int(i.split("-")[0]) for i, _ in entries] == list(range(161 - kept, 161))
    client.close()
    for log in logs:
        log.close()


def test_redis_byte_count_is_rebuilt_for_a_stream_written_without_it(redis_url):
    log = open_event_log(redis_url, 100, 3600, 30_000)
    for i in range(10):
        log.publish("health_change", health(i, 1000))
    epoch, _ = log.head()
    client = redis.Redis.from_url(redis_url.split("?")[0])
    client.delete(f"{log.stream}:bytes")  # as a stream from before the byte bound, or an evicted key
    for i in range(10, 40):
        log.publish("health_change", health(i, 1000))
    entries = client.xrange(log.stream)
    assert log.usage() == (len(entries), sum(len(fields[b"e"]) for _id, fields in entries))
    assert log.usage()[1] <= 30_000 and log.head() == (epoch, 40)
    client.close()
    log.close()


def test_redis_memory_comes_down_when_the_byte_bound_trims(redis_url):
    bound = 4 * 2**20
    log = open_event_log(redis_url, 10_000, 3600, bound)
    for i in range(300):
        log.publish("health_change", health(i, 60_000))
    client = redis.Redis.from_url(redis_url.split("?")[0])
    stream_bytes = client.memory_usage(log.stream, samples=0)  # 0: every node, not an estimate
    kept, held = log.usage()
    assert held <= bound and kept < 300
    assert stream_bytes < 1.25 * bound, stream_bytes
    client.close()
    log.close()
