"""Access page actions: create and revoke tokens, add users, change roles, remove users.

Who may run each callback is decided at the edge (security.policy.CALLBACK_OUTPUTS); these act for
the request's principal, so a token is created for, and listed to, the one who asked.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, no_update

from components import ids
from components.access import new_token_notice, token_table, user_table
from security import current_principal
from services.errors import DomainError
from services.runtime import Runtime


def _error(exc: DomainError) -> dbc.Alert:
    details = exc.details if isinstance(exc.details, dict) else {}
    extra = "; ".join(f"{k}: {v}" for k, v in details.items() if isinstance(v, str))
    return dbc.Alert(exc.message + (f" ({extra})" if extra and extra not in exc.message else ""), color="danger", className="py-2 small")


def _done(text: str) -> dbc.Alert:
    return dbc.Alert(text, color="success", className="py-2 small", duration=4000)


def register(app: Dash, runtime: Runtime) -> None:
    accounts = runtime.accounts

    def tokens():
        me = current_principal()
        return token_table(accounts.list_tokens(me), show_owner=me.can("admin"))

    def users():
        return user_table(accounts.list_users(), current_principal().name)

    @app.callback(
        Output(ids.TOKEN_FEEDBACK, "children"),
        Output(ids.TOKEN_LIST, "children"),
        Output(ids.TOKEN_NAME, "value"),
        Input(ids.TOKEN_CREATE, "n_clicks"),
        State(ids.TOKEN_NAME, "value"),
        State(ids.TOKEN_DAYS, "value"),
        prevent_initial_call=True,
    )
    def create_token(_clicks, name, days):
        body = {"name": name or ""} | ({"expires_in_days": days} if days else {})
        try:
            token = accounts.create_token(current_principal(), body)
        except DomainError as exc:
            return _error(exc), no_update, no_update
        return new_token_notice(token), tokens(), ""

    @app.callback(
        Output(ids.TOKEN_FEEDBACK, "children", allow_duplicate=True),
        Output(ids.TOKEN_LIST, "children", allow_duplicate=True),
        Input(ids.token_revoke(ALL), "n_clicks"),
        prevent_initial_call=True,
    )
    def revoke_token(clicks):
        if not ctx.triggered_id or not any(clicks):
            return no_update, no_update
        try:
            accounts.revoke_token(current_principal(), ctx.triggered_id["id"])
        except DomainError as exc:
            return _error(exc), no_update
        return _done("Token revoked: it no longer works, and its open connections close."), tokens()

    @app.callback(
        Output(ids.USER_FEEDBACK, "children"),
        Output(ids.USER_LIST, "children"),
        Output(ids.USER_PASSWORD, "value"),
        Input(ids.USER_CREATE, "n_clicks"),
        State(ids.USER_NAME, "value"),
        State(ids.USER_PASSWORD, "value"),
        State(ids.USER_ROLE, "value"),
        prevent_initial_call=True,
    )
    def create_user(_clicks, name, password, role):
        try:
            user = accounts.create_user({"name": name or "", "password": password or "", "role": role})
        except DomainError as exc:
            return _error(exc), no_update, no_update
        return _done(f"User {user['name']} added as {user['role']}."), users(), ""

    @app.callback(
        Output(ids.USER_FEEDBACK, "children", allow_duplicate=True),
        Output(ids.USER_LIST, "children", allow_duplicate=True),
        Input(ids.user_set_role(ALL), "value"),
        Input(ids.user_delete(ALL), "n_clicks"),
        prevent_initial_call=True,
    )
    def change_user(_roles, _deletes):
        trigger = ctx.triggered_id
        if not trigger or not ctx.triggered[0]["value"]:
            return no_update, no_update
        try:
            if trigger["type"] == ids.USER_DELETE:
                accounts.delete_user(trigger["id"])
                message = "User removed, with their tokens."
            else:
                before = accounts.get_user(trigger["id"])
                if before["role"] == ctx.triggered[0]["value"]:
                    return no_update, no_update  # the table was redrawn, nothing was chosen
                user = accounts.update_user(trigger["id"], {"role": ctx.triggered[0]["value"]})
                message = f"{user['name']} is now {user['role']}; their logins end."
        except DomainError as exc:
            return _error(exc), users()
        return _done(message), users()
