"""Security at the edge: accounts, login, tokens, share links, Host/Origin/CSRF checks and headers.

``install(dash_app, runtime, settings)`` wires it into a dashboard; nothing else in the app decides who
may do what (``security.policy`` holds the rules, ``security.edge`` applies them).
"""

from __future__ import annotations

import datetime as dt
import logging

import dash
import flask
from flask.sessions import SecureCookieSessionInterface

from config import Settings
from security.edge import Edge, ShareMiddleware, current_actor, current_principal
from security.ratelimit import LoginLimiter

log = logging.getLogger(__name__)

__all__ = ["install", "current_actor", "current_principal"]


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, marked Secure when the request came over HTTPS (or when told)."""

    def __init__(self, secure: bool | None):
        self.secure = secure

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        if self.secure is not None:
            return self.secure
        return flask.has_request_context() and flask.request.is_secure


def install(app: dash.Dash, runtime, settings: Settings) -> Edge:
    server = app.server
    prefix = app.config.routes_pathname_prefix
    server.secret_key = runtime.secret_key
    server.config.update(
        SESSION_COOKIE_NAME="mlops_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH=prefix,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.session_hours),
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    server.session_interface = _SessionInterface(settings.secure_cookies)
    limiter = LoginLimiter(settings.login_attempts, settings.event_log)
    edge = Edge(server, settings, runtime.accounts, limiter, prefix, app.csp_hashes)
    server.before_request(edge.before)
    server.after_request(edge.after)
    server.wsgi_app = ShareMiddleware(server.wsgi_app, prefix)

    from security import pages

    pages.register(server, edge, prefix)
    if settings.admin_user:
        runtime.accounts.ensure_admin(settings.admin_user, settings.admin_password)
    if edge.mode == "on" and runtime.accounts.count_users() == 0:
        log.error(
            "MLOPS_AUTH=on and no accounts exist: nobody can log in. Create an admin with "
            "'python app.py users create NAME --role admin' or set MLOPS_ADMIN_USER and MLOPS_ADMIN_PASSWORD"
        )
    log.info("auth: %s; hosts: %s", edge.mode, "any" if edge.any_host else ", ".join(sorted(edge.hosts)))
    return edge
