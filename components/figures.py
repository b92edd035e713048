"""Pure figure pieces: data in, ``go.Figure`` (or traces) out; no I/O. One theme, light or dark."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

THEMES = {
    "light": {"template": "plotly_white", "paper": "#ffffff", "font": "#212529", "grid": "#e9ecef"},
    "dark": {"template": "plotly_dark", "paper": "#212529", "font": "#f8f9fa", "grid": "#343a40"},
}
COLORS = ("#0d6efd", "#fd7e14", "#20c997", "#6f42c1")


def trace(x: Sequence[Any], y: Sequence[Any], label: str, index: int, percent: bool) -> go.Scatter:
    hover = "%{y:.1f}%" if percent else "%{y:.3s}"
    return go.Scatter(
        x=list(x),
        y=list(y),
        name=label,
        mode="lines",
        line={"width": 2, "color": COLORS[index % len(COLORS)]},
        hovertemplate=hover + "<extra>" + label + "</extra>",
    )


def style_axes(fig: go.Figure, palette: dict[str, str], percent: bool, y_title: str, **where: int) -> None:
    fig.update_xaxes(type="date", gridcolor=palette["grid"], **where)
    y = {"title": y_title or None, "gridcolor": palette["grid"], "rangemode": "tozero"}
    y.update({"range": [0, 100], "ticksuffix": "%"} if percent else {"tickformat": ".2s"})
    fig.update_yaxes(**y, **where)


def time_series(
    samples: Sequence[dict[str, Any]],
    traces: Sequence[tuple[str, str]],
    *,
    title: str | None,
    y_title: str = "",
    percent: bool = False,
    theme: str = "light",
    height: int = 260,
) -> go.Figure:
    """One line per ``(field, label)`` over ``samples`` (dicts with ``t`` and the fields)."""
    palette = THEMES[theme]
    x = [s["t"] for s in samples]
    fig = go.Figure([trace(x, [s[field] for s in samples], label, i, percent) for i, (field, label) in enumerate(traces)])
    fig.update_layout(
        template=palette["template"],
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=height,
        margin={"l": 50, "r": 10, "t": 36 if title else 24, "b": 30},
        paper_bgcolor=palette["paper"],
        plot_bgcolor=palette["paper"],
        font={"color": palette["font"]},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "center", "x": 0.5},
        uirevision="live",  # keep the user's zoom while points stream in
    )
    style_axes(fig, palette, percent, y_title)
    return fig
