"""The event log: one interface, a backend per URL scheme (``memory://``, ``redis://``).

A log assigns each appended event a strictly increasing ``seq`` and keeps a bounded history (by count,
by the bytes of the envelopes and by age) that any reader can replay from a seq. ``epoch`` names one
history: it changes when the history is lost, so a reader holding a seq of another epoch knows it must
start again from a snapshot. Trimming the oldest events to honour the bounds is not a loss of history:
the epoch stays, and a reader further behind than what is kept gets a ``Gap``.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from typing import Any
from urllib.parse import urlparse

from events.catalogue import EventType, validate
from events.serialize import dumps, iso_utc, utc_now

DEFAULT_MAX_BYTES = 64 * 2**20


def envelope_bytes(raw: str) -> int:
    """The UTF-8 size of an envelope: what the byte bound counts (and what Redis stores)."""
    return len(raw) if raw.isascii() else len(raw.encode())


@dataclasses.dataclass(frozen=True)
class Event:
    seq: int
    epoch: str
    type: str
    ts: str
    data: dict[str, Any]
    # The envelope as sent on the wire, kept so fan-out never serialises an event twice.
    raw: str = dataclasses.field(repr=False, compare=False, default="")

    @classmethod
    def create(cls, seq: int, epoch: str, kind: str, data: dict[str, Any]) -> Event:
        ts = iso_utc(utc_now())
        envelope = {"seq": seq, "epoch": epoch, "type": kind, "ts": ts, "data": data}
        return cls(seq, epoch, kind, ts, data, dumps(envelope))

    @classmethod
    def from_raw(cls, raw: str) -> Event:
        e = json.loads(raw)
        return cls(e["seq"], e["epoch"], e["type"], e["ts"], e["data"], raw)

    def envelope(self) -> dict[str, Any]:
        return {"seq": self.seq, "epoch": self.epoch, "type": self.type, "ts": self.ts, "data": self.data}


@dataclasses.dataclass(frozen=True)
class Gap:
    """``read_after`` cannot replay: the epoch changed or the history no longer reaches back."""

    epoch: str
    seq: int
    reason: str


def position_gap(seq: int, epoch: str | None, cur_epoch: str, last: int) -> Gap | None:
    """The ``Gap`` when ``(epoch, seq)`` is not a position of this log's history, else None."""
    if epoch is not None and epoch != cur_epoch:
        return Gap(cur_epoch, last, "epoch changed")
    if seq > last or seq < 0:
        return Gap(cur_epoch, last, "unknown seq")
    return None


class EventLogUnavailable(RuntimeError):
    """The backend cannot be reached right now (Redis down); callers retry or degrade."""


class EventLog(abc.ABC):
    """Ordered, bounded, replayable history of events, shared by every process that opens it.

    The history keeps at most ``max_events`` events whose envelopes add up to at most ``max_bytes``
    (the newest event is always kept, even when it alone is larger), none older than ``max_age_s``.
    """

    def __init__(self, max_events: int, max_age_s: float, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_events < 1 or max_bytes < 1:
            raise ValueError(f"an event log keeps at least one event and one byte, not {max_events} / {max_bytes}")
        self.max_events = max_events
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes

    def publish(self, kind: str | EventType, data: Any = None) -> Event:
        """Validate ``data`` against the schema of ``kind`` and append it; raises ``InvalidEvent``."""
        event_type, payload = validate(kind, data)
        return self._append(event_type.value, payload)


    @abc.abstractmethod
    def _append(self, kind: str, data: dict[str, Any]) -> Event: ...

    @abc.abstractmethod
    def head(self) -> tuple[str, int]:
        """The current ``(epoch, last seq)``; seq is 0 before the first event."""

    @abc.abstractmethod
    def read_after(self, seq: int, epoch: str | None, limit: int = 1000) -> list[Event] | Gap:
        """Events with seq > ``seq`` in order (at most ``limit``), or a ``Gap``."""

    @abc.abstractmethod
    def wait_after(self, seq: int, epoch: str | None, timeout: float) -> list[Event] | Gap:
        """Like ``read_after`` but block up to ``timeout`` seconds for at least one event."""

    @abc.abstractmethod
    def recent(self, limit: int) -> tuple[str, int, list[Event]]:
        """The newest ``limit`` events still kept (count, bytes and age), oldest first, with the epoch
        and head seq they were read at."""

    @abc.abstractmethod
    def usage(self) -> tuple[int, int]:
        """``(events kept, bytes of their envelopes)``: what the count and byte bounds apply to."""

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Hold (or renew) the lease ``name`` for ``ttl_s``; True if ``owner`` holds it.

        Background producers that must run once per deployment (the stats sampler, the health
        monitor) run only in the process holding their lease. A single process always holds it.
        """
        return True

    def ping(self) -> None:
        """Raise ``EventLogUnavailable`` when the backend cannot be reached."""

    def close(self) -> None:
        """Release connections."""

    def describe(self) -> str:
        return type(self).__name__


def open_event_log(
    url: str, max_events: int = 10_000, max_age_s: float = 86_400.0, max_bytes: int = DEFAULT_MAX_BYTES
) -> EventLog:
    """Open the log named by ``url``: ``memory://`` or ``redis://host:port/db[?stream=name]``."""
    scheme = urlparse(url).scheme
    if scheme == "memory":
        from events.memory import MemoryEventLog

        return MemoryEventLog(max_events, max_age_s, max_bytes)
    if scheme in {"redis", "rediss"}:
        from events.redis_log import RedisEventLog

        return RedisEventLog(url, max_events, max_age_s, max_bytes)
    raise ValueError(f"unsupported event log URL {url!r}: use memory:// or redis://host:port/db")
