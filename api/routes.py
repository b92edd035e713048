"""The JSON REST API under ``<prefix>api/v1``."""

from __future__ import annotations


from flask import Blueprint, Flask, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

import api.accounts
import api.charts
import api.openapi
import api.data
import api.ml
from api.errors import ApiError, error_response, storage_error_response
from api.params import AsciiIntConverter, int_param, json_body, query_param, runtime
from security import current_actor, current_principal, scope
from events.catalogue import InvalidEvent
from events.log import EventLogUnavailable, Gap
from services.errors import DomainError
from storage.errors import StorageUnavailable

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]  # what the catch-all takes, to answer them 404 or 405
ALLOW_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
STATUS_CODES = {"healthy": 200, "degraded": 200, "down": 503}


def allowed_methods() -> list[str]:
    """The methods the API resource at this request's path answers; empty when no resource is there.

    Werkzeug's own list would add the catch-all's methods and Dash's page route (GET), which every
    path matches.
    """
    adapter = current_app.url_map.bind("localhost", script_name=request.script_root or None)
    allowed = []
    for method in ALLOW_ORDER:
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint.startswith("api.") and endpoint != "api.unknown":
            allowed.append(method)
    return allowed


def method_refused():
    """405 naming the methods that work (RFC 9110), or 404 where no resource is (an id past MAX_ID, a typo)."""
    allowed = allowed_methods()
    if not allowed:
        return error_response(404, "not_found", f"no API endpoint at {request.path}")
    response = error_response(405, "method_not_allowed", f"{request.method} is not allowed here", {"allowed": allowed})
    response.headers["Allow"] = ", ".join(allowed)
    return response


def create_blueprint() -> Blueprint:
    bp = Blueprint("api", __name__)

    @bp.before_request
    def options():
        # Flask's automatic OPTIONS answer would list every rule matching the path, the catch-all's included.
        if request.method != "OPTIONS":
            return None
        allowed = allowed_methods()
        if not allowed:
            raise ApiError(f"no API endpoint at {request.path}", code="not_found", status=404)
        response = current_app.response_class(status=200)
        response.headers["Allow"] = ", ".join(allowed)
        return response

    @bp.get("/health")
    def health():
        report = runtime().health.report()
        if current_principal() is None:  # anyone may ask (load balancers): statuses, not the reasons
            report = {**report, "components": {n: {"status": c["status"]} for n, c in report["components"].items()}}
        return jsonify(report), STATUS_CODES[report["status"]]

    @bp.get("/snapshot")
    def snapshot():
        return jsonify(scope.snapshot(runtime().state.snapshot()))  # a share link gets its chart's part

    @bp.get("/events")
    def list_events():
        app_runtime = runtime()
        after = int_param("after", 0, maximum=2**62)
        limit = int_param("limit", 100, minimum=1, maximum=1000)
        epoch = query_param("epoch") or None
        result = app_runtime.log.read_after(after, epoch, limit=limit)
        if isinstance(result, Gap):
            raise ApiError(
                f"cannot replay after seq {after}: {result.reason}",
                code="history_gap",
                status=410,
                details={"epoch": result.epoch, "seq": result.seq},
            )
        epoch_now, head = app_runtime.log.head()
        next_after = result[-1].seq if result else after
        return jsonify({"epoch": epoch_now, "seq": head, "next_after": next_after, "events": [e.envelope() for e in result]})

    @bp.post("/events")
    def publish_event():
        body = json_body()
        if not isinstance(body, dict):
            raise ApiError("the body must be a JSON object", code="invalid_json")
        unknown = sorted(set(body) - {"type", "data"})
        if unknown:
            raise ApiError("unknown fields", code="unknown_fields", details={"fields": unknown})
        if "type" not in body:
            raise ApiError("'type' is required", code="invalid_event", status=422)
        data = body.get("data")
        if data is None or isinstance(data, dict):
            # news from outside the dashboard's own work, by this admin (whatever actor the body claims)
            data = {**(data or {}), "posted": True, "actor": current_actor()}  # news from outside, not from the dashboard's own work
        try:
            event = runtime().publish(body["type"], data)
        except InvalidEvent as exc:
            raise ApiError(str(exc), code="invalid_event", status=422, details={"errors": exc.errors}) from None
        return jsonify(event.envelope()), 201

    api.accounts.register(bp)
    api.charts.register(bp)
    api.data.register(bp)
    api.ml.register(bp)

    @bp.get("/openapi.json")
    def openapi():
        return jsonify(api.openapi.document(request.script_root + request.path.removesuffix("/openapi.json")))

    @bp.route("/<path:_unknown>", methods=METHODS)
    def unknown(_unknown):
        # Without this, Dash's catch-all page route would answer unknown API paths with HTML.
        return method_refused()

    @bp.errorhandler(DomainError)
    def api_error(exc: DomainError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @bp.errorhandler(EventLogUnavailable)
    def log_unavailable(exc: EventLogUnavailable):
        return error_response(503, "event_log_unavailable", str(exc))

    @bp.errorhandler(StorageUnavailable)
    @bp.errorhandler(SQLAlchemyError)
    def storage_error(exc: Exception):
        return storage_error_response(exc)

    return bp


def register(server: Flask, prefix: str) -> None:
    """Mount the API at ``<prefix>api/v1``; unknown API paths and methods answer in the same JSON shape."""
    base = f"{prefix}api/v1"
    server.url_map.converters["int"] = AsciiIntConverter  # before the blueprint's rules are made with it
    server.register_blueprint(create_blueprint(), url_prefix=base)

    @server.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not request.path.startswith(base):
            return exc
        if isinstance(exc, MethodNotAllowed):  # routing's list holds Dash's page route; an id past MAX_ID is 404
            return method_refused()
        code = (exc.name or "error").lower().replace(" ", "_")
        response = error_response(exc.code or 500, code, exc.description or exc.name)
        for name, value in exc.get_headers():
            if name.lower() in {"allow", "retry-after", "www-authenticate"}:
                response.headers[name] = value
        return response
