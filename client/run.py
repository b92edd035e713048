"""Report a training run to the dashboard from any Python script, in three lines.

    from client.run import Run

    with Run("http://127.0.0.1:8050", name="resnet", total=10) as run:
        for epoch in range(10):
            run.log(step=epoch + 1, loss=loss, acc=acc)

Leaving the block finishes the run; an exception inside it reports the run as failed with the
exception's text, then propagates. Without ``with``: ``run = Run(...)``, ``run.log(...)``, ``run.finish()``.

The training loop never waits for the dashboard. ``log`` validates its arguments (a bad metric is a
bug in the script, so it raises) and appends to a bounded in-memory buffer; a daemon thread creates
the run on the server, sends the buffer in batches, and retries with backoff while the dashboard is
slow, down or restarting. When the buffer is full the oldest entries are dropped and counted in
``dropped``. ``finish`` waits a bounded time for the rest and never raises for network problems:
they are logged as warnings on the ``client.run`` logger. Only the standard library is used.
"""

from __future__ import annotations

import atexit
import collections
import http.client
import json
import logging
import math
import numbers
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

MAX_NAME = 100
MAX_METRIC_NAME = 64  # the server's limits per entry
MAX_METRICS = 50
MAX_BATCH = 1000  # the server's limit per request
MAX_BODY_BYTES = 512 * 1024  # well under the server's 1 MB JSON bound, whatever the metric count
MAX_ERROR_CHARS = 2000
FIRST_BACKOFF_S = 0.5


class _Retry(Exception):
    """The request may succeed later: connection refused, timeout, 5xx, 404/409/429."""

    def __init__(self, reason: str, after: float | None = None):
        super().__init__(reason)
        self.after = after


class _Rejected(Exception):
    """The server refused the request itself (any other 4xx): sending it again will not help."""

    def __init__(self, reason: str, status: int):
        super().__init__(reason)
        self.status = status


class Run:
    """One training run on the dashboard at ``url`` (which may include a path prefix).

    ``buffer_size`` entries wait in memory at most (the oldest are dropped beyond); the sender posts
    up to ``batch_size`` of them at a time, at most every ``interval`` seconds unless a full batch is
    waiting. Each request gives up after ``timeout`` seconds; failed ones are retried after 0.5 s,
    1 s, 2 s ... up to ``max_backoff``. When nothing is logged for ``heartbeat`` seconds the last step
    is sent again, since the dashboard fails a run that stays silent for an hour. ``token`` (default:
    the ``MLOPS_TOKEN`` environment variable) is an API token of an editor, for dashboards with logins.
    """

    def __init__(
        self,
        url: str,
        name: str,
        total: int | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        buffer_size: int = 10_000,
        batch_size: int = 500,
        interval: float = 0.25,
        timeout: float = 2.0,
        max_backoff: float = 10.0,
        heartbeat: float = 600.0,
        token: str | None = None,
    ):
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"url must be an http(s) URL, got {url!r}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if not name.strip() or len(name) > MAX_NAME:
            raise ValueError(f"name must be 1 to {MAX_NAME} characters, got {name!r}")
        if total is not None:
            total = _integer("total", total, minimum=1)
        if not isinstance(buffer_size, int) or buffer_size < 1:
            raise ValueError("buffer_size must be a positive int")
        if not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        if not interval >= 0 or not timeout > 0 or not max_backoff > 0 or not heartbeat > 0:
            raise ValueError("interval must be >= 0; timeout, max_backoff and heartbeat > 0")

        self.name = name
        self.total = total
        self.base = url.rstrip("/")
        self._api = f"{self.base}/api/v1"
        self._create_body: dict[str, Any] = {"name": name, "total": total}
        if params:
            self._create_body["params"] = _params(params)
        self._batch_size = batch_size
        self._interval = interval
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._heartbeat = heartbeat
        token = token if token is not None else os.environ.get("MLOPS_TOKEN") or None
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

        self.id: str | None = None
        self.dropped = 0  # entries lost to a full buffer
        self.sent = 0  # entries the server accepted
        self.rejected = 0  # entries the server refused (a 4xx other than 404/429), or logged after it did
        self.last_error: str | None = None  # why the last request failed, while the dashboard is unreachable
        self.finished = False  # the server has the run's final status

        self._buffer: collections.deque[dict[str, Any]] = collections.deque(maxlen=buffer_size)
        self._wake = threading.Condition(threading.Lock())
        self._last_step: int | None = None
        self._closing = False  # finish() was called: flush, then send the final status
        self._stop = False  # the sender thread must exit now
        self._broken = False  # the server refused the run or closed it: nothing more is sent
        self._final: dict[str, Any] = {}
        self._failures = 0
        self._retry_at = 0.0
        self._next_send = 0.0
        self._last_contact = 0.0  # when the server last accepted something
        self._sent_step = 0  # the last step the server accepted
        self._thread = threading.Thread(target=self._send_loop, name=f"mlops-run:{name[:40]}", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, id={self.id!r}, sent={self.sent}, dropped={self.dropped})"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.finish(error=exc)
        return False

    @property
    def url(self) -> str | None:
        """The dashboard's Training page, where the run shows; None until the run is created."""
        return f"{self.base}/training" if self.id else None

    @property
    def pending(self) -> int:
        """Entries logged but not yet sent (the buffer, not counting a batch in flight)."""
        return len(self._buffer)

    def log(self, step: int, **metrics: float) -> None:
        """Record ``metrics`` at ``step`` without waiting for the network.

        ``step`` is an int >= 0, never below the previous one; each metric is a real number (numpy and
        torch scalars are converted with ``float``); NaN and infinities are sent as null.
        """
        step = _integer("step", step, minimum=0)
        entry = {"step": step, "metrics": _metrics(metrics)}
        with self._wake:
            if self._closing:
                raise RuntimeError(f"run {self.name!r} is finished; log() after finish() is not recorded")
            if self._last_step is not None and step < self._last_step:
                raise ValueError(f"step {step} is below the previous step {self._last_step}; steps must not decrease")
            self._last_step = step
            if self._broken:
                self.rejected += 1
                return
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
            self._buffer.append(entry)
            if len(self._buffer) in (1, self._batch_size):
                self._wake.notify()

    def finish(
        self, metrics: Mapping[str, float] | None = None, *, error: str | BaseException | None = None, timeout: float = 5.0
    ) -> bool:
        """Send what is buffered and the final status, waiting at most ``timeout`` seconds.

        With ``error`` the run is reported as failed (a ``training_error`` on the dashboard), else as
        succeeded. ``metrics`` are optional final metrics. Returns whether the dashboard got everything;
        network problems are logged, never raised. Calling it again only waits again.
        """
        final: dict[str, Any] = {"status": "succeeded"}
        if error is not None:
            final = {"status": "failed", "error": _error_text(error)}
        if metrics:
            final["metrics"] = _metrics(metrics)
        with self._wake:
            first = not self._closing
            if first:
                self._closing = True
                self._final = final
                self._retry_at = 0.0  # one prompt attempt even if the sender is backing off
                self._wake.notify_all()
        if first:
            atexit.unregister(self._at_exit)
        self._thread.join(timeout)
        with self._wake:
            if self._thread.is_alive():
                self._stop = True
                self._wake.notify_all()
        if first and not self.finished:
            where = f"run {self.id}" if self.id else "the run (never created)"
            logger.warning(
                "dashboard at %s did not get %s in %.1fs: %d entries unsent, %d dropped, %d rejected; last error: %s",
                self.base, where, timeout, self.pending, self.dropped, self.rejected, self.last_error,
            )
        return self.finished

    def _at_exit(self) -> None:
        self.finish(error="the process exited without calling finish()", timeout=2.0)

    # The sender thread: everything below runs there, and only there touches the network.

    def _send_loop(self) -> None:
        while (work := self._next_work()) is not None:
            if work == "create":
                self._create()
            elif work == "finish":
                self._send_finish()
            elif work == "heartbeat":
                self._send_heartbeat()
            else:
                self._send_batch(work)

    def _next_work(self) -> str | list[dict[str, Any]] | None:
        with self._wake:
            while True:
                if self._stop:
                    return None
                now = time.monotonic()
                if now < self._retry_at:
                    self._wake.wait(self._retry_at - now)
                elif self.id is None:
                    return "create"
                elif self._buffer and (self._closing or len(self._buffer) >= self._batch_size or now >= self._next_send):
                    return [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
                elif self._closing:
                    return "finish"
                elif not self._buffer and now >= self._last_contact + self._heartbeat:
                    return "heartbeat"
                else:
                    self._wake.wait((self._next_send if self._buffer else self._last_contact + self._heartbeat) - now)

    def _create(self) -> None:
        try:
            job = self._post("/runs", self._create_body, retry_on={404, 408, 429})
        except _Retry as exc:
            return self._failed(exc)
        except _Rejected as exc:
            self._give_up()
            logger.warning("dashboard at %s refused to create run %r: %s; nothing will be sent", self.base, self.name, exc)
            return None
        run_id = job.get("id") if isinstance(job, dict) else None
        if not isinstance(run_id, str) or not run_id:
            return self._failed(_Retry(f"POST /runs answered without a run id: {str(job)[:200]}"))
        with self._wake:
            self.id = run_id
            self._last_contact = time.monotonic()
        self._recovered()
        logger.info("run %r is %s on the dashboard at %s", self.name, run_id, self.base)

    def _send_batch(self, batch: list[dict[str, Any]]) -> None:
        parts: list[str] = []
        size = 0
        for entry in batch:
            part = json.dumps(entry, allow_nan=False, separators=(",", ":"))
            if parts and size + len(part) > MAX_BODY_BYTES:
                break
            parts.append(part)
            size += len(part) + 1
        if len(parts) < len(batch):
            self._requeue(batch[len(parts) :])
            batch = batch[: len(parts)]
        body = ('{"entries":[' + ",".join(parts) + "]}").encode()
        try:
            self._post(f"/runs/{self.id}/log", body, retry_on={404, 408, 429})
        except _Retry as exc:
            self._requeue(batch)
            return self._failed(exc)
        except _Rejected as exc:
            with self._wake:
                self.rejected += len(batch)
            if exc.status == 409:  # the run is over on the server (e.g. failed for going silent): stop
                self._give_up()
                logger.warning("dashboard closed run %s: %s; nothing more will be sent", self.id, exc)
                return None
            logger.warning(
                "dashboard refused %d entries (steps %d-%d) of run %s: %s",
                len(batch), batch[0]["step"], batch[-1]["step"], self.id, exc,
            )
        else:
            with self._wake:
                self.sent += len(batch)
                self._sent_step = batch[-1]["step"]
                self._last_contact = time.monotonic()
            self._recovered()
        with self._wake:
            self._next_send = time.monotonic() + self._interval

    def _send_heartbeat(self) -> None:
        """Re-send the last step without metrics: the server fails a run that stays silent too long."""
        try:
            self._post(f"/runs/{self.id}/log", {"entries": [{"step": self._sent_step, "metrics": {}}]}, retry_on={404, 408, 429})
        except _Retry as exc:
            return self._failed(exc)
        except _Rejected as exc:
            self._give_up()
            logger.warning("dashboard refused a heartbeat of run %s: %s; nothing more will be sent", self.id, exc)
            return None
        with self._wake:
            self._last_contact = time.monotonic()
        self._recovered()

    def _give_up(self) -> None:
        with self._wake:
            self._broken = self._stop = True
            self.rejected += len(self._buffer)
            self._buffer.clear()

    def _send_finish(self) -> None:
        try:
            self._post(f"/runs/{self.id}/finish", self._final, retry_on={404, 408, 429})
        except _Retry as exc:
            return self._failed(exc)
        except _Rejected as exc:
            logger.warning("dashboard refused to finish run %s: %s", self.id, exc)
        else:
            self.finished = True
        with self._wake:
            self._stop = True

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        """Put an unsent batch back in front; if that overflows the buffer, drop the oldest."""
        with self._wake:
            entries = batch + list(self._buffer)
            overflow = max(0, len(entries) - self._buffer.maxlen)
            self.dropped += overflow
            self._buffer.clear()
            self._buffer.extend(entries[overflow:])

    def _failed(self, exc: _Retry) -> None:
        with self._wake:
            self._failures += 1
            delay = min(self._max_backoff, FIRST_BACKOFF_S * 2 ** min(self._failures - 1, 16))
            if exc.after is not None:
                delay = min(self._max_backoff, max(delay, exc.after))
            self._retry_at = time.monotonic() + delay * random.uniform(0.8, 1.2)
            first, self.last_error = self._failures == 1, str(exc)
        if first:
            logger.warning("dashboard at %s is not answering (%s); buffering and retrying", self.base, exc)

    def _recovered(self) -> None:
        with self._wake:
            failures, self._failures, self.last_error = self._failures, 0, None
        if failures:
            logger.info("dashboard at %s is answering again after %d failed attempts", self.base, failures)

    def _post(self, path: str, body: Any, retry_on: set[int]) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body, allow_nan=False).encode()
        request = urllib.request.Request(
            self._api + path,
            data=data,
            method="POST",
            headers=self._headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            reason = f"POST {path}: {exc.code} {_error_message(exc)}"
            if exc.code >= 500 or exc.code in retry_on:
                raise _Retry(reason, _retry_after(exc)) from None
            raise _Rejected(reason, exc.code) from None
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, bad status line
            raise _Retry(f"POST {path}: {getattr(exc, 'reason', None) or exc}") from None
        try:
            return json.loads(payload)
        except ValueError:
            return None


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _number(name: str, value: Any) -> float | None:
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"metric {name!r} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        return None
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r} must be a number, got {type(value).__name__}") from None
    return number if math.isfinite(number) else None


def _metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    if len(metrics) > MAX_METRICS:
        raise ValueError(f"at most {MAX_METRICS} metrics per step, got {len(metrics)}")
    out = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"metric names must be str, got {type(name).__name__}")
        if not name.strip() or len(name) > MAX_METRIC_NAME:
            raise ValueError(f"metric names must be 1 to {MAX_METRIC_NAME} characters, got {name!r}")
        out[name] = _number(name, value)
    return out


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"param names must be non-empty str, got {key!r}")
        if value is None or isinstance(value, (str, bool)):
            out[key] = value
        elif isinstance(value, numbers.Integral):
            out[key] = int(value)
        elif isinstance(value, numbers.Real):
            out[key] = float(value) if math.isfinite(value) else None
        else:
            raise TypeError(f"param {key!r} must be a str, number, bool or None, got {type(value).__name__}")
    return out


def _error_text(error: str | BaseException) -> str:
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    else:
        text = str(error) or "failed"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read())["error"]
        return f"{error['code']}: {error['message']}"[:500]
    except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException):
        return str(exc.reason)


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    try:
        return max(0.0, float(exc.headers.get("Retry-After", "")))
    except (TypeError, ValueError):
        return None
