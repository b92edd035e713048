"""MLOps Dashboard: ``create_app(settings)`` builds the Dash app on its Flask server.

``python app.py`` serves it with the development server; ``gunicorn app:server`` imports ``server``,
which is created on first access so importing ``create_app`` (tests, notebooks) starts nothing.
"""

from __future__ import annotations

import atexit
import logging
import sys
from pathlib import Path

import dash
import flask
from flask_sock import Sock

import api.routes
import security
from api.data import MlopsRequest
import callbacks.access
import callbacks.data
import callbacks.live
import callbacks.pages
from components import ids
from components.shell import layout, validation_layout
from components.charts import browser_charts
from config import ConfigError, Settings
from events import ws
from security import scope
from services.live_state import LiveState
from services.runtime import Runtime

HERE = Path(__file__).resolve().parent


class MlopsDash(dash.Dash):
    def interpolate_index(self, **kwargs) -> str:
        # A share link's page asks for everything under the link's own path; no page tells the Python version.
        kwargs["config"] = scope.index_config(kwargs.get("config", ""), self.config.routes_pathname_prefix)
        return super().interpolate_index(**kwargs)


def create_app(settings: Settings | None = None) -> dash.Dash:
    """A new dashboard (Flask server, Dash app, WebSocket, API) with its background services started."""
    settings = settings or Settings.from_env()
    server = flask.Flask(__name__)
    server.request_class = MlopsRequest  # uploads stream their file part to disk, with progress
    server.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb * 2**20
    server.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": None, "max_message_size": ws.MAX_CLIENT_MESSAGE}
    runtime = Runtime(settings)
    server.extensions["mlops"] = runtime

    app = MlopsDash(
        __name__,
        server=server,
        url_base_pathname=settings.url_prefix,
        assets_folder=str(HERE / "assets"),
        title="MLOps Dashboard",
        update_title=None,
        serve_locally=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    prefix = app.config.routes_pathname_prefix
    browser_config = {
        "base": app.config.requests_pathname_prefix,
        "ws_path": "ws",  # relative to Dash's requests_pathname_prefix, so it works behind a proxy path
        "api_path": "api/v1",
        "charts": browser_charts(),
        "max_points": settings.chart_points,
        "heartbeat_s": settings.ws_heartbeat_s,
        "auth": settings.auth_mode,
        "ids": {name: getattr(ids, name) for name in dir(ids) if name.isupper()},
    }
    def page_layout():
        principal = security.current_principal()
        user = None
        if principal is not None and principal.kind != "share":
            user = principal.describe() | {"auth": principal.kind, "csrf": flask.session.get("csrf")}
        return layout(scope.snapshot(runtime.state.snapshot()), scope.browser_config(browser_config, prefix), user)

    app.layout = page_layout
    # Pages are drawn by the routing callback; Dash validates callbacks against all of them.
    app.validation_layout = validation_layout(LiveState(settings.chart_points).snapshot(), browser_config)
    callbacks.live.register(app)
    callbacks.data.register(app, runtime)
    callbacks.pages.register(app, runtime, api_base=f"{app.config.requests_pathname_prefix}api/v1/")
    callbacks.access.register(app, runtime)
    api.routes.register(server, prefix)

    def ws_access():
        principal = security.current_principal()
        types, project = scope.event_filter(principal)
        return principal, (ws.Scope(types, project) if types is not None else None)

    ws.register(Sock(server), f"{prefix}ws", runtime.hub, settings, runtime.sockets, ws_access)
    security.install(app, runtime, settings)
    runtime.hub.actor = security.current_actor

    if settings.event_log.startswith("memory") and "gunicorn" in sys.modules:
        logging.getLogger("mlops").warning(
            "MLOPS_EVENT_LOG=memory:// under gunicorn: each worker keeps its own history, so with "
            "several workers pages miss events; set MLOPS_EVENT_LOG=redis://... (README, Deployment)"
        )
    runtime.start()
    app.mlops = runtime  # tests and embedding code reach the runtime here
    atexit.register(runtime.stop)
    return app


def __getattr__(name: str):
    if name in {"server", "app"}:
        try:
            dash_app = globals().get("_app") or create_app()
        except AttributeError as exc:
            # Raised through a module __getattr__, it would read as "no attribute 'server'" (gunicorn).
            raise RuntimeError(f"creating the dashboard failed: {exc!r}") from exc
        globals()["_app"] = dash_app
        return dash_app if name == "app" else dash_app.server
    raise AttributeError(name)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    if sys.argv[1:2] == ["users"]:
        from security import cli

        logging.getLogger().setLevel(logging.WARNING)
        sys.exit(cli.main(sys.argv[2:], settings))
    dash_app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}{settings.url_prefix}"
    logging.getLogger("mlops").info("MLOps Dashboard on %s", url)
    dash_app.run(
        host=settings.host, port=settings.port, debug=settings.debug, threaded=True,
        request_handler=timed_request_handler(settings.request_timeout_s),
    )


def timed_request_handler(timeout_s: float) -> type:
    """Werkzeug's handler with a socket timeout and a Server header without versions, so a client that stalls its headers or body, or stops
    reading the answer, frees its thread.

    WebSockets clear it on upgrade (events/ws.py): the heartbeat and the send timeout bound them.
    """
    from werkzeug.serving import WSGIRequestHandler

    class TimedRequestHandler(WSGIRequestHandler):
        timeout = timeout_s

        def version_string(self) -> str:
            return "mlops"  # not "Werkzeug/x Python/y": the server's software and versions are nobody's business

    return TimedRequestHandler


if __name__ == "__main__":
    main()
