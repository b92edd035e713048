"""Activity feed panel; rows are drawn in the browser from the activity store (newest first)."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc

from components import ids


def activity_panel(items: list[dict[str, Any]]) -> dbc.Card:
    return dbc.Card(
        [
            dbc.CardHeader("Activity"),
            dcc.Store(id=ids.ACTIVITY_STORE, data={"items": items}),
            dbc.ListGroup(id=ids.ACTIVITY_LIST, flush=True, className="activity-list"),
        ],
        className="shadow-sm mb-3",
    )
