"""Per-process fan-out: one pump thread reads the event log and hands events to local subscribers.

Each WebSocket client owns a ``Mailbox``; listeners (the live-state projection) see every event before
any client does, under the same lock that registers new subscribers, so "snapshot at seq S" plus
"everything the mailbox receives after S" is the exact stream with no gap and no double.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from events.catalogue import EventType, InvalidEvent
from events.log import Event, EventLog, EventLogUnavailable, Gap

log = logging.getLogger(__name__)


class Mailbox:
    """A subscriber's inbox: event batches (bounded by event count) and control messages (unbounded)."""

    def __init__(self, max_events: int):
        self.max_events = max_events
        self.pending_events = 0
        self.overflowed = False
        self._items: collections.deque[tuple[str, Any]] = collections.deque()
        self._cond = threading.Condition()

    def offer_events(self, events: list[Event]) -> bool:
        """Queue ``events``; on overflow drop them, flag the mailbox and wake its reader (who disconnects)."""
        with self._cond:
            if self.overflowed:
                return False
            if self.pending_events + len(events) > self.max_events:
                self.overflowed = True
                self._items.clear()
                self.pending_events = 0
                self._cond.notify_all()
                return False
            self._items.append(("events", events))
            self.pending_events += len(events)
            self._cond.notify_all()
            return True

    def put(self, kind: str, value: Any = None) -> None:
        with self._cond:
            self._items.append((kind, value))
            self._cond.notify_all()

    def put_client(self, text: str, limit: int = 256) -> bool:
        """Queue a message from the client; False when it sends faster than the session handles them."""
        with self._cond:
            if sum(1 for kind, _ in self._items if kind == "client") >= limit:
                return False
            self._items.append(("client", text))
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> tuple[str, Any] | None:
        """The next item, ``("overflow", None)`` once overflowed, or ``None`` after ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self.overflowed, timeout=timeout):
                return None
            if self.overflowed:
                return ("overflow", None)
            item = self._items.popleft()
            if item[0] == "events":
                self.pending_events -= len(item[1])
            return item

    def drain_events(self, limit: int) -> list[Event]:
        """Take queued event batches (up to about ``limit`` events) without waiting."""
        out: list[Event] = []
        with self._cond:
            while self._items and self._items[0][0] == "events" and len(out) < limit:
                batch = self._items.popleft()[1]
                self.pending_events -= len(batch)
                out.extend(batch)
        return out


class Listener:
    """Sees every event in order; ``reset`` when the history was lost (a new epoch)."""

    def bootstrap(self, epoch: str, seq: int, events: list[Event]) -> None: ...

    def apply(self, events: list[Event]) -> None: ...


class Hub:
    def __init__(self, event_log: EventLog, poll_s: float = 1.0, bootstrap_events: int = 10_000):
        self.log = event_log
        self.poll_s = poll_s
        self.bootstrap_events = bootstrap_events
        self.listeners: list[Listener] = []
        self.epoch = ""
        self.seq = 0
        self.available = True
        self.last_error = ""
        self._mailboxes: set[Mailbox] = set()
        # Who the current thread acts for (set by the app: the user of the request being served);
        # events published meanwhile name them as ``actor``.
        self.actor: Callable[[], str | None] = lambda: None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._bootstrap()
        self._thread = threading.Thread(target=self._pump, name="mlops-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.disconnect_all(1001, "server shutting down")
        if self._thread:
            self._thread.join(timeout=self.poll_s + 6)

    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def _bootstrap(self) -> None:
        try:
            epoch, seq, events = self.log.recent(self.bootstrap_events)
            self.available, self.last_error = True, ""
        except EventLogUnavailable as exc:
            epoch, seq, events = "", 0, []
            self.available, self.last_error = False, str(exc)
        with self._lock:
            self.epoch, self.seq = epoch, seq
            for listener in self.listeners:
                listener.bootstrap(epoch, seq, events)

    # -- publishing and subscribing ------------------------------------------------------------------
    def publish(self, kind: str | EventType, data: Any = None) -> Event:
        """Validate and append to the log; every process's subscribers receive it through their pump."""
        return self.log.publish(kind, self._with_actor(data))

    def announce(self, kind: str | EventType, data: Any = None) -> Event | None:
        """Publish news of a change that is already stored: an unreachable log is logged, not raised,
        so the caller still answers with success (pages reload their snapshot once the log is back)."""
        try:
            return self.log.publish(kind, self._with_actor(data))
        except EventLogUnavailable as exc:
            log.warning("%s not published (the change itself is stored): %s", kind, exc)
            return None
        except InvalidEvent:  # a bug, but the change is committed: answer the request, loudly log the bug
            log.exception("%s not published: its payload breaks the catalogue (the change itself is stored)", kind)
            return None

    def _with_actor(self, data: Any) -> Any:
        actor = self.actor()
        if actor is None or not isinstance(data, dict) or "actor" in data:
            return data
        return {**data, "actor": actor}

    def subscribe(self, max_events: int) -> tuple[Mailbox, str, int]:
        """A new mailbox and the ``(epoch, seq)`` after which it receives every event."""
        box = Mailbox(max_events)
        with self._lock:
            self._mailboxes.add(box)
            return box, self.epoch, self.seq

    def unsubscribe(self, box: Mailbox) -> None:
        with self._lock:
            self._mailboxes.discard(box)

    def clients(self) -> int:
        with self._lock:
            return len(self._mailboxes)

    def disconnect_all(self, code: int = 1012, reason: str = "server restarting") -> int:
        """Ask every connected client to close (they reconnect and resume); returns how many."""
        with self._lock:
            boxes = list(self._mailboxes)
        for box in boxes:
            box.put("close", (code, reason))
        return len(boxes)

    def position(self) -> tuple[str, int]:
        with self._lock:
            return self.epoch, self.seq

    # -- the pump ------------------------------------------------------------------------------------
    def _pump(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                if not self.epoch:  # started while the log was unreachable
                    self._bootstrap()
                    if not self.epoch:
                        raise EventLogUnavailable(self.last_error)
                result = self.log.wait_after(self.seq, self.epoch, timeout=self.poll_s)
                self.available, self.last_error, backoff = True, "", 0.2
            except EventLogUnavailable as exc:
                if self.available:
                    log.warning("event log unavailable, retrying: %s", exc)
                self.available, self.last_error = False, str(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception:  # a bug must not kill live delivery for every client of this process
                log.exception("event pump failed; retrying")
                self._stop.wait(1.0)
                continue
            if isinstance(result, Gap):
                log.warning("event history lost (%s); clients will reload their snapshot", result.reason)
                self._bootstrap()
                self._broadcast_control("reset", {"epoch": self.epoch, "seq": self.seq})
            elif result:
                self._deliver(result)

    def _deliver(self, events: list[Event]) -> None:
        slow: list[Mailbox] = []
        with self._lock:
            for listener in self.listeners:
                try:
                    listener.apply(events)
                except Exception:
                    log.exception("listener %r failed on events %d..%d", listener, events[0].seq, events[-1].seq)
            self.seq = events[-1].seq
            for box in self._mailboxes:
                if not box.offer_events(events):
                    slow.append(box)
        for box in slow:
            log.info("disconnecting a slow WebSocket client (%d events queued)", box.max_events)

    def _broadcast_control(self, kind: str, value: Any) -> None:
        with self._lock:
            boxes = list(self._mailboxes)
        for box in boxes:
            box.put(kind, value)

