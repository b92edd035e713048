"""The one place every request and WebSocket passes through: Host, who is asking, may they, and from where.

Order, per request (``before``):
1. ``Host`` must be an allowed name (DNS rebinding), and with MLOPS_AUTH=local the peer must be on
   this machine.
2. Who is asking: a share link in the path, a bearer token, HTTP Basic, the login cookie, or (local
   mode) the person at this machine. A credential that is present but wrong is a 401, never a fallback.
3. May they: the route's role in ``security.policy`` (and, for Dash callbacks, the role of the
   callback's outputs). Anonymous pages go to the login page; anonymous API calls get 401.
4. From where: a state-changing request from a browser must come from this page's own origin (or
   MLOPS_ALLOWED_ORIGINS), by ``Origin`` / ``Sec-Fetch-Site``, and carry the CSRF token; ``/ws`` must
   come from an allowed origin. Scripts with a token and no ``Origin`` pass.
Every response then gets the security headers (``after``).
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import secrets
import socket
import time
from typing import Any
from urllib.parse import quote, urlparse

import flask
from flask import g, request
from werkzeug.wrappers import Response

from api.errors import error_response
from config import LOOPBACK_NAMES, Settings, is_loopback
from security import policy
from services.accounts import LOCAL, Accounts, Principal

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_COOKIE = "_csrf_token"  # the name Dash's renderer reads and echoes as X-CSRFToken
CSRF_HEADER = "X-CSRFToken"
SHARE_ENV = "mlops.share_token"


def current_principal() -> Principal | None:
    """Who is making the current request (None outside a request, or when anonymous)."""
    if not flask.has_request_context():
        return None
    return g.get("principal")


def current_actor() -> str | None:
    """The name to record for what the current request does; None for the system's own work."""
    principal = current_principal()
    return principal.name if principal is not None and principal.kind != "share" else None


def default_hosts(settings: Settings) -> set[str]:
    hosts = {h.strip("[]") for h in LOOPBACK_NAMES}
    if settings.auth_mode == "on":
        hosts |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        if settings.host not in {"0.0.0.0", "::", ""}:
            hosts.add(settings.host.lower().strip("[]"))
    return hosts


class ShareMiddleware:
    """``<prefix>share/<token>/<rest>`` is served as ``<prefix><rest>`` with the token in the environ.

    The token rides in the path of every request the embedded page makes (its Dash config points
    there), so a share link needs no cookie, which a third-party iframe would not send anyway.
    """

    def __init__(self, wsgi_app, prefix: str):
        self.wsgi_app = wsgi_app
        self.marker = f"{prefix}share/"
        self.prefix = prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.marker):
            token, _, rest = path[len(self.marker):].partition("/")
            environ[SHARE_ENV] = token
            environ["PATH_INFO"] = self.prefix + rest
        return self.wsgi_app(environ, start_response)


class Edge:
    def __init__(self, server: flask.Flask, settings: Settings, accounts: Accounts, limiter, prefix: str, csp_scripts):
        self.server = server
        self.settings = settings
        self.accounts = accounts
        self.limiter = limiter
        self.prefix = prefix
        self.mode = settings.auth_mode
        self.any_host = "*" in settings.allowed_hosts
        self.hosts = set(settings.allowed_hosts) or default_hosts(settings)
        self.origins = set(settings.allowed_origins)
        self.embed_origins = settings.embed_origins
        self.csp_scripts = csp_scripts  # () -> the hashes of Dash's inline scripts
        self._csp: dict[bool, str] = {}

    # ---- 1. where from -------------------------------------------------------------------------
    def host_allowed(self, host: str) -> bool:
        name = (urlparse("//" + host).hostname or "").lower()
        if not name:
            return False
        if self.any_host or name in self.hosts:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False  # a name we were not told about: maybe a rebinding attacker's
        # An address cannot be rebound; in local mode only loopback ones reach us anyway.
        return self.mode == "on" or address.is_loopback

    def origin_allowed(self, origin: str) -> bool:
        if "*" in self.origins:
            return True
        parsed = urlparse(origin)
        return parsed.netloc.lower() == request.host.lower() or origin.rstrip("/").lower() in self.origins

    def browser_same_origin(self) -> bool | None:
        """True or False from the browser's own headers; None when there are none (not a browser)."""
        origin = request.headers.get("Origin")
        if origin is not None:
            return origin != "null" and self.origin_allowed(origin)
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site in {"same-origin", "none"}
        return None

    # ---- 2. who ----------------------------------------------------------------------------------
    def authenticate(self) -> Principal | Response | None:
        share = request.environ.get(SHARE_ENV)
        if share is not None:
            principal = self.accounts.share_principal(share)
            if principal is None:
                return self.refuse(404, "share_not_found", "this share link does not exist, expired or was revoked")
            return principal
        header = request.headers.get("Authorization", "").strip()
        scheme, _, value = header.partition(" ")
        if header.lower() == "bearer":
            header = ""  # "Bearer " with an unset $MLOPS_TOKEN: no credential, as if the header were absent
        elif scheme.lower() == "bearer":
            principal = self.accounts.token_principal(value.strip())
            if principal is None:
                return self.unauthorized("the token is unknown, expired or revoked", error="invalid_token")
            return principal
        if scheme.lower() == "basic":
            return self.basic(value.strip())
        if header:
            return self.unauthorized("use Authorization: Bearer <token> or Basic")
        uid, version = flask.session.get("uid"), flask.session.get("ver")
        if uid is not None:
            expired = time.time() - float(flask.session.get("login_at", 0)) > self.settings.session_hours * 3600
            principal = None if expired else self.accounts.session_user(uid, version)
            if principal is not None:
                return principal
            for key in ("uid", "ver", "login_at", "name"):
                flask.session.pop(key, None)  # ended: back to anonymous (or local), keep the CSRF token
        return LOCAL if self.mode == "local" else None

    def basic(self, value: str) -> Principal | Response:
        try:
            name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return self.unauthorized("malformed Basic credentials")
        wait = self.limiter.retry_after(name, request.remote_addr or "")
        if wait:
            return self.too_many(wait)
        principal = self.accounts.authenticate(name, password)
        if principal is None:
            self.limiter.failed(name, request.remote_addr or "")
            return self.unauthorized("wrong user name or password")
        return principal

    # ---- the hook -------------------------------------------------------------------------------
    def endpoint(self) -> str | None:
        return policy.endpoint_name(request.endpoint, self.prefix)

    def before(self) -> Response | None:
        if not self.host_allowed(request.host):
            return self.refuse(400, "host_not_allowed", f"Host {request.host!r} is not served here (MLOPS_ALLOWED_HOSTS)")
        if self.mode == "local" and not is_loopback(request.remote_addr or ""):
            return self.refuse(
                403, "local_only", "MLOPS_AUTH=local serves this machine only: set MLOPS_AUTH=on to let others in"
            )
        endpoint = g.endpoint = self.endpoint()
        rule = policy.ROUTES.get(endpoint or "")
        if endpoint is None:
            rule = policy.VIEWER  # unmatched paths: answered (404) only to those who may look
        if rule is None:
            return self.refuse(403, "no_rule", f"{endpoint} has no access rule")
        static = endpoint in policy.STATIC_ROUTES and not request.headers.get("Authorization")
        found = None if static else self.authenticate()
        if isinstance(found, Response):
            return found
        g.principal = found
        if rule == policy.PUBLIC:
            return None
        if found is None:
            return self.login_required()
        if found.kind == "share":
            refused = self.share_scope(found)
        elif not found.can(rule):
            refused = self.forbidden(rule)
        else:
            refused = self.callback_rule(found) if endpoint == "/_dash-update-component" else None
        return refused or self.cross_site(found)

    def share_scope(self, principal: Principal) -> Response | None:
        """A share link reaches its chart's embed page and what that page loads, nothing else."""
        refused = self.refuse(403, "forbidden", "a share link shows one chart and nothing else")
        endpoint = g.endpoint
        if endpoint not in policy.SHARE_ROUTES or (request.method != "GET" and endpoint != "/_dash-update-component"):
            return refused
        if endpoint == "/<path:path>" and request.path.rstrip("/") != f"{self.prefix}embed/{principal.chart}":
            return refused
        if endpoint == "/_dash-update-component":
            body = request.get_json(silent=True)
            body = body if isinstance(body, dict) else {}
            outputs = _output_ids(body)
            inputs = body.get("inputs") if isinstance(body.get("inputs"), list) else []
            pathname = next(
                (i.get("value") for i in inputs
                 if isinstance(i, dict) and i.get("id") == policy.ids.URL and i.get("property") == "pathname"),
                None,
            )
            own_page = f"{self.prefix}share/{request.environ[SHARE_ENV]}/embed/{principal.chart}"
            if not outputs or not set(outputs) <= policy.SHARE_CALLBACK_OUTPUTS or not isinstance(pathname, str) \
                    or pathname.rstrip("/") != own_page:
                return refused
        return None

    def callback_rule(self, principal: Principal) -> Response | None:
        body = request.get_json(silent=True)
        role = policy.callback_role(_output_ids(body if isinstance(body, dict) else {}))
        if role is None:
            return self.refuse(403, "no_rule", "this callback has no access rule")
        return None if principal.can(role) else self.forbidden(role)

    def cross_site(self, principal: Principal) -> Response | None:
        websocket = g.endpoint == "mlops_ws"
        if request.method not in UNSAFE_METHODS and not websocket:
            return None
        same = self.browser_same_origin()
        if principal.kind in {"token", "basic"} and same is not False:
            return None  # a script with its own credentials; a browser cannot forge this header cross-site
        if principal.kind == "share" and same is not False:
            return None  # read-only (share_scope let through the page router alone); it has no cookie
        if same is False:
            return self.refuse(403, "cross_site", "this request came from another site's page (MLOPS_ALLOWED_ORIGINS)")
        if websocket:
            return None  # a browser always sends Origin on a WebSocket; checked above
        if same is None and "Cookie" not in request.headers and principal.kind == "local":
            return None  # a program on this machine (curl, a script), not a browser
        if same and g.endpoint == "/_dash-update-component" and self.read_only_callback():
            return None  # draws a page; an embed framed elsewhere has no cookie to echo
        expected = flask.session.get("csrf")
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.mimetype == "application/x-www-form-urlencoded":
            sent = request.form.get("csrf_token")  # the login and logout forms
        if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
            return self.refuse(403, "csrf_failed", "the CSRF token is missing or stale: reload the page")
        return None

    def read_only_callback(self) -> bool:
        body = request.get_json(silent=True)
        outputs = _output_ids(body if isinstance(body, dict) else {})
        return bool(outputs) and set(outputs) <= policy.READ_ONLY_OUTPUTS

    def cross_site_form(self) -> Response | None:
        """The login and logout forms: posted from this site's own page, with its CSRF token."""
        if self.browser_same_origin() is False:
            return self.refuse(403, "cross_site", "this form was posted from another site's page")
        expected, sent = flask.session.get("csrf"), request.form.get("csrf_token")
        if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
            return self.refuse(403, "csrf_failed", "the CSRF token is missing or stale: reload the page")
        return None

    # ---- answers --------------------------------------------------------------------------------
    def is_api(self) -> bool:
        return request.path.startswith(f"{self.prefix}api/")

    def refuse(self, status: int, code: str, message: str) -> Response:
        return error_response(status, code, message)

    def unauthorized(self, message: str, error: str | None = None) -> Response:
        response = error_response(401, "unauthorized", message)
        bearer = 'Bearer realm="mlops"' + (f', error="{error}"' if error else "")
        response.headers["WWW-Authenticate"] = bearer
        return response

    def too_many(self, wait: int) -> Response:
        response = error_response(429, "too_many_attempts", f"too many failed logins: try again in {wait} s")
        response.headers["Retry-After"] = str(wait)
        return response

    def forbidden(self, role: str) -> Response:
        return error_response(403, "forbidden", f"this needs the {role} role", {"required_role": role})

    def login_required(self) -> Response:
        page = request.method == "GET" and g.get("endpoint") in {"/", "/<path:path>"}
        if page:
            target = request.full_path if request.query_string else request.path
            return flask.redirect(f"{self.prefix}login?next={quote(target, safe='/')}", 302)
        return self.unauthorized("log in, or send Authorization: Bearer <token>")

    # ---- headers --------------------------------------------------------------------------------
    def after(self, response: Response) -> Response:
        embed = request.path.startswith(f"{self.prefix}embed/") or request.environ.get(SHARE_ENV) is not None
        response.headers["Content-Security-Policy"] = self.csp(embed)
        if not embed:
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.environ.get(SHARE_ENV) is None and self.endpoint() in {"/", "/<path:path>", "mlops_login"}:
            self.issue_csrf(response)
        return response

    def issue_csrf(self, response: Response) -> None:
        token = flask.session.get("csrf")
        if not token:
            token = flask.session["csrf"] = secrets.token_urlsafe(32)
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(
                CSRF_COOKIE, token, path=self.prefix, samesite="Strict", secure=self.secure_cookies(), httponly=False
            )

    def secure_cookies(self) -> bool:
        configured = self.settings.secure_cookies
        return request.is_secure if configured is None else configured

    def csp(self, embed: bool) -> str:
        if embed not in self._csp:
            ancestors = "'self'"
            if embed:
                ancestors = "*" if "*" in self.embed_origins else " ".join(("'self'", *self.embed_origins))
            self._csp[embed] = "; ".join(
                (
                    "default-src 'self'",
                    "script-src 'self' " + " ".join(self.csp_scripts()),
                    "style-src 'self' 'unsafe-inline'",  # plotly.js and React set styles inline
                    "img-src 'self' data: blob:",
                    "font-src 'self' data:",
                    "connect-src 'self'",
                    "worker-src 'self' blob:",
                    "object-src 'none'",
                    "base-uri 'self'",
                    "form-action 'self'",
                    f"frame-ancestors {ancestors}",
                )
            )
        return self._csp[embed]


def _output_ids(body: dict[str, Any]) -> list[str]:
    outputs = body.get("outputs")
    outputs = outputs if isinstance(outputs, list) else [outputs] if isinstance(outputs, dict) else []
    found = []
    for output in outputs:
        for item in output if isinstance(output, list) else [output]:  # pattern outputs (ALL) are lists
            if not isinstance(item, dict):
                return []
            component = item.get("id")
            found.append(component.get("type") if isinstance(component, dict) else component)
    return [str(i) for i in found]
