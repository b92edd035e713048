"""Pure figure builders: data in, ``go.Figure`` out. Used by the page and reusable for export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

THEMES = {
    "light": {"template": "plotly_white", "paper": "#ffffff", "font": "#212529", "grid": "#e9ecef"},
    "dark": {"template": "plotly_dark", "paper": "#212529", "font": "#f8f9fa", "grid": "#343a40"},
}
COLORS = ("#0d6efd", "#fd7e14", "#20c997", "#6f42c1")


def time_series(
    samples: Sequence[dict[str, Any]],
    traces: Sequence[tuple[str, str]],
    *,
    title: str,
    y_title: str = "",
    percent: bool = False,
    theme: str = "light",
    height: int = 260,
) -> go.Figure:
    """One line per ``(field, label)`` over ``samples`` (dicts with ``t`` and the fields)."""
    palette = THEMES[theme]
    x = [s["t"] for s in samples]
    fig = go.Figure(
        [
            go.Scatter(
                x=x,
                y=[s[field] for s in samples],
                name=label,
                mode="lines",
                line={"width": 2, "color": COLORS[i % len(COLORS)]},
                hovertemplate="%{y:.3s}<extra>" + label + "</extra>" if not percent else "%{y:.1f}%<extra>" + label + "</extra>",
            )
            for i, (field, label) in enumerate(traces)
        ]
    )
    fig.update_layout(
        template=palette["template"],
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=height,
        margin={"l": 50, "r": 10, "t": 36, "b": 30},
        paper_bgcolor=palette["paper"],
        plot_bgcolor=palette["paper"],
        font={"color": palette["font"]},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        uirevision="live",  # keep the user's zoom while points stream in
        xaxis={"type": "date", "gridcolor": palette["grid"]},
        yaxis={
            "title": y_title,
            "gridcolor": palette["grid"],
            "rangemode": "tozero",
            **({"range": [0, 100], "ticksuffix": "%"} if percent else {"tickformat": ".2s"}),
        },
    )
    return fig
