"""What the page shows at first paint: recent system stats, prediction volume and health, at a known seq.

``LiveState`` is a ``Listener`` of the hub, so it has seen exactly the events up to ``seq``; the page's
snapshot carries that seq and the WebSocket resumes right after it.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from events.catalogue import EventType
from events.hub import Listener
from events.log import Event

# Compact chart samples: the fields the live charts plot, in this order (JS reads the same names).
SAMPLE_FIELDS = (
    "cpu_percent",
    "mem_percent",
    "swap_percent",
    "disk_percent",
    "disk_read_bps",
    "disk_write_bps",
    "net_sent_bps",
    "net_recv_bps",
)

# Prediction-volume samples: what the chart and the "Predictions / min" KPI need (JS reads the same names).
VOLUME_FIELDS = ("model_id", "pipeline_id", "count", "total", "interval_s")

MAX_COMPONENTS = 200  # health rows kept; beyond that the longest-unchanged one goes
STATUS_RANK = {"healthy": 0, "degraded": 1, "down": 2}


def worst(statuses: list[str]) -> str:
    return max(statuses, key=STATUS_RANK.__getitem__, default="healthy")


class LiveState(Listener):
    def __init__(self, chart_points: int):
        self.chart_points = chart_points
        self._lock = threading.Lock()
        self._reset("", 0)

    def _reset(self, epoch: str, seq: int) -> None:
        self.epoch, self.seq = epoch, seq
        self.samples: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.chart_points)
        self.latest_stats: dict[str, Any] | None = None
        self.predictions: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.chart_points)
        self.health: dict[str, dict[str, Any]] = {}

    def bootstrap(self, epoch: str, seq: int, events: list[Event]) -> None:
        with self._lock:
            self._reset(epoch, seq)
            self._apply(events)
            self.seq = seq

    def apply(self, events: list[Event]) -> None:
        with self._lock:
            self._apply(events)

    def _apply(self, events: list[Event]) -> None:
        for event in events:
            if event.type == EventType.SYSTEM_STATS.value:
                data = event.data
                self.samples.append({"seq": event.seq, "t": event.ts, **{k: data[k] for k in SAMPLE_FIELDS}})
                self.latest_stats = data | {"ts": event.ts}
            elif event.type == EventType.HEALTH_CHANGE.value:
                data = event.data
                self.health.pop(data["component"], None)  # re-inserted last: dicts keep update order
                self.health[data["component"]] = {
                    "status": data["status"],
                    "message": data["message"],
                    "since": event.ts,
                }
                while len(self.health) > MAX_COMPONENTS:
                    del self.health[next(iter(self.health))]
            elif event.type == EventType.PREDICTION_VOLUME.value:
                data = event.data
                self.predictions.append({"seq": event.seq, "t": event.ts, **{k: data[k] for k in VOLUME_FIELDS}})
            self.seq = event.seq

    def health_statuses(self) -> dict[str, str]:
        with self._lock:
            return {name: c["status"] for name, c in self.health.items()}

    def last_stats_ts(self) -> str | None:
        with self._lock:
            return self.latest_stats["ts"] if self.latest_stats else None

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state at ``seq``: what the page renders before the stream takes over."""
        with self._lock:
            return {
                "epoch": self.epoch,
                "seq": self.seq,
                "samples": list(self.samples),
                "latest_stats": self.latest_stats,
                "predictions": list(self.predictions),
                "health": {
                    "status": worst([c["status"] for c in self.health.values()]),
                    "components": dict(self.health),
                },
            }
