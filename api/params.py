"""Reading request input strictly: query integers and JSON bodies, with the API's errors."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from api.errors import ApiError
from services.runtime import Runtime

MAX_ID = 2**31 - 1  # larger ids cannot exist; id routes do not match them (404) instead of overflowing SQL


def runtime() -> Runtime:
    """The ``Runtime`` of the app serving this request."""
    return current_app.extensions["mlops"]


def int_param(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"'{name}' must be an integer", code="invalid_parameter", details={"parameter": name}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ApiError(f"'{name}' must be {bound}", code="invalid_parameter", details={"parameter": name})
    return value


def id_param(name: str, maximum: int = MAX_ID) -> int | None:
    """An optional id filter (``?pipeline_id=3``): None when absent."""
    return int_param(name, 0, minimum=1, maximum=maximum) if request.args.get(name) else None


MAX_JSON_BYTES = 1 << 20  # JSON bodies are small; only dataset uploads may be large


def json_body() -> Any:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise ApiError(f"the JSON body is larger than {MAX_JSON_BYTES // 1024} KB", code="too_large", status=413)
    if not request.is_json:
        raise ApiError("send a JSON body with Content-Type: application/json", code="unsupported_media_type", status=415)
    request.max_content_length = MAX_JSON_BYTES  # also bounds a chunked body without a length
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("the body is not valid JSON", code="invalid_json")
    return body


def optional_json_body() -> Any:
    """A JSON body, or None for an empty POST (actions whose body is optional)."""
    return json_body() if request.content_length or request.is_json else None
