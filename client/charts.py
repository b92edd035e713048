"""The dashboard's figures in a notebook: fetch a chart's data from a running dashboard, build the figure.

    from client import charts
    fig = charts.system_stats("http://127.0.0.1:8050", last="15m")
    fig.show()                      # or fig.write_image("report.png"), fig.write_html(...)

Each function uses the same figure builder as the dashboard, so the notebook figure is the one the
page shows. Only the standard library is used for HTTP.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import plotly.graph_objects as go

from components.charts import CHARTS


class DashboardError(RuntimeError):
    """The dashboard answered with an error, or could not be reached."""


def fetch_samples(
    url: str, chart: str, last: str | None = None, timeout: float = 10.0, token: str | None = None
) -> list[dict[str, Any]]:
    """The samples behind ``chart`` from the dashboard at ``url`` (``GET /api/v1/charts/<chart>/data``).

    ``token``: an API token (default: the ``MLOPS_TOKEN`` environment variable), for dashboards with logins.
    """
    query = urllib.parse.urlencode({"last": last} if last else {})
    address = f"{url.rstrip('/')}/api/v1/charts/{urllib.parse.quote(chart)}/data" + (f"?{query}" if query else "")
    token = token if token is not None else os.environ.get("MLOPS_TOKEN") or None
    request = urllib.request.Request(address, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())["samples"]
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError):
            message = exc.reason
        raise DashboardError(f"{address}: {exc.code} {message}") from None
    except urllib.error.URLError as exc:
        raise DashboardError(f"cannot reach the dashboard at {url}: {exc.reason}") from None


def figure(url: str, chart: str, last: str | None = None, theme: str = "light", token: str | None = None) -> go.Figure:
    """Any chart by name (see ``GET /api/v1/charts``)."""
    if chart not in CHARTS:
        raise ValueError(f"unknown chart {chart!r}; charts: {', '.join(sorted(CHARTS))}")
    return CHARTS[chart].figure(fetch_samples(url, chart, last, token=token), theme=theme)


def system_stats(url: str, last: str | None = None, theme: str = "light", token: str | None = None) -> go.Figure:
    """CPU, memory, disk I/O and network in one 2 x 2 figure."""
    return figure(url, "system_stats", last, theme, token)


def cpu(url: str, last: str | None = None, theme: str = "light", token: str | None = None) -> go.Figure:
    return figure(url, "cpu", last, theme, token)


def memory(url: str, last: str | None = None, theme: str = "light", token: str | None = None) -> go.Figure:
    return figure(url, "memory", last, theme, token)


def disk_io(url: str, last: str | None = None, theme: str = "light", token: str | None = None) -> go.Figure:
    return figure(url, "disk_io", last, theme, token)


def network(url: str, last: str | None = None, theme: str = "light", token: str | None = None) -> go.Figure:
    return figure(url, "network", last, theme, token)


def prediction_volume(url: str, last: str | None = None, theme: str = "light", token: str | None = None) -> go.Figure:
    """Requests per second served, one line per model."""
    return figure(url, "prediction_volume", last, theme, token)
