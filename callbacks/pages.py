"""Routing: overview at the root, ``datasets``, ``pipelines``, and ``embed/<chart>`` for one live chart."""

from __future__ import annotations

from urllib.parse import parse_qs

from dash import Dash, Input, Output

from components import ids
from components.datasets import datasets_page
from components.pipelines import pipelines_page
from components.shell import embed, overview
from services.runtime import Runtime


def register(app: Dash, runtime: Runtime, api_base: str) -> None:
    @app.callback(
        Output(ids.PAGE, "children"),
        Output(ids.NAVBAR, "style"),
        Input(ids.URL, "pathname"),
        Input(ids.URL, "search"),
    )
    def route(pathname: str | None, search: str | None):
        path = app.strip_relative_path(pathname or "/") or ""
        snapshot = runtime.state.snapshot()
        if path.startswith("embed/"):
            theme = parse_qs((search or "").lstrip("?")).get("theme", ["light"])[0]
            return embed(path.removeprefix("embed/"), snapshot, theme), {"display": "none"}
        if path == "datasets":
            return datasets_page(runtime.datasets.list()), {}
        if path == "pipelines":
            return pipelines_page(runtime.pipelines.list(), runtime.datasets.list()), {}
        return overview(snapshot, api_base, runtime.activity.list(limit=20)), {}
