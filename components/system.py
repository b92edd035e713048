"""Overview panel: KPI cards and the live system charts."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids
from components.figures import time_series

# graph id -> how it is drawn; the browser extends each trace with the same fields, in this order.
CHARTS: dict[str, dict[str, Any]] = {
    ids.GRAPH_CPU: {"title": "CPU", "traces": [("cpu_percent", "CPU")], "percent": True},
    ids.GRAPH_MEM: {
        "title": "Memory",
        "traces": [("mem_percent", "Memory"), ("swap_percent", "Swap")],
        "percent": True,
    },
    ids.GRAPH_DISK: {
        "title": "Disk I/O",
        "traces": [("disk_read_bps", "Read"), ("disk_write_bps", "Write")],
        "y_title": "bytes/s",
    },
    ids.GRAPH_NET: {
        "title": "Network",
        "traces": [("net_recv_bps", "Received"), ("net_sent_bps", "Sent")],
        "y_title": "bytes/s",
    },
}


def chart_fields() -> dict[str, list[str]]:
    """graph id -> the sample field of each trace (shipped to the browser)."""
    return {graph: [field for field, _ in spec["traces"]] for graph, spec in CHARTS.items()}


def figure(graph_id: str, samples: list[dict[str, Any]], theme: str = "light"):
    spec = CHARTS[graph_id]
    return time_series(
        samples,
        spec["traces"],
        title=spec["title"],
        y_title=spec.get("y_title", ""),
        percent=spec.get("percent", False),
        theme=theme,
    )


def kpi_card(title: str, value_id: str, sub_id: str) -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(title, className="kpi-title text-muted small text-uppercase"),
                html.Div("—", id=value_id, className="kpi-value fs-3 fw-semibold"),
                html.Div("", id=sub_id, className="kpi-sub text-muted small"),
            ]
        ),
        className="kpi-card h-100 shadow-sm",
    )


def kpi_row() -> dbc.Row:
    cards = [
        ("CPU", ids.KPI_CPU, ids.KPI_CPU_SUB),
        ("Memory", ids.KPI_MEM, ids.KPI_MEM_SUB),
        ("Disk", ids.KPI_DISK, ids.KPI_DISK_SUB),
        ("Dashboard process", ids.KPI_RSS, ids.KPI_RSS_SUB),
    ]
    return dbc.Row([dbc.Col(kpi_card(*card), md=3, sm=6, className="mb-3") for card in cards])


def charts(samples: list[dict[str, Any]]) -> dbc.Row:
    return dbc.Row(
        [
            dbc.Col(
                dbc.Card(
                    dcc.Graph(
                        id=graph_id,
                        figure=figure(graph_id, samples),
                        config={"displaylogo": False, "responsive": True},
                        className="live-graph",
                    ),
                    className="shadow-sm",
                ),
                lg=6,
                className="mb-3",
            )
            for graph_id in CHARTS
        ]
    )
