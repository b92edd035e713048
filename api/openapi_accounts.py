"""The OpenAPI paths and schemas of accounts: who am I, tokens, users, share links."""

from __future__ import annotations

from typing import Any

from components.charts import CHARTS
from storage.models import ROLES


def _err(*statuses: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Error"}
    return {str(s): {"description": "error", "content": {"application/json": {"schema": ref}}} for s in statuses}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


DAYS = {"type": "number", "exclusiveMinimum": 0, "maximum": 3650}
NO_CONTENT = {"204": {"description": "done"}}

SCHEMAS: dict[str, Any] = {
    "Me": {"type": "object", "properties": {
        "name": {"type": "string"}, "role": {"enum": list(ROLES)}, "auth": {"enum": ["session", "token", "basic", "local"]},
        "id": {"type": ["integer", "null"]}, "mode": {"enum": ["local", "on"]}}},
    "User": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "role": {"enum": list(ROLES)},
        "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}},
    "Token": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "user": {"type": "string"}, "user_id": {"type": "integer"},
        "role": {"enum": list(ROLES)}, "state": {"enum": ["active", "expired", "revoked"]},
        "token": {"type": "string", "description": "the secret: in the answer to its creation only"},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "last_used_at": {"type": ["string", "null"], "format": "date-time"},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"}}},
    "Share": {"type": "object", "properties": {
        "id": {"type": "integer"}, "chart": {"type": "string"}, "created_by": {"type": ["string", "null"]},
        "url": {"type": "string", "description": "in the answer to its creation only"},
        "created_at": {"type": "string", "format": "date-time"}, "expires_at": {"type": "string", "format": "date-time"},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"}}},
}

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (POST /tokens)"},
    "basic": {"type": "http", "scheme": "basic", "description": "user name and password"},
    "session": {"type": "apiKey", "in": "cookie", "name": "mlops_session", "description": "the login page's cookie"},
}


def paths() -> dict[str, Any]:
    items = lambda name: {"type": "object", "properties": {"items": {"type": "array", "items": _ref(name)}}}  # noqa: E731
    password = {"type": "string", "minLength": 8, "maxLength": 1024}
    return {
        "/me": {"get": {"summary": "Who is calling, with which role", "responses": {"200": _ok(_ref("Me"))}}},
        "/tokens": {
            "get": {"summary": "Your API tokens (an admin: everyone's)", "responses": {"200": _ok(items("Token"))}},
            "post": {
                "summary": "Create an API token with your role; its secret is shown once",
                "requestBody": _body({"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 255}, "expires_in_days": DAYS}}),
                "responses": {"201": _ok(_ref("Token"), "created"), **_err(400, 409, 413, 415, 422)},
            },
        },
        "/tokens/{token_id}": {
            "parameters": [_id("token_id")],
            "delete": {"summary": "Revoke a token (at once, and its open WebSockets within 2 s)",
                       "responses": {**NO_CONTENT, **_err(404)}},
        },
        "/users": {
            "get": {"summary": "Users (admins)", "responses": {"200": _ok(items("User"))}},
            "post": {
                "summary": "Create a user (admins)",
                "requestBody": _body({"type": "object", "required": ["name", "password", "role"], "additionalProperties": False,
                                      "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"},
                                                     "password": password, "role": {"enum": list(ROLES)}}}),
                "responses": {"201": _ok(_ref("User"), "created"), **_err(400, 409, 413, 415, 422)},
            },
        },
        "/users/{user_id}": {
            "parameters": [_id("user_id")],
            "get": {"summary": "One user (admins)", "responses": {"200": _ok(_ref("User")), **_err(404)}},
            "patch": {
                "summary": "Change a user's role or password (admins); their logins end",
                "requestBody": _body({"type": "object", "additionalProperties": False,
                                      "properties": {"password": password, "role": {"enum": list(ROLES)}}}),
                "responses": {"200": _ok(_ref("User")), **_err(400, 404, 409, 413, 415, 422)},
            },
            "delete": {"summary": "Delete a user and their tokens (admins)", "responses": {**NO_CONTENT, **_err(404, 409)}},
        },
        "/charts/{chart}/share": {
            "parameters": [{"name": "chart", "in": "path", "required": True, "schema": {"enum": sorted(CHARTS)}}],
            "post": {
                "summary": "A read-only link to the chart's live embed page, for people without an account",
                "requestBody": _body({"type": "object", "additionalProperties": False,
                                      "properties": {"expires_in_days": DAYS}}, required=False),
                "responses": {"201": _ok(_ref("Share"), "created"), **_err(400, 404, 413, 415, 422)},
            },
        },
        "/shares": {"get": {"summary": "Share links (admins)", "responses": {"200": _ok(items("Share"))}}},
        "/shares/{share_id}": {
            "parameters": [_id("share_id")],
            "delete": {"summary": "Revoke a share link (admins)", "responses": {**NO_CONTENT, **_err(404)}},
        },
    }


def secure(document: dict[str, Any]) -> dict[str, Any]:
    """Every operation but the health check takes a credential and may answer 401 or 403."""
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{"bearer": []}, {"basic": []}, {"session": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            if path == "/health":
                operation["security"] = []
                continue
            operation["responses"].update(_err(401, 403))
    return document
