"""Access page: your API tokens (create, copy once, revoke) and, for admins, the users and their roles."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids
from components.system import copy_button

ROLE_OPTIONS = [{"label": r.title(), "value": r} for r in ("viewer", "editor", "admin")]


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "—"


def token_table(tokens: list[dict[str, Any]], show_owner: bool) -> html.Div:
    if not tokens:
        return html.Div("No tokens yet.", className="text-muted small p-3")
    head = ["Name", *(["User"] if show_owner else []), "Role", "Created", "Expires", "Last used", "State", ""]
    rows = []
    for t in tokens:
        revoke = dbc.Button("Revoke", id=ids.token_revoke(t["id"]), size="sm", color="outline-danger", n_clicks=0) \
            if t["state"] == "active" else None
        cells = [t["name"], *([t["user"]] if show_owner else []), t["role"], _when(t["created_at"]),
                 _when(t["expires_at"]), _when(t["last_used_at"]), t["state"], revoke]
        rows.append(html.Tr([html.Td(c) for c in cells], className="token-row", **{"data-state": t["state"]}))
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)], size="sm", hover=True, className="mb-0")


def user_table(users: list[dict[str, Any]], me: str) -> html.Div:
    rows = []
    for u in users:
        role = dcc.Dropdown(id=ids.user_set_role(u["id"]), options=ROLE_OPTIONS, value=u["role"], clearable=False,
                            style={"minWidth": "8rem"})
        delete = None if u["name"] == me else dbc.Button(
            "Delete", id=ids.user_delete(u["id"]), size="sm", color="outline-danger", n_clicks=0)
        rows.append(html.Tr([html.Td(u["name"]), html.Td(role), html.Td(_when(u["created_at"])), html.Td(delete)],
                            className="user-row"))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Name", "Role", "Created", "")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", className="mb-0")


def new_token_notice(token: dict[str, Any]) -> dbc.Alert:
    secret_id = "new-token-secret"
    return dbc.Alert(
        [
            html.Div(f"Token {token['name']} created. Copy it now: it is not shown again.", className="mb-1"),
            html.Div([html.Code(token["token"], id=secret_id, className="me-2 user-select-all"), copy_button(secret_id)],
                     className="d-flex align-items-center"),
        ],
        color="success", className="py-2 small",
    )


def access_page(me: dict[str, Any], tokens: list[dict[str, Any]], users: list[dict[str, Any]] | None) -> dbc.Container:
    """``users`` is None for non-admins (the users card is not drawn)."""
    token_form = dbc.Row(
        [
            dbc.Col(dbc.Input(id=ids.TOKEN_NAME, placeholder="What it is for, e.g. nightly-training", maxLength=255), md=6),
            dbc.Col(dbc.Input(id=ids.TOKEN_DAYS, type="number", min=1, max=3650, placeholder="Expires in days (optional)"), md=3),
            dbc.Col(dbc.Button("Create token", id=ids.TOKEN_CREATE, color="primary", n_clicks=0), md=3),
        ],
        className="g-2 mb-2",
    )
    cards = [
        dbc.Card(
            [
                dbc.CardHeader(["API tokens", html.Span(f" · {me['name']} ({me['role']})", className="text-muted small")]),
                dbc.CardBody([
                    html.P("Scripts, notebooks and client.run.Run send a token as 'Authorization: Bearer <token>' "
                           "(or read it from MLOPS_TOKEN). A token acts with your role.", className="small text-muted"),
                    token_form,
                    html.Div(id=ids.TOKEN_FEEDBACK),
                ]),
                html.Div(token_table(tokens, show_owner=me["role"] == "admin"), id=ids.TOKEN_LIST, className="table-responsive"),
            ],
            className="shadow-sm mb-3",
        )
    ]
    if users is not None:
        user_form = dbc.Row(
            [
                dbc.Col(dbc.Input(id=ids.USER_NAME, placeholder="User name", maxLength=64), md=4),
                dbc.Col(dbc.Input(id=ids.USER_PASSWORD, type="password", placeholder="Password (8+ characters)",
                                  autoComplete="new-password"), md=4),
                dbc.Col(dcc.Dropdown(id=ids.USER_ROLE, options=ROLE_OPTIONS, value="viewer", clearable=False), md=2),
                dbc.Col(dbc.Button("Add user", id=ids.USER_CREATE, color="primary", n_clicks=0), md=2),
            ],
            className="g-2 mb-2",
        )
        cards.append(dbc.Card(
            [
                dbc.CardHeader("Users"),
                dbc.CardBody([
                    html.P("Viewers read everything; editors also upload, edit, train, deploy and predict; admins also "
                           "manage users and tokens and publish raw events.", className="small text-muted"),
                    user_form, html.Div(id=ids.USER_FEEDBACK),
                ]),
                html.Div(user_table(users, me["name"]), id=ids.USER_LIST, className="table-responsive"),
            ],
            className="shadow-sm mb-3",
        ))
    return dbc.Container(cards, fluid=True, className="access-page")
