"""In-process event log: a bounded ring, one epoch per process (lost on restart, by design).

The ring keeps each event as its envelope in UTF-8 only, not the ``Event`` with its parsed ``data`` (a
payload of many small numbers takes several times its JSON size as Python objects, and a ``str`` with
one emoji takes four bytes a character): what the byte bound counts is then what the history holds,
and a trimmed event leaves nothing behind. Readers get ``Event.from_raw`` copies, decoded and parsed
outside the lock, as the Redis log parses its entries.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from typing import Any

from events.log import DEFAULT_MAX_BYTES, Event, EventLog, Gap, position_gap


class MemoryEventLog(EventLog):
    def __init__(self, max_events: int, max_age_s: float, max_bytes: int = DEFAULT_MAX_BYTES):
        super().__init__(max_events, max_age_s, max_bytes)
        self.epoch = uuid.uuid4().hex
        self._seq = 0
        # (monotonic time appended, envelope in UTF-8), oldest first; their seqs run up to self._seq.
        self._kept: collections.deque[tuple[float, bytes]] = collections.deque()
        self._kept_bytes = 0
        self._cond = threading.Condition()

    def _append(self, kind: str, data: dict[str, Any]) -> Event:
        with self._cond:
            self._seq += 1
            event = Event.create(self._seq, self.epoch, kind, data)
            encoded = event.raw.encode()
            self._kept.append((time.monotonic(), encoded))
            self._kept_bytes += len(encoded)
            self._prune()
            self._cond.notify_all()
        return event

    def _prune(self) -> None:
        """Drop the oldest events past the count or byte bound (never the newest) or the age bound."""
        kept = self._kept
        while len(kept) > 1 and (len(kept) > self.max_events or self._kept_bytes > self.max_bytes):
            self._kept_bytes -= len(kept.popleft()[1])
        cutoff = time.monotonic() - self.max_age_s
        while kept and kept[0][0] < cutoff:
            self._kept_bytes -= len(kept.popleft()[1])

    def head(self) -> tuple[str, int]:
        with self._cond:
            return self.epoch, self._seq

    def _read(self, seq: int, epoch: str | None, limit: int) -> list[bytes] | Gap:
        if gap := position_gap(seq, epoch, self.epoch, self._seq):
            return gap
        if seq == self._seq:
            return []
        self._prune()
        first = self._seq - len(self._kept) + 1
        if not self._kept or first > seq + 1:
            return Gap(self.epoch, self._seq, "history no longer reaches back that far")
        start = seq + 1 - first
        return [self._kept[i][1] for i in range(start, min(len(self._kept), start + limit))]

    @staticmethod
    def _parsed(result: list[bytes] | Gap) -> list[Event] | Gap:
        return result if isinstance(result, Gap) else [Event.from_raw(raw.decode()) for raw in result]

    def read_after(self, seq: int, epoch: str | None, limit: int = 1000) -> list[Event] | Gap:
        with self._cond:
            result = self._read(seq, epoch, limit)
        return self._parsed(result)

    def recent(self, limit: int) -> tuple[str, int, list[Event]]:
        with self._cond:
            self._prune()
            kept = len(self._kept)
            raws = [self._kept[i][1] for i in range(max(0, kept - limit), kept)]
            epoch, seq = self.epoch, self._seq
        return epoch, seq, [Event.from_raw(raw.decode()) for raw in raws]

    def usage(self) -> tuple[int, int]:
        with self._cond:
            self._prune()
            return len(self._kept), self._kept_bytes

    def wait_after(self, seq: int, epoch: str | None, timeout: float) -> list[Event] | Gap:
        with self._cond:
            self._cond.wait_for(lambda: self._seq != seq, timeout=timeout)
            result = self._read(seq, epoch, 1000)
        return self._parsed(result)

    def describe(self) -> str:
        return "memory://"
