"""Reading request input strictly: query integers and JSON bodies, with the API's errors."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from api.errors import ApiError
from services.runtime import Runtime

MAX_ID = 2**31 - 1  # larger ids cannot exist; id routes do not match them (404) instead of overflowing SQL


class AsciiIntConverter(IntegerConverter):
    """``<int:...>`` in ASCII digits: Werkzeug's ``\\d+`` also takes "١" and "１", which int() reads as 1."""

    regex = r"[0-9]+"


def runtime() -> Runtime:
    """The ``Runtime`` of the app serving this request."""
    return current_app.extensions["mlops"]


_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() and int() also take "+5", "1_0", " 5", Arabic and superscript digits


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(message, code="invalid_parameter", details={"parameter": name})


def query_param(name: str) -> str | None:
    """The one value of a query parameter, or None when absent; a repeated parameter is refused
    (taking the first or the last would be a guess at what the caller meant)."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise _invalid(name, f"'{name}' is given {len(values)} times; give it once")
    return values[0] if values else None


def int_param(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """A non-negative integer in ASCII digits, or ``default`` when absent (an empty value is refused)."""
    raw = query_param(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw):
        raise _invalid(name, f"'{name}' must be an integer written in the digits 0-9")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _invalid(name, f"'{name}' must be {bound}")
    return value


def id_param(name: str, maximum: int = MAX_ID) -> int | None:
    """An optional id filter (``?pipeline_id=3``): None when absent."""
    return int_param(name, 0, minimum=1, maximum=maximum) if name in request.args else None


MAX_JSON_BYTES = 1 << 20  # JSON bodies are small; only dataset uploads may be large
MAX_JSON_DEPTH = 32  # nesting deeper than any body of this API: refused before anything looks at it
MAX_JSON_INT = 2**63 - 1  # what the databases' BIGINT holds; larger integers are refused, not overflowed


def _json_error(message: str, code: str = "invalid_json", status: int = 400) -> ApiError:
    return ApiError(message, code=code, status=status)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _check_parsed(value: Any) -> None:
    """Depth and integer range, walked without recursion (a hostile body must not exhaust the stack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _json_error(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels", "too_deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, int) and not isinstance(item, bool) and not -MAX_JSON_INT - 1 <= item <= MAX_JSON_INT:
            raise _json_error(f"the integer {str(item)[:20]}... is out of range (at most {MAX_JSON_INT})",
                              "number_out_of_range", 422)


def json_body() -> Any:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise _json_error(f"the JSON body is larger than {MAX_JSON_BYTES // 1024} KB", "too_large", 413)
    if not request.is_json:
        raise _json_error("send a JSON body with Content-Type: application/json", "unsupported_media_type", 415)
    request.max_content_length = MAX_JSON_BYTES  # also bounds a chunked body without a length
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raw = None
    if raw is None or (request.content_length is None and len(raw) >= MAX_JSON_BYTES):
        # a chunked body is cut at the limit: reaching it means there was more
        raise _json_error(f"the JSON body is larger than {MAX_JSON_BYTES // 1024} KB", "too_large", 413)
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise _json_error(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels", "too_deep") from None
    except (ValueError, UnicodeDecodeError):
        raise _json_error("the body is not valid JSON") from None
    _check_parsed(body)
    return body


def optional_json_body() -> dict[str, Any] | None:
    """A JSON object, or None for a POST without a body (actions whose body is optional).

    A body that is sent must be an object: ``null`` is a body, not the absence of one.
    """
    if not (request.content_length or request.is_json):
        return None
    body = json_body()
    if not isinstance(body, dict):
        raise _json_error("the body must be a JSON object (or no body at all)")
    return body
