"""The /ws protocol against the real app on a real server, with a real WebSocket client."""

from __future__ import annotations

import dataclasses
import time
import json

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import wait_until
from tests.integration.wsclient import Client


def health(i: int) -> dict:
    return {"component": f"c{i}", "status": "healthy", "message": str(i), "overall": "healthy"}


def publish(server, n: int, start: int = 0) -> list:
    return [server.runtime.publish("health_change", health(start + i)) for i in range(n)]


def test_hello_then_live_events(live_server):
    client = Client(live_server.ws_url)
    epoch, seq = live_server.runtime.hub.position()
    assert client.hello["epoch"] == epoch and client.hello["seq"] == seq
    published = publish(live_server, 3)
    events = client.events(3)
    assert [e["seq"] for e in events] == [e.seq for e in published]
    assert events[0]["type"] == "health_change" and events[0]["data"]["component"] == "c0"
    assert set(events[0]) == {"seq", "epoch", "type", "ts", "data"}
    client.close()


def test_resume_after_seq_replays_exactly_the_missed_events(live_server):
    publish(live_server, 5)
    epoch, _ = live_server.runtime.log.head()
    client = Client(live_server.ws_url, after=2, epoch=epoch)
    assert [e["seq"] for e in client.events(3)] == [3, 4, 5]
    publish(live_server, 2, start=5)
    assert [e["seq"] for e in client.events(2)] == [6, 7]
    client.close()


def test_unknown_epoch_gets_reset(live_server):
    publish(live_server, 2)
    client = Client(live_server.ws_url, after=1, epoch="stale-epoch")
    reset = client.next_kind("reset")
    assert reset["epoch"] == live_server.runtime.log.head()[0]
    client.close()


def test_history_too_short_gets_reset(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, history=100))
    publish(server, 250)
    epoch, _ = server.runtime.log.head()
    client = Client(server.ws_url, after=10, epoch=epoch)
    assert client.next_kind("reset")["reason"].startswith("history")
    client.close()


def test_client_resume_request_resends(live_server):
    client = Client(live_server.ws_url)
    publish(live_server, 4)
    first = client.events(4)
    client.send({"kind": "resume", "after": first[0]["seq"]})
    again = client.events(3)
    assert [e["seq"] for e in again] == [e["seq"] for e in first[1:]]
    client.close()


def test_bursts_are_batched_into_frames(make_live_server, settings):
    batch_s = 0.5
    server = make_live_server(dataclasses.replace(settings, ws_batch_ms=batch_s * 1000))
    client = Client(server.ws_url)
    started = time.monotonic()
    publish(server, 300)
    publishing = time.monotonic() - started
    events = client.events(300)
    assert [e["seq"] for e in events] == list(range(1, 301))
    event_frames = [f for f in client.frames if f["kind"] == "events"]
    # At most one frame per batch window while events flow, however long publishing took.
    assert len(event_frames) <= publishing / batch_s + 2, f"{len(event_frames)} frames in {publishing:.2f} s"
    client.close()


def test_ping_and_bad_messages_get_answers(live_server):
    client = Client(live_server.ws_url)
    client.send({"kind": "ping", "t": 42})
    assert client.next_kind("pong")["t"] == 42
    client.send("not json")
    assert client.next_kind("error")["code"] == "bad_message"
    client.send({"kind": "resume", "after": "x"})
    assert client.next_kind("error")["code"] == "bad_message"
    client.send({"kind": "subscribe"})
    assert client.next_kind("error")["code"] == "unknown_kind"
    publish(live_server, 1)
    assert client.events(1)[0]["seq"] == 1  # still serving after bad input
    client.close()


def test_server_sends_heartbeats_when_idle(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, ws_heartbeat_s=0.5))
    client = Client(server.ws_url)
    assert client.next_kind("ping", timeout=3)["kind"] == "ping"
    client.close()


def test_silent_client_is_dropped(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, ws_heartbeat_s=0.5))
    client = Client(server.ws_url)
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(100):
            client.recv(timeout=5)  # pings only; never answered, so the server closes after ~1.5 s
    assert info.value.rcvd.code == 1001 and info.value.rcvd.reason == "heartbeat timeout"
    assert wait_until(lambda: server.runtime.hub.clients() == 0)


def test_slow_consumer_is_disconnected_then_resumes(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, ws_queue=200, ws_batch_ms=0, history=50_000))
    # A client that stops reading: websockets buffers one frame, then TCP back-pressure stalls the sender.
    from websockets.sync.client import connect

    stalled = connect(server.ws_url, max_queue=1).__enter__()
    assert wait_until(lambda: server.runtime.hub.clients() == 1)
    message = "x" * 2000
    published = 0
    while server.runtime.hub.clients() and published < 40_000:
        for i in range(500):
            server.runtime.publish("health_change", dict(health(i), message=message))
        published += 500
    assert wait_until(lambda: server.runtime.hub.clients() == 0), "slow client was never dropped"
    codes = []
    with pytest.raises(ConnectionClosed) as info:
        while True:
            codes.append(json.loads(stalled.recv(timeout=5))["kind"])
    assert info.value.rcvd.code == 1013 and "slow consumer" in info.value.rcvd.reason
    epoch, head = server.runtime.log.head()
    again = Client(server.ws_url, after=head - 100, epoch=epoch)
    assert [e["seq"] for e in again.events(100)] == list(range(head - 99, head + 1))
    again.close()


def test_bad_after_parameter_is_refused(live_server):
    from websockets.sync.client import connect

    conn = connect(f"{live_server.ws_url}?after=-3", open_timeout=5).__enter__()
    with pytest.raises(ConnectionClosed) as info:
        conn.recv(timeout=5)
    assert info.value.rcvd.code == 1008
    assert "after" in info.value.rcvd.reason


def test_disconnect_all_closes_and_client_resumes_without_gap(live_server):
    client = Client(live_server.ws_url)
    publish(live_server, 3)
    seen = client.events(3)
    assert live_server.runtime.hub.disconnect_all() == 1
    with pytest.raises(ConnectionClosed):
        for _ in range(50):
            client.recv(timeout=5)
    publish(live_server, 4, start=3)  # published while the client is away
    again = Client(live_server.ws_url, after=seen[-1]["seq"], epoch=seen[-1]["epoch"])
    assert [e["seq"] for e in again.events(4)] == [4, 5, 6, 7]
    again.close()


def test_many_clients_each_get_every_event(live_server):
    clients = [Client(live_server.ws_url) for _ in range(20)]
    publish(live_server, 50)
    for client in clients:
        assert [e["seq"] for e in client.events(50)] == list(range(1, 51))
        client.close()



def test_envelope_is_valid_json_with_iso_ts(live_server):
    client = Client(live_server.ws_url)
    publish(live_server, 1)
    raw = client.conn.recv(timeout=5)
    frame = json.loads(raw)
    assert frame["kind"] == "events" and frame["events"][0]["ts"].endswith("Z")
    client.close()


def test_silent_client_is_dropped_while_events_flow(make_live_server, settings):
    import threading

    server = make_live_server(dataclasses.replace(settings, ws_heartbeat_s=0.5))
    client = Client(server.ws_url)
    stop = threading.Event()

    def publisher():
        i = 0
        while not stop.wait(0.1):
            server.runtime.publish("health_change", health(i))
            i += 1

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            while time.monotonic() - started < 10:
                client.recv(timeout=5)  # events keep coming; the client never answers
        assert info.value.rcvd.reason == "heartbeat timeout"
    finally:
        stop.set()
        thread.join()
