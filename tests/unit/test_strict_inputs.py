"""What a /ws client sends is answered with a frame a socket can send, and the session lives on."""

from __future__ import annotations

import json

import pytest

from events import ws
from events.hub import Hub
from events.memory import MemoryEventLog


class FakeSocket:
    """Frames are encoded as simple_websocket encodes text frames, so unsendable text fails here too."""

    def __init__(self):
        self.sent: list[dict] = []

    def send(self, text: str) -> None:
        text.encode("utf-8")
        self.sent.append(json.loads(text))

    def close(self, reason: int = 1000, message: str = "") -> None:
        raise AssertionError(f"closed with {reason}: {message}")


@pytest.fixture
def session() -> tuple[ws.Session, FakeSocket]:
    event_log = MemoryEventLog(max_events=50, max_age_s=3600)
    event_log.publish("activity_update", {"message": "event 1", "category": "test"})
    hub = Hub(event_log)
    hub.epoch, hub.seq = event_log.head()
    socket = FakeSocket()
    client = ws.Session(socket, hub, max_queue=100, batch_ms=0, heartbeat_s=5)
    client.epoch, client.last_sent = event_log.head()
    return client, socket


def answers(session, text: str) -> list[dict]:
    client, socket = session
    socket.sent.clear()
    client._on_client(text)
    return socket.sent


@pytest.mark.parametrize("text", [
    "[" * 1000 + "]" * 1000,  # json.loads raised RecursionError
    "[" * 20_000,
    '{"kind":"ping","t":NaN}',  # dumps raised ValueError on the pong
    '{"kind":"ping","t":Infinity}',
    '{"kind":"ping","t":-Infinity}',
    '{"kind":"ping","t":1e999}',
    '{"kind":"ping","t":"\\ud800"}',  # the pong could not be encoded as UTF-8
    '{"kind":"ping","x":{"y":["\\udfff"]}}',
    '{"kind":"resume","after":NaN}',
    '{"kind":5}',
    '{"kind":["ping"]}',
    '["ping"]',
    '"ping"',
    "null",
], ids=["nested-1000", "open-20000", "nan", "inf", "-inf", "1e999", "lone-high", "lone-low-deep", "resume-nan",
        "kind-number", "kind-list", "list", "string", "null"])
def test_a_message_no_answer_could_echo_is_a_bad_message_and_the_session_lives_on(session, text):
    assert [(m["kind"], m["code"]) for m in answers(session, text)] == [("error", "bad_message")]
    assert answers(session, '{"kind":"ping","t":42}') == [{"kind": "pong", "t": 42}]


@pytest.mark.parametrize("t, pong", [
    (1715000000000.5, {"kind": "pong", "t": 1715000000000.5}),
    ("abc", {"kind": "pong", "t": "abc"}),
    ("\U0001f600", {"kind": "pong", "t": "\U0001f600"}),  # a valid pair, sent escaped or not
    (None, {"kind": "pong"}),
    (True, {"kind": "pong"}),
    ("x" * 65, {"kind": "pong"}),
    (2**53 + 1, {"kind": "pong"}),  # a JavaScript reader would get another number back
    ({"a": 1}, {"kind": "pong"}),
])
def test_a_ping_echoes_t_only_when_it_is_a_number_or_short_text(session, t, pong):
    assert answers(session, json.dumps({"kind": "ping", "t": t})) == [pong]
    assert answers(session, json.dumps({"kind": "ping", "t": t}, ensure_ascii=False)) == [pong]


def test_resume_wants_an_integer_after_and_a_text_epoch(session):
    for body in ({"after": True}, {"after": 1.5}, {"after": 0, "epoch": 7}):
        client, _ = session
        client.last_resume = 0.0  # past the rate limit
        assert [m["code"] for m in answers(session, json.dumps({"kind": "resume", **body}))] == ["bad_message"]
    client.last_resume = 0.0
    assert [m["kind"] for m in answers(session, json.dumps({"kind": "resume", "after": 0}))] == ["events"]


def test_an_unknown_kind_is_named_but_not_echoed_whole(session):
    [error] = answers(session, json.dumps({"kind": "k" * 60_000}))
    assert error["code"] == "unknown_kind" and len(error["message"]) < 120
