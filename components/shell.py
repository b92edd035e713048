"""The app shell: navbar with connection and health badges, the WebSocket, and the page container."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash_extensions import WebSocket

from components import ids
from components.health import health_panel
from components.system import charts, kpi_row


def navbar() -> dbc.Navbar:
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("MLOps Dashboard", className="fw-semibold"),
                html.Div(
                    [
                        dbc.Badge("Health …", id=ids.HEALTH_BADGE, color="secondary", className="me-2"),
                        dbc.Badge("Connecting…", id=ids.CONN_BADGE, color="secondary"),
                    ],
                    className="d-flex align-items-center",
                ),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        className="mb-3",
    )


def overview(snapshot: dict[str, Any]) -> html.Div:
    return html.Div(
        [
            kpi_row(),
            dbc.Row(
                [
                    dbc.Col(charts(snapshot["samples"]), lg=9),
                    dbc.Col(health_panel(snapshot["health"]), lg=3),
                ]
            ),
        ]
    )


def layout(snapshot: dict[str, Any], config: dict[str, Any]) -> html.Div:
    """The whole page for one snapshot; the WebSocket sits outside the page so navigation never reconnects."""
    return html.Div(
        [
            # url stays empty until the browser has the snapshot and the graphs: see mlops_live.js init.
            WebSocket(id=ids.WS),
            dcc.Store(id=ids.CONFIG, data=config),
            dcc.Store(id=ids.SNAPSHOT, data=snapshot),
            navbar(),
            dbc.Container(overview(snapshot), id=ids.PAGE, fluid=True),
        ]
    )
