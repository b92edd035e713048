"""Who may do what: the role each route and each server callback needs, in one table.

Checked at the edge (``security.edge``) for every request. A route or callback missing from these
tables is refused to everyone, and ``tests/integration/test_role_matrix.py`` fails until it has a rule.
"""

from __future__ import annotations

from components import ids

PUBLIC = "public"  # no login needed, even with MLOPS_AUTH=on
VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"

# Flask endpoint -> the least role that may call it.
ROUTES: dict[str, str] = {
    # static code and styles (no data): the login page needs them before anyone logs in
    "static": PUBLIC,
    "_dash_assets.static": PUBLIC,
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": PUBLIC,
    "/_favicon.ico": PUBLIC,
    "mlops_login": PUBLIC,
    "mlops_logout": PUBLIC,
    "api.health": PUBLIC,
    # pages and what the Dash renderer loads with them
    "/": VIEWER,
    "/<path:path>": VIEWER,
    "/_dash-layout": VIEWER,
    "/_dash-dependencies": VIEWER,
    "/_dash-update-component": VIEWER,  # and the callback's own rule, below
    "/_reload-hash": VIEWER,
    "mlops_ws": VIEWER,
    # the REST API
    "api.openapi": VIEWER,
    "api.unknown": VIEWER,
    "api.me": VIEWER,
    "api.snapshot": VIEWER,
    "api.list_events": VIEWER,
    "api.publish_event": ADMIN,
    "api.list_charts": VIEWER,
    "api.chart_data": VIEWER,
    "api.chart_export": VIEWER,
    "api.share_chart": EDITOR,
    "api.list_shares": ADMIN,
    "api.revoke_share": ADMIN,
    "api.list_datasets": VIEWER,
    "api.upload_dataset": EDITOR,
    "api.get_dataset": VIEWER,
    "api.rename_dataset": EDITOR,
    "api.delete_dataset": EDITOR,
    "api.list_pipelines": VIEWER,
    "api.create_pipeline": EDITOR,
    "api.get_pipeline": VIEWER,
    "api.update_pipeline": EDITOR,
    "api.delete_pipeline": EDITOR,
    "api.list_activity": VIEWER,
    "api.train": EDITOR,
    "api.list_jobs": VIEWER,
    "api.get_job": VIEWER,
    "api.job_progress": VIEWER,
    "api.cancel_job": EDITOR,
    "api.create_run": EDITOR,
    "api.log_run": EDITOR,
    "api.finish_run": EDITOR,
    "api.list_models": VIEWER,
    "api.get_model": VIEWER,
    "api.deploy_model": EDITOR,
    "api.undeploy_model": EDITOR,
    "api.predict_model": EDITOR,
    "api.predict_pipeline": EDITOR,
    "api.prediction_history": VIEWER,
    "api.list_tokens": VIEWER,  # one's own; an admin sees all
    "api.create_token": VIEWER,  # a token has its owner's role
    "api.revoke_token": VIEWER,  # one's own; an admin any
    "api.list_users": ADMIN,
    "api.create_user": ADMIN,
    "api.get_user": ADMIN,
    "api.update_user": ADMIN,
    "api.delete_user": ADMIN,
}

# Code and styles only: served without even looking at credentials (pages load dozens of them).
STATIC_ROUTES = {"static", "_dash_assets.static", "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>",
                 "/_favicon.ico"}

# What a share link (a read-only view of one chart, in an iframe, with no login) may reach.
SHARE_ROUTES = {"/<path:path>", "/_dash-layout", "/_dash-dependencies", "/_dash-update-component", "mlops_ws", "api.snapshot"}

# Server callbacks, by the id of an output: the least role that may run a callback writing it.
# A callback needs the highest role of its outputs.
CALLBACK_OUTPUTS: dict[str, str] = {
    ids.PAGE: VIEWER,
    ids.NAVBAR: VIEWER,
    ids.DATASET_PROFILE: VIEWER,
    ids.PIPELINE_TARGET: VIEWER,
    ids.PIPELINE_FEATURES: VIEWER,
    # the pipeline form: create, save, edit, delete
    ids.PIPELINE_FEEDBACK: EDITOR,
    ids.PIPELINE_EDITING: EDITOR,
    ids.PIPELINE_FORM_TITLE: EDITOR,
    ids.PIPELINE_SUBMIT: EDITOR,
    ids.PIPELINE_NAME: EDITOR,
    ids.PIPELINE_DATASET: EDITOR,
    ids.PIPELINE_MODEL: EDITOR,
    ids.PIPELINE_PARAMS: EDITOR,
    ids.PIPELINE_CONFIRM: EDITOR,
    ids.PIPELINE_PENDING_DELETE: EDITOR,
    # the access page: one's own tokens, and (admins) users
    ids.TOKEN_FEEDBACK: VIEWER,
    ids.TOKEN_LIST: VIEWER,
    ids.TOKEN_NAME: VIEWER,
    ids.USER_FEEDBACK: ADMIN,
    ids.USER_LIST: ADMIN,
    ids.USER_PASSWORD: ADMIN,
}
# Callbacks that only read (draw a page, a profile, a column list): a page framed on another site,
# which gets no cookies there, may run them without the CSRF token (the Origin check still applies).
READ_ONLY_OUTPUTS = {ids.PAGE, ids.NAVBAR, ids.DATASET_PROFILE, ids.PIPELINE_TARGET, ids.PIPELINE_FEATURES}
# Outputs a share link's page may ask for: the page router only, and only for its own chart.
SHARE_CALLBACK_OUTPUTS = {ids.PAGE, ids.NAVBAR}


def endpoint_name(endpoint: str | None, prefix: str) -> str | None:
    """A Flask endpoint as these tables name it: Dash's routes without the URL prefix
    (``/mlops/_dash-layout`` is ``/_dash-layout``, ``_mlops_dash_assets.static`` is ``_dash_assets.static``)."""
    if endpoint and endpoint.endswith("_dash_assets.static"):
        return "_dash_assets.static"
    if endpoint and prefix != "/" and endpoint.startswith(prefix):
        return "/" + endpoint[len(prefix):]
    return endpoint


def callback_role(output_ids: list[str]) -> str | None:
    """The role a callback with these outputs needs; None when one of them has no rule."""
    roles = [CALLBACK_OUTPUTS.get(i) for i in output_ids]
    if not roles or None in roles:
        return None
    order = (VIEWER, EDITOR, ADMIN)
    return max(roles, key=order.index)
