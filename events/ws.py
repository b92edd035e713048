"""The ``/ws`` endpoint: hello, replay or reset, batched ``events`` frames, resume, heartbeat.

Protocol (see ARCHITECTURE.md): the client connects with ``?after=<seq>&epoch=<epoch>``; the server
sends ``{"kind":"hello","epoch","seq"}``, then the missed events or ``{"kind":"reset"}``, then
``{"kind":"events","events":[...]}`` frames. The client may send ``{"kind":"resume","after":N}`` when it
sees a gap, ``{"kind":"ping"}`` (answered with ``pong``) and ``{"kind":"pong"}``. One thread per
connection sends; a reader thread feeds client messages into the same mailbox, so sends never race.

Limits: a process holds at most ``ws_max_clients`` sockets (more get 503 before the upgrade), every
frame must be taken within ``ws_send_timeout_s`` (else the connection is reset: a client that reads
nothing would never read a close frame either), and a peer that vanishes costs one log line.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import g, jsonify, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from events.hub import Hub, Mailbox
from events.log import Event, EventLogUnavailable, Gap
from events.serialize import dumps

log = logging.getLogger(__name__)

MAX_FRAME_EVENTS = 500
CLOSE_SLOW_CONSUMER = 1013  # "try again later": the client reconnects and resumes from its seq
CLOSE_PROTOCOL = 1008
MAX_CLIENT_MESSAGE = 64 * 1024  # the client sends small control messages only
RESUME_MIN_INTERVAL_S = 0.2
RETRY_AFTER_S = 5  # told to clients refused for lack of room; browsers ignore it and back off with jitter
MAX_ECHO_CHARS = 64  # a ping's ``t`` comes back in the pong when it is a number or a string this short
MAX_ECHO_INT = 2**53  # past it a JavaScript reader no longer gets the same number back


class SendTimeout(TimeoutError):
    """The client did not take a frame within the send timeout."""


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    if whole == 0 and micros < 1000:
        micros = 1000  # a zero timeval means "wait forever"
    return struct.pack("ll", whole, micros)


class TimedSocket:
    """The connection's socket as simple_websocket uses it: each write goes out whole or fails by a deadline.

    simple_websocket writes with ``sock.send`` and ignores a short count (half a frame), and its reader
    thread blocks in ``sock.recv`` on the same socket, so ``settimeout`` (which would time out that read
    too) does not fit. SO_SNDTIMEO bounds each kernel send of a blocking socket and nothing else; the loop
    bounds the whole frame; the lock keeps the reader's replies from cutting into a frame.
    """

    def __init__(self, sock: socket.socket, timeout_s: float):
        self._sock = sock
        self.timeout_s = timeout_s
        self.timed_out = False  # a frame may be half written: nothing more can be framed after it
        self._lock = threading.Lock()

    def send(self, data: bytes) -> int:
        deadline = time.monotonic() + self.timeout_s
        if not self._lock.acquire(timeout=self.timeout_s):
            raise SendTimeout(f"another write held the socket for {self.timeout_s:g} s")
        try:
            view = memoryview(data)
            while view and not self.timed_out:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise BlockingIOError
                    self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(left))
                    view = view[self._sock.send(view):]
                except (BlockingIOError, TimeoutError):  # SO_SNDTIMEO (or a socket timeout) ran out
                    self.timed_out = True
            if self.timed_out:
                raise SendTimeout(f"the client took no frame for {self.timeout_s:g} s")
            return len(data)
        finally:
            self._lock.release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def frame(events: list[Event]) -> str:
    """One ``events`` frame from already-serialised envelopes (no re-encoding per client)."""
    return '{"kind":"events","events":[' + ",".join(e.raw for e in events) + "]}"


class Scope:
    """A socket that sees only some event types (a share link's chart), each payload cut down.

    Its frames carry ``upto``: every event the socket may see with a seq up to it is in this frame or
    an earlier one, so the client advances past the seqs it was not sent instead of asking for them.
    """

    def __init__(self, types: frozenset[str], project: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self.types = types
        self.project = project

    def frame(self, events: list[Event]) -> str | None:
        shown = [e for e in events if e.type in self.types]
        if not shown:
            return None
        if self.project is not None:
            raws = [dumps({**e.envelope(), "data": self.project(e.data)}) for e in shown]
        else:
            raws = [e.raw for e in shown]
        return '{"kind":"events","upto":' + str(events[-1].seq) + ',"events":[' + ",".join(raws) + "]}"


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def _finite_float(token: str) -> float:
    number = float(token)
    if not math.isfinite(number):  # 1e999
        raise ValueError(f"{token} is past the range of a number")
    return number


def _holds_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in ``value`` holds half a surrogate pair ("\\ud800"), which no frame can carry."""
    stack = [value]
    while stack:  # a loop, not recursion: a message may be nested as deep as json.loads allows
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def client_message(text: str) -> dict[str, Any] | None:
    """The client's message as an object with a string ``kind``, or None when it is not one.

    Only interoperable JSON (RFC 7493): NaN, Infinity, numbers past a double and lone surrogates are
    refused here, since an answer echoing them could not be encoded, and nesting past what
    json.loads can recurse into is refused instead of ending the session.
    """
    try:
        message = json.loads(text, parse_constant=_not_json, parse_float=_finite_float)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str) or _holds_lone_surrogate(message):
        return None
    return message


def _echo(t: Any) -> bool:
    """Whether a ping's ``t`` can go back in the pong as the client sent it."""
    if isinstance(t, bool):
        return False
    if isinstance(t, int):
        return -MAX_ECHO_INT <= t <= MAX_ECHO_INT
    if isinstance(t, float):
        return True  # finite: client_message refused the rest
    return isinstance(t, str) and len(t) <= MAX_ECHO_CHARS


def _int_arg(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    number = int(value)
    if number < 0:
        raise ValueError
    return number


class Session:
    """One connected client."""

    def __init__(self, ws, hub: Hub, *, max_queue: int, batch_ms: float, heartbeat_s: float,
                 scope: Scope | None = None, principal: Any = None):
        self.ws = ws
        self.hub = hub
        self.scope = scope
        self.principal = principal  # who opened it: SocketGuard closes it when their credentials end
        self.batch_s = batch_ms / 1000.0
        self.heartbeat_s = heartbeat_s
        self.max_queue = max_queue
        self.box: Mailbox | None = None
        self.epoch = ""
        self.last_sent = 0
        self.last_frame_at = 0.0
        self.last_heard = time.monotonic()
        self.last_resume = 0.0

    def send(self, message: dict[str, Any] | str) -> None:
        self.ws.send(message if isinstance(message, str) else dumps(message))

    def send_events(self, events: list[Event]) -> None:
        for start in range(0, len(events), MAX_FRAME_EVENTS):
            chunk = events[start : start + MAX_FRAME_EVENTS]
            text = frame(chunk) if self.scope is None else self.scope.frame(chunk)
            if text is not None:
                self.send(text)
        self.last_frame_at = time.monotonic()

    def replay(self, after: int, epoch: str | None, upto: int) -> bool:
        """Send events in (after, upto]; on a gap send ``reset`` instead. False when reset."""
        while after < upto:
            try:
                result = self.hub.log.read_after(after, epoch, limit=MAX_FRAME_EVENTS)
            except EventLogUnavailable as exc:
                self.send({"kind": "error", "code": "event_log_unavailable", "message": str(exc)})
                return True
            if isinstance(result, Gap):
                self.send({"kind": "reset", "epoch": self.epoch, "seq": upto, "reason": result.reason})
                return False
            result = [e for e in result if e.seq <= upto]
            if not result:
                break
            self.send_events(result)
            after = result[-1].seq
        return True

    def run(self, after: int | None, epoch: str | None) -> None:
        self.box, self.epoch, head = self.hub.subscribe(self.max_queue)
        try:
            threading.Thread(target=self._read, name="mlops-ws-reader", daemon=True).start()
            self.send({"kind": "hello", "epoch": self.epoch, "seq": head, "heartbeat_s": self.heartbeat_s})
            if after is not None and self.epoch:
                if epoch != self.epoch or after > head:
                    self.send({"kind": "reset", "epoch": self.epoch, "seq": head, "reason": "epoch changed"})
                else:
                    self.replay(after, epoch, head)
            self.last_sent = head
            self._loop()
        finally:
            self.hub.unsubscribe(self.box)

    def _read(self) -> None:
        """Reader thread: client messages become mailbox items, handled by the sending thread."""
        try:
            while True:
                text = self.ws.receive()
                if text is None:
                    break
                if not self.box.put_client(text):
                    self.ws.close(reason=CLOSE_PROTOCOL, message="too many messages")
                    break
        except (ConnectionClosed, OSError):
            pass  # the sending thread sees the same end and logs it
        except Exception:
            log.exception("WebSocket reader failed")
        self.box.put("closed")

    def _loop(self) -> None:
        while True:
            item = self.box.get(timeout=self.heartbeat_s)
            now = time.monotonic()
            # Checked on every turn, not only when idle: the stats stream never lets the stream idle.
            if now - self.last_heard > 3 * self.heartbeat_s and (item is None or item[0] != "client"):
                self.ws.close(reason=1001, message="heartbeat timeout")
                return
            if item is None:
                self.send({"kind": "ping", "t": time.time()})
                continue
            kind, value = item
            if kind == "events":
                wait = self.batch_s - (now - self.last_frame_at)
                if wait > 0:  # coalesce bursts into fewer frames; an idle stream sends at once
                    time.sleep(wait)
                events = value + self.box.drain_events(MAX_FRAME_EVENTS * 4)
                fresh = [e for e in events if e.seq > self.last_sent]
                if fresh:
                    self.send_events(fresh)
                    self.last_sent = fresh[-1].seq
            elif kind == "client":
                self.last_heard = now
                self._on_client(value)
            elif kind == "reset":
                self.epoch, self.last_sent = value["epoch"], value["seq"]
                self.send({"kind": "reset", **value, "reason": "event history lost"})
            elif kind == "overflow":
                self.ws.close(reason=CLOSE_SLOW_CONSUMER, message="slow consumer: reconnect and resume")
                return
            elif kind == "close":
                code, reason = value
                self.ws.close(reason=code, message=reason)
                return
            elif kind == "closed":
                return

    def _on_client(self, text: str) -> None:
        message = client_message(text)
        if message is None:
            self.send({"kind": "error", "code": "bad_message", "message": "expected a JSON object with a string 'kind'"})
            return
        kind = message["kind"]
        if kind == "resume":
            now = time.monotonic()
            if now - self.last_resume < RESUME_MIN_INTERVAL_S:
                return  # a replay is already on its way; a client asking in a loop gets one per interval
            self.last_resume = now
            after, epoch = message.get("after"), message.get("epoch", self.epoch)
            if isinstance(after, bool) or not isinstance(after, int) or after < 0:
                self.send({"kind": "error", "code": "bad_message", "message": "resume needs an integer 'after' >= 0"})
                return
            if epoch is not None and not isinstance(epoch, str):
                self.send({"kind": "error", "code": "bad_message", "message": "resume's 'epoch' is a string"})
                return
            self.replay(after, epoch, self.last_sent)
        elif kind == "ping":
            t = message.get("t")
            self.send({"kind": "pong", "t": t} if _echo(t) else {"kind": "pong"})
        elif kind == "pong":
            pass
        else:
            shown = kind if len(kind) <= MAX_ECHO_CHARS else kind[:MAX_ECHO_CHARS] + "…"
            self.send({"kind": "error", "code": "unknown_kind", "message": f"unknown message kind {shown!r}"})


def _release(ws) -> None:
    """Finish the closing handshake and end the TCP connection.

    Under Werkzeug the request handler keeps its own reference to the socket and waits for another
    request on it, so the client would sit in CLOSING until its own timeout; shutting the socket down
    ends the connection at once. gunicorn closes it by itself.
    """
    if getattr(ws, "mode", None) != "werkzeug":
        return
    if ws.connected:
        try:
            ws.close(reason=1001, message="going away")
        except (ConnectionClosed, OSError):
            pass
    ws.thread.join(timeout=1.0)  # the client's close reply ends the reader thread
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _abort(ws) -> None:
    """Reset the connection of a client that stopped taking data.

    It would not read a close frame either, and a graceful close leaves megabytes queued in the kernel
    while it probes a zero window for minutes; a reset (linger 0) frees them when the socket closes.
    The shutdown wakes the reader thread at once.
    """
    ws.connected = False  # nothing more is framed: flask-sock's own close() becomes a no-op
    try:
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Slots:
    """Open sockets of this process, at most ``limit``: one is taken before the upgrade, so a burst of
    reconnects cannot overshoot, and given back when the request ends, however it ends."""

    def __init__(self, limit: int):
        self.limit = limit
        self.taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.taken >= self.limit:
                return False
            self.taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1


class SocketGuard:
    """Closes open sockets whose credentials ended (token revoked or expired, user removed, share
    revoked) within ``interval_s``, in every process: each checks its own sockets against the database."""

    def __init__(self, still_valid: Callable[[list[Any]], set[int]], interval_s: float = 1.0):
        self.still_valid = still_valid
        self.interval_s = interval_s
        self._sessions: set[Session] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, session: Session) -> None:
        with self._lock:
            self._sessions.add(session)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlops-ws-guard", daemon=True)
                self._thread.start()

    def discard(self, session: Session) -> None:
        with self._lock:
            self._sessions.discard(session)

    def check(self) -> int:
        """Close the sockets whose credentials ended; returns how many."""
        with self._lock:
            sessions = [s for s in self._sessions if s.principal is not None and s.box is not None]
        if not sessions:
            return 0
        valid = self.still_valid([s.principal for s in sessions])
        ended = [s for i, s in enumerate(sessions) if i not in valid]
        for session in ended:
            session.box.put("close", (CLOSE_PROTOCOL, "credentials revoked or expired"))
        return len(ended)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as exc:  # the database is away: keep the sockets, try again
                log.warning("WebSocket credential check failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()


def register(sock: Sock, path: str, hub: Hub, settings, guard: SocketGuard | None = None,
             access: Callable[[], tuple[Any, Scope | None]] = lambda: (None, None)) -> None:
    """Serve the protocol at ``path`` on the Flask app ``sock`` is bound to.

    ``access()`` tells, for the request being upgraded, who opened it and which events it may see.
    """
    app = sock.app
    slots = Slots(settings.ws_max_clients)

    @app.before_request
    def admit():
        """Refuse a socket past the limit with a 503 before the upgrade, while a thread is still cheap."""
        if request.endpoint != "mlops_ws":
            return None
        if not slots.take():
            log.info("WebSocket refused: %d open, the limit of this process (MLOPS_WS_MAX_CLIENTS)", slots.limit)
            response = jsonify({"error": {
                "code": "too_many_sockets",
                "message": "this server holds as many live connections as it may; retry later",
                "details": {"max_clients": slots.limit},
            }})
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        g.mlops_ws_slot = True
        return None

    @app.teardown_request
    def free_slot(_exc):
        if g.pop("mlops_ws_slot", False):
            slots.give_back()

    @sock.route(path, endpoint="mlops_ws")
    def websocket(ws):
        ws.sock = TimedSocket(ws.sock, settings.ws_send_timeout_s)
        peer = f"{request.remote_addr}:{request.environ.get('REMOTE_PORT', '?')}"
        try:
            after = _int_arg(request.args.get("after"))
        except ValueError:
            ws.close(reason=CLOSE_PROTOCOL, message="'after' must be an integer >= 0")
            _release(ws)
            return
        epoch = request.args.get("epoch") or None
        principal, scope = access()
        session = Session(
            ws, hub, max_queue=settings.ws_queue, batch_ms=settings.ws_batch_ms, heartbeat_s=settings.ws_heartbeat_s,
            scope=scope, principal=principal,
        )
        if guard is not None:
            guard.add(session)
        try:
            session.run(after, epoch)
        except SendTimeout as exc:
            log.info("WebSocket %s reset (slow consumer): %s", peer, exc)
        except (ConnectionClosed, OSError) as exc:
            log.info("WebSocket %s gone: %r", peer, exc)
        finally:
            if guard is not None:
                guard.discard(session)
            if ws.sock.timed_out:  # also when the reader thread's reply was the write that timed out
                _abort(ws)
            _release(ws)

    upgrade = app.view_functions["mlops_ws"]

    def websocket_without_read_timeout(*args, **kwargs):
        """Clear the server's read timeout before simple_websocket's reader blocks on the socket.

        ``python app.py`` gives every connection a read timeout (stalled request bodies); on a socket it
        would end a quiet client, and it turns sends non-blocking so SO_SNDTIMEO stops applying. An open
        socket is bounded by the heartbeat and the send timeout instead.
        """
        server_socket = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
        if server_socket is not None:
            server_socket.settimeout(None)
        return upgrade(*args, **kwargs)

    app.view_functions["mlops_ws"] = websocket_without_read_timeout
