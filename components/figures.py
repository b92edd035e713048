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
SI = ".2s"  # y tick format of byte and percent charts; None leaves Plotly's own (0.5, 1.5k, ...)


def trace(x: Sequence[Any], y: Sequence[Any], label: str, index: int, percent: bool, hover: str | None = None) -> go.Scatter:
    hover = hover or ("%{y:.1f}%" if percent else "%{y:.3s}")
    return go.Scatter(
        x=list(x),
        y=list(y),
        name=label,
        mode="lines",
        line={"width": 2, "color": COLORS[index % len(COLORS)]},
        hovertemplate=hover + "<extra>" + label + "</extra>",
    )


def style_axes(
    fig: go.Figure, palette: dict[str, str], percent: bool, y_title: str, *, x_type: str = "date",
    x_title: str | None = None, y_format: str | None = SI, **where: int,
) -> None:
    fig.update_xaxes(type=x_type, title=x_title, gridcolor=palette["grid"], **where)
    y = {"title": y_title or None, "gridcolor": palette["grid"], "rangemode": "tozero"}
    if percent:
        y.update({"range": [0, 100], "ticksuffix": "%"})
    elif y_format:
        y["tickformat"] = y_format
    fig.update_yaxes(**y, **where)


def styled(
    fig: go.Figure, *, title: str | None, y_title: str = "", percent: bool = False, theme: str = "light",
    height: int = 260, x_type: str = "date", x_title: str | None = None, y_format: str | None = SI,
) -> go.Figure:
    """The dashboard's look on ``fig``: theme, margins, legend on top, the user's zoom kept while live."""
    palette = THEMES[theme]
    fig.update_layout(
        template=palette["template"],
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=height,
        margin={"l": 50, "r": 10, "t": 36 if title else 24, "b": 40 if x_title else 30},
        paper_bgcolor=palette["paper"],
        plot_bgcolor=palette["paper"],
        font={"color": palette["font"]},
        colorway=list(COLORS),  # traces the browser adds later take the next colour, as the builders do
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "center", "x": 0.5},
        uirevision="live",  # keep the user's zoom while points stream in
    )
    style_axes(fig, palette, percent, y_title, x_type=x_type, x_title=x_title, y_format=y_format)
    return fig


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
    x = [s["t"] for s in samples]
    fig = go.Figure([trace(x, [s[field] for s in samples], label, i, percent) for i, (field, label) in enumerate(traces)])
    return styled(fig, title=title, y_title=y_title, percent=percent, theme=theme, height=height)


def lines(
    series: Sequence[tuple[str, Sequence[Any], Sequence[Any]]],
    *,
    title: str | None,
    y_title: str = "",
    theme: str = "light",
    height: int = 260,
    x_type: str = "date",
    x_title: str | None = None,
    hover: str = "%{y:.4~g}",
) -> go.Figure:
    """One line per ``(label, x, y)``; for charts whose lines come and go (models, metrics)."""
    fig = go.Figure([trace(x, y, label, i, False, hover) for i, (label, x, y) in enumerate(series)])
    fig.update_layout(showlegend=True)  # even for one line: the legend names it
    return styled(fig, title=title, y_title=y_title, theme=theme, height=height, x_type=x_type, x_title=x_title, y_format=None)
