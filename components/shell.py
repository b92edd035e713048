"""The app shell (navbar, WebSocket, stores, page container) and the pages drawn into it."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash_extensions import WebSocket

from components import ids
from components.charts import CHARTS
from components.figures import THEMES
from components.access import access_page
from components.activity import activity_panel
from components.datasets import datasets_page
from components.health import health_panel
from components.models import models_page
from components.pipelines import pipelines_page
from components.system import GRAPH_CONFIG, charts, kpi_row, ml_kpi_row
from components.training import training_page

PAGES = (
    ("Overview", ""), ("Datasets", "datasets"), ("Pipelines", "pipelines"), ("Training", "training"), ("Models", "models"),
    ("Access", "access"),
)


def user_menu(base: str, user: dict[str, Any] | None) -> html.Div | None:
    """Who is logged in, with a log-out button (a plain form post carrying the CSRF token)."""
    if not user:
        return None
    label = html.Span([user["name"], html.Span(f" · {user['role']}", className="opacity-75")], className="text-light small me-2")
    if user["auth"] != "session":
        return html.Div(label, id=ids.USER_MENU, className="d-flex align-items-center me-2")
    logout = html.Form(
        [dcc.Input(type="hidden", name="csrf_token", value=user.get("csrf") or ""),
         html.Button("Log out", type="submit", className="btn btn-sm btn-outline-light")],
        action=f"{base}logout", method="post", className="m-0",
    )
    return html.Div([label, logout], id=ids.USER_MENU, className="d-flex align-items-center me-3")


def navbar(base: str, user: dict[str, Any] | None = None) -> dbc.Navbar:
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("MLOps Dashboard", href=base, className="fw-semibold"),
                dbc.Nav(
                    [dbc.NavItem(dbc.NavLink(label, href=base + path, active="exact")) for label, path in PAGES],
                    navbar=True,
                    className="me-auto",
                ),
                html.Div(
                    [
                        user_menu(base, user),
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


def overview(
    snapshot: dict[str, Any],
    api_base: str,
    activity: list[dict[str, Any]],
    ml: dict[str, Any] | None = None,
) -> dbc.Container:
    """``ml``: ``jobs``, ``models`` and ``rates`` (predictions per model in the last 60 s) at render time."""
    ml = ml or {}
    return dbc.Container(
        [
            kpi_row(),
            ml_kpi_row(ml.get("jobs", []), ml.get("models", []), ml.get("rates", {})),
            dbc.Row(
                [
                    dbc.Col(charts(snapshot, api_base), lg=9),
                    dbc.Col([health_panel(snapshot["health"]), activity_panel(activity)], lg=3),
                ]
            ),
        ],
        fluid=True,
    )


def embed(chart_name: str, snapshot: dict[str, Any], theme: str) -> html.Div:
    """One chart filling the frame, live; for iframes in wikis and reports."""
    chart = CHARTS.get(chart_name)
    if chart is None:
        known = ", ".join(sorted(CHARTS))
        return html.Div(f"Unknown chart {chart_name!r}. Charts: {known}.", className="alert alert-warning m-3")
    theme = theme if theme in THEMES else "light"
    figure = chart.figure(snapshot[chart.snapshot_key], theme=theme)
    figure.update_layout(height=None, autosize=True)
    return html.Div(
        dcc.Graph(id=chart.graph_id, figure=figure, config=GRAPH_CONFIG, style={"height": "100vh"}),
        className=f"embed embed-{theme}",
        style={"background": THEMES[theme]["paper"], "height": "100vh"},
    )


def layout(snapshot: dict[str, Any], config: dict[str, Any], user: dict[str, Any] | None = None) -> html.Div:
    """The shell: the WebSocket sits outside the page container, so navigation never reconnects.

    ``user``: ``{name, role, auth, csrf}`` of who is looking, for the navbar.
    """
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh=False),
            # url stays empty until the browser has the snapshot: see init in mlops_live.js.
            WebSocket(id=ids.WS),
            dcc.Store(id=ids.CONFIG, data=config),
            dcc.Store(id=ids.SNAPSHOT, data=snapshot),
            html.Div(navbar(config["base"], user), id=ids.NAVBAR, style={"display": "none"}),
            html.Div(id=ids.PAGE),
            html.Div(id=ids.TOASTS, className="toast-stack"),
        ]
    )


def validation_layout(snapshot: dict[str, Any], config: dict[str, Any]) -> html.Div:
    """Every page at once, for Dash's callback validation (never rendered)."""
    return html.Div(
        [
            layout(snapshot, config),
            overview(snapshot, "", []),
            datasets_page([]),
            pipelines_page([], []),
            training_page([]),
            models_page([]),
            access_page({"name": "", "role": "admin"}, [], []),
            *(embed(name, snapshot, "light") for name in CHARTS),
        ]
    )
