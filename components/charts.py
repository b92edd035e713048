"""The chart catalogue: every chart the dashboard draws, by name, with its one figure builder.

The same builder draws the live page, the embed page, the export API and notebook figures; the
browser extends each graph's traces with the sample fields listed here, in the same order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components import ids
from components.figures import THEMES, lines, style_axes, time_series, trace
from events.serialize import iso_utc, parse_iso

Trace = tuple[str, str]  # (sample field, legend label)


@dataclasses.dataclass(frozen=True)
class Chart:
    name: str  # URL name: /api/v1/charts/<name>.png, /embed/<name>
    title: str
    graph_id: str
    traces: tuple[Trace, ...]
    percent: bool = False
    y_title: str = ""
    source: str = "system_stats"  # the event type whose samples it plots
    snapshot_key: str = "samples"  # where the page snapshot (services/live_state.py) keeps them

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self.traces]

    def row(self, data: dict[str, Any]) -> dict[str, Any]:
        """The sample fields of one ``source`` event payload (export, CSV)."""
        return {f: data[f] for f in self.fields}

    def figure(self, samples: Sequence[dict[str, Any]], theme: str = "light", title: bool = True) -> go.Figure:
        return time_series(
            samples,
            self.traces,
            title=self.title if title else None,
            y_title=self.y_title,
            percent=self.percent,
            theme=theme,
        )


CPU = Chart("cpu", "CPU", ids.GRAPH_CPU, (("cpu_percent", "CPU"),), percent=True)
MEMORY = Chart("memory", "Memory", ids.GRAPH_MEM, (("mem_percent", "Memory"), ("swap_percent", "Swap")), percent=True)
DISK_IO = Chart(
    "disk_io", "Disk I/O", ids.GRAPH_DISK, (("disk_read_bps", "Read"), ("disk_write_bps", "Write")), y_title="bytes/s"
)
NETWORK = Chart(
    "network", "Network", ids.GRAPH_NET, (("net_recv_bps", "Received"), ("net_sent_bps", "Sent")), y_title="bytes/s"
)
PANELS = (CPU, MEMORY, DISK_IO, NETWORK)


@dataclasses.dataclass(frozen=True)
class SystemStatsChart(Chart):
    """All four system panels in one figure (2 x 2), for reports."""

    def figure(self, samples: Sequence[dict[str, Any]], theme: str = "light", title: bool = True) -> go.Figure:
        palette = THEMES[theme]
        fig = make_subplots(
            rows=2, cols=2, subplot_titles=[p.title for p in PANELS], vertical_spacing=0.16, horizontal_spacing=0.08
        )
        x = [s["t"] for s in samples]
        for index, panel in enumerate(PANELS):
            row, col = divmod(index, 2)
            for i, (field, label) in enumerate(panel.traces):
                fig.add_trace(trace(x, [s[field] for s in samples], label, i, panel.percent), row=row + 1, col=col + 1)
            style_axes(fig, palette, panel.percent, panel.y_title, row=row + 1, col=col + 1)
        fig.update_layout(
            template=palette["template"],
            title={"text": self.title if title else None, "x": 0.01},
            height=560,
            showlegend=False,
            margin={"l": 50, "r": 20, "t": 70 if title else 40, "b": 30},
            paper_bgcolor=palette["paper"],
            plot_bgcolor=palette["paper"],
            font={"color": palette["font"]},
            uirevision="live",
        )
        return fig


SYSTEM_STATS = SystemStatsChart(
    "system_stats", "System", ids.GRAPH_SYSTEM, tuple(t for panel in PANELS for t in panel.traces)
)

# A model that served nothing for this many report intervals drew 0 requests/s meanwhile: its line drops
# to zero instead of joining two distant points (assets/mlops_live_ml.js applies the same rule).
IDLE_INTERVALS = 2.5
# The meter reports about once a second (never under 1 ms); a posted event may claim any positive
# interval, and 1e300 s overflows the dates of an idle gap. Drawing clips to this range instead.
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.001, 86400.0


def report_interval(data: dict[str, Any]) -> float:
    """A prediction_volume report's ``interval_s``, clipped to what a chart can draw."""
    interval = float(data["interval_s"])
    if not interval >= MIN_INTERVAL_S:  # NaN too
        return MIN_INTERVAL_S
    return min(interval, MAX_INTERVAL_S)


def volume_series(samples: Sequence[dict[str, Any]]) -> dict[Any, tuple[list[str], list[float]]]:
    """model id -> (times, requests per second), in order of first appearance, idle gaps drawn as zero."""
    series: dict[Any, tuple[list[str], list[float]]] = {}
    last: dict[Any, tuple[dt.datetime, float]] = {}
    for s in samples:
        x, y = series.setdefault(s["model_id"], ([], []))
        t, interval = parse_iso(s["t"]), report_interval(s)
        previous = last.get(s["model_id"])
        if previous is not None and (t - previous[0]).total_seconds() > IDLE_INTERVALS * previous[1]:
            x += [iso_utc(previous[0] + dt.timedelta(seconds=previous[1])), iso_utc(t - dt.timedelta(seconds=interval))]
            y += [0.0, 0.0]
        x.append(s["t"])
        y.append(s["count"] / interval)
        last[s["model_id"]] = (t, interval)
    return series


@dataclasses.dataclass(frozen=True)
class PredictionVolumeChart(Chart):
    """Requests per second served, one line per model; a model gets its line when it first serves."""

    columns: tuple[str, ...] = ()

    @property
    def fields(self) -> list[str]:
        return list(self.columns)

    def row(self, data: dict[str, Any]) -> dict[str, Any]:
        rate = round(data["count"] / report_interval(data), 6)
        return {f: rate if f == "rate" else data.get(f) for f in self.columns}

    def figure(self, samples: Sequence[dict[str, Any]], theme: str = "light", title: bool = True) -> go.Figure:
        series = [(f"model {model_id}", x, y) for model_id, (x, y) in volume_series(samples).items()]
        return lines(series, title=self.title if title else None, y_title=self.y_title, theme=theme, hover="%{y:.3~f}/s")


PREDICTION_VOLUME = PredictionVolumeChart(
    "prediction_volume",
    "Prediction volume",
    ids.GRAPH_PREDICTIONS,
    (),
    y_title="requests/s",
    source="prediction_volume",
    snapshot_key="predictions",
    columns=("model_id", "pipeline_id", "rate", "count", "interval_s", "total", "latency_p50_ms", "latency_p95_ms"),
)

CHARTS: dict[str, Chart] = {chart.name: chart for chart in (SYSTEM_STATS, *PANELS, PREDICTION_VOLUME)}


def browser_charts() -> dict[str, list[str]]:
    """graph id -> sample field of each trace, for the dispatcher's system-stats window."""
    return {chart.graph_id: chart.fields for chart in CHARTS.values() if chart.source == "system_stats"}
