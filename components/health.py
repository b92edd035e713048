"""Component health panel; its rows are drawn in the browser from the health store."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc

from components import ids


def health_panel(health: dict) -> dbc.Card:
    return dbc.Card(
        [
            dbc.CardHeader("Component health"),
            dcc.Store(id=ids.HEALTH_STORE, data=health),
            dbc.ListGroup(id=ids.HEALTH_LIST, flush=True),
        ],
        className="shadow-sm mb-3",
    )
