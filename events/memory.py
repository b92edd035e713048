"""In-process event log: a bounded ring, one epoch per process (lost on restart, by design)."""

from __future__ import annotations

import collections
import threading
import time
import uuid
from typing import Any

from events.log import Event, EventLog, Gap, position_gap


class MemoryEventLog(EventLog):
    def __init__(self, max_events: int, max_age_s: float):
        super().__init__(max_events, max_age_s)
        self.epoch = uuid.uuid4().hex
        self._seq = 0
        # (monotonic time appended, event); bounded by count here and by age in _prune.
        self._events: collections.deque[tuple[float, Event]] = collections.deque(maxlen=max_events)
        self._cond = threading.Condition()

    def _append(self, kind: str, data: dict[str, Any]) -> Event:
        with self._cond:
            self._seq += 1
            event = Event.create(self._seq, self.epoch, kind, data)
            self._events.append((time.monotonic(), event))
            self._prune()
            self._cond.notify_all()
        return event

    def _prune(self) -> None:
        cutoff = time.monotonic() - self.max_age_s
        while self._events and self._events[0][0] < cutoff:
            self._events.popleft()

    def head(self) -> tuple[str, int]:
        with self._cond:
            return self.epoch, self._seq

    def _read(self, seq: int, epoch: str | None, limit: int) -> list[Event] | Gap:
        if gap := position_gap(seq, epoch, self.epoch, self._seq):
            return gap
        if seq == self._seq:
            return []
        self._prune()
        if not self._events or self._events[0][1].seq > seq + 1:
            return Gap(self.epoch, self._seq, "history no longer reaches back that far")
        first = self._events[0][1].seq
        start = seq + 1 - first
        return [self._events[i][1] for i in range(start, min(len(self._events), start + limit))]

    def read_after(self, seq: int, epoch: str | None, limit: int = 1000) -> list[Event] | Gap:
        with self._cond:
            return self._read(seq, epoch, limit)

    def recent(self, limit: int) -> tuple[str, int, list[Event]]:
        with self._cond:
            self._prune()
            kept = len(self._events)
            return self.epoch, self._seq, [self._events[i][1] for i in range(max(0, kept - limit), kept)]

    def wait_after(self, seq: int, epoch: str | None, timeout: float) -> list[Event] | Gap:
        with self._cond:
            self._cond.wait_for(lambda: self._seq != seq, timeout=timeout)
            return self._read(seq, epoch, 1000)

    def describe(self) -> str:
        return "memory://"
