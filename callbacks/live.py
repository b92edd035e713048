"""Clientside wiring of the live stream; the functions live in ``assets/mlops_live.js``."""

from __future__ import annotations

from dash import MATCH, ClientsideFunction, Dash, Input, Output, State

from components import ids


def register(app: Dash) -> None:
    # Runs once the page (snapshot, graphs) exists, then opens the socket by giving it a URL.
    app.clientside_callback(
        ClientsideFunction("mlops", "init"),
        Output(ids.WS, "url"),
        Input(ids.SNAPSHOT, "data"),
        State(ids.CONFIG, "data"),
    )
    # Frames are read from the socket itself, not from the ``message`` prop (see mlops_live.js).
    # Open / closed: the badge, and reconnection with backoff and jitter.
    app.clientside_callback(
        ClientsideFunction("mlops", "onState"),
        Output(ids.CONN_BADGE, "children"),
        Output(ids.CONN_BADGE, "color"),
        Input(ids.WS, "state"),
    )
    app.clientside_callback(
        ClientsideFunction("mlops", "renderHealth"),
        Output(ids.HEALTH_LIST, "children"),
        Input(ids.HEALTH_STORE, "data"),
    )
    # Embed: toggles the snippet and writes it with this page's own address.
    app.clientside_callback(
        ClientsideFunction("mlops", "embedSnippet"),
        Output(ids.embed_collapse(MATCH), "is_open"),
        Output(ids.embed_snippet(MATCH), "children"),
        Input(ids.embed_toggle(MATCH), "n_clicks"),
        State(ids.embed_collapse(MATCH), "is_open"),
        prevent_initial_call=True,
    )
