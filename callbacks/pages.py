"""Routing: the overview at the root, ``embed/<chart>`` for a single live chart."""

from __future__ import annotations

from urllib.parse import parse_qs

from dash import Dash, Input, Output

from components import ids
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
        return overview(snapshot, api_base), {}
