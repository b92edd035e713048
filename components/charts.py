"""The chart catalogue: every chart the dashboard draws, by name, with its one figure builder.

The same builder draws the live page, the embed page, the export API and notebook figures; the
browser extends each graph's traces with the sample fields listed here, in the same order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components import ids
from components.figures import THEMES, style_axes, time_series, trace

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

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self.traces]

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

CHARTS: dict[str, Chart] = {chart.name: chart for chart in (SYSTEM_STATS, *PANELS)}


def browser_charts() -> dict[str, list[str]]:
    """graph id -> sample field of each trace, for the browser dispatcher."""
    return {chart.graph_id: chart.fields for chart in CHARTS.values()}
