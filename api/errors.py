"""API-level errors (bad parameters, bodies) share the domain errors' code + status + details."""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify, request

from services.errors import DomainError
from storage.errors import is_unreachable

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5


class ApiError(DomainError):
    pass


def error_response(status: int, code: str, message: str, details: Any = None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def storage_error_response(exc: Exception):
    """A database failure as the API's error: 503 when it is unreachable, else a plain 500.

    The driver's text (SQL, parameters, server messages) goes to the server log only: it can hold
    other users' data and says nothing a client can act on.
    """
    if is_unreachable(exc):
        log.warning("%s %s: database unreachable: %s", request.method, request.path, exc)
        response = error_response(
            503, "storage_unavailable", "the database cannot be reached right now; retry in a few seconds"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    log.error("%s %s: database error", request.method, request.path, exc_info=exc)
    return error_response(500, "internal_error", "the server could not complete the request; the error is logged")
