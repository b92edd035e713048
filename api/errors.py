"""API-level errors (bad parameters, bodies) share the domain errors' code + status + details."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from services.errors import DomainError


class ApiError(DomainError):
    pass


def error_response(status: int, code: str, message: str, details: Any = None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response
