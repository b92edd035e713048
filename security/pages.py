"""The login and logout pages: plain server-rendered HTML, usable before any Dash code loads."""

from __future__ import annotations

import html
import secrets
import time
from urllib.parse import urlparse

import flask
from flask import request

from security.edge import Edge

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · MLOps Dashboard</title><link rel="stylesheet" href="{prefix}assets/00_bootstrap.min.css"></head>
<body class="bg-light"><main class="container" style="max-width: 24rem; margin-top: 12vh">
<h1 class="h4 mb-3">MLOps Dashboard</h1>{notice}
<form method="post" action="{prefix}login" class="card card-body" id="login-form">
<input type="hidden" name="csrf_token" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label class="form-label" for="login-user">User name</label>
<input class="form-control mb-2" id="login-user" name="username" autocomplete="username" required autofocus value="{user}">
<label class="form-label" for="login-password">Password</label>
<input class="form-control mb-3" id="login-password" name="password" type="password" autocomplete="current-password" required>
<button class="btn btn-primary" id="login-submit" type="submit">Log in</button>
</form></main></body></html>"""


def _notice(text: str, kind: str = "danger") -> str:
    return f'<div class="alert alert-{kind} py-2 small" role="alert" id="login-message">{html.escape(text)}</div>'


def _safe_next(target: str, prefix: str) -> str:
    """Only a path on this dashboard: never another host (an open redirect would help phishing)."""
    parsed = urlparse(target or "")
    if parsed.scheme or parsed.netloc or not target.startswith(prefix) or target.startswith("//") or "\\" in target:
        return prefix
    return target


def register(server: flask.Flask, edge: Edge, prefix: str) -> None:
    accounts, limiter = edge.accounts, edge.limiter

    def render(status: int = 200, notice: str = "", user: str = "", next_url: str = "") -> flask.Response:
        csrf = flask.session.get("csrf") or flask.session.setdefault("csrf", secrets.token_urlsafe(32))
        body = PAGE.format(prefix=prefix, notice=notice, csrf=html.escape(csrf), user=html.escape(user),
                           next=html.escape(_safe_next(next_url, prefix)))
        response = flask.make_response(body, status)
        response.headers["Cache-Control"] = "no-store"
        return response

    @server.route(f"{prefix}login", methods=["GET", "POST"], endpoint="mlops_login")
    def login():
        next_url = request.values.get("next", prefix)
        if request.method == "GET":
            notice = ""
            if edge.mode == "local":
                notice = _notice("This dashboard runs with MLOPS_AUTH=local: no login is needed on this machine.", "info")
            elif accounts.count_users() == 0:
                notice = _notice("No accounts exist yet: an administrator creates the first with "
                                 "'python app.py users create NAME --role admin'.", "warning")
            return render(notice=notice, next_url=next_url)
        refused = edge.cross_site_form()
        if refused is not None:
            return render(403, _notice("The form was stale or came from another site: please try again."), next_url=next_url)
        name, password = request.form.get("username", ""), request.form.get("password", "")
        address = request.remote_addr or ""
        wait = limiter.retry_after(name, address)
        if wait:
            response = render(429, _notice(f"Too many failed logins: try again in {wait} s."), name, next_url)
            response.headers["Retry-After"] = str(wait)
            return response
        principal = accounts.authenticate(name, password) if name and password else None
        if principal is None:
            limiter.failed(name, address)
            return render(401, _notice("Wrong user name or password."), name, next_url)
        limiter.succeeded(name)
        flask.session.clear()  # a new session id for a new login (no fixation)
        flask.session.permanent = True
        flask.session.update(uid=principal.user_id, ver=principal.session_version, login_at=time.time(),
                             name=principal.name, csrf=secrets.token_urlsafe(32))
        return flask.redirect(_safe_next(next_url, prefix), 303)

    @server.post(f"{prefix}logout", endpoint="mlops_logout")
    def logout():
        refused = edge.cross_site_form()
        if refused is not None:
            return refused
        flask.session.clear()
        return flask.redirect(f"{prefix}login", 303)
