"""A small real WebSocket client for the ``/ws`` protocol (``websockets`` sync API)."""

from __future__ import annotations

import json
import time

from websockets.sync.client import connect


class Client:
    def __init__(self, ws_url: str, after: int | None = None, epoch: str | None = None):
        url = ws_url if after is None else f"{ws_url}?after={after}&epoch={epoch}"
        self.conn = connect(url, open_timeout=5, close_timeout=2).__enter__()
        self.hello = self.recv()
        assert self.hello["kind"] == "hello", self.hello
        self.frames: list[dict] = []

    def recv(self, timeout: float = 5.0) -> dict:
        return json.loads(self.conn.recv(timeout=timeout))

    def send(self, message: dict | str) -> None:
        self.conn.send(message if isinstance(message, str) else json.dumps(message))

    def events(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Collect ``count`` events (ignoring pings), keeping every frame seen."""
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            frame = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            self.frames.append(frame)
            if frame["kind"] == "events":
                out.extend(frame["events"])
        return out

    def until(self, predicate, timeout: float = 10.0) -> list[dict]:
        """Events received until one satisfies ``predicate`` (inclusive)."""
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            self.frames.append(frame)
            for event in frame.get("events", []):
                out.append(event)
                if predicate(event):
                    return out

    def next_kind(self, kind: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            self.frames.append(frame)
            if frame["kind"] == kind:
                return frame

    def close(self) -> None:
        self.conn.close()
