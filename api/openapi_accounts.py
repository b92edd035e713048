"""The OpenAPI paths and schemas of accounts (who am I, tokens, users, share links), and the pieces
every part of the document is built from (``api.openapi`` assembles it)."""

from __future__ import annotations

from typing import Any

from api.params import MAX_ID
from components.charts import CHARTS
from storage.models import ROLES

ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}  # larger ids cannot exist: their routes answer 404
NAME = {"type": "string", "minLength": 1, "maxLength": 100, "description": "printable; not only spaces"}
DAYS = {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 3650, "description": "null: the default"}
PASSWORD = {"type": "string", "minLength": 8, "maxLength": 1024}
ROLE = {"enum": list(ROLES)}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
NO_CONTENT = {"204": {"description": "done"}}
JSON_BODY = (400, 413, 415, 422)  # invalid_json / too_deep / unknown_fields, too_large, not JSON, number_out_of_range / invalid


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def err(*statuses: int) -> dict[str, Any]:
    """Responses in the API's one error shape."""
    return {str(s): {"description": "error", "content": {"application/json": {"schema": ref("Error")}}} for s in statuses}


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object with exactly these fields (``required`` always present)."""
    return {"type": "object", "required": sorted(required), "additionalProperties": False,
            "properties": {**required, **(optional or {})}}


def in_path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or ID}


def in_query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def links(targets: dict[str, str], pointer: str = "/id", **extra: dict[str, Any]) -> dict[str, Any]:
    """``{"links": ...}`` of a response: operation id -> the parameter its ``pointer`` into the answer fills."""
    found = {op: {"operationId": op, "parameters": {param: f"$response.body#{pointer}"}} for op, param in targets.items()}
    return {"links": {**found, **extra}}


def items(name: str) -> dict[str, Any]:
    return obj({"items": {"type": "array", "items": ref(name)}})


SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": obj({"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}})}),
    "Me": obj({"name": {"type": "string"}, "role": ROLE, "auth": {"enum": ["session", "token", "basic", "local"]},
               "id": {"type": ["integer", "null"]}, "mode": {"enum": ["local", "on"]}}),
    "User": obj({"id": ID, "name": {"type": "string"}, "role": ROLE, "created_at": TIME, "updated_at": TIME}),
    "Token": obj(
        {"id": ID, "name": {"type": "string"}, "user": {"type": "string"}, "user_id": ID, "role": ROLE,
         "state": {"enum": ["active", "expired", "revoked"]}, "created_at": TIME, "expires_at": TIME_OR_NULL,
         "last_used_at": TIME_OR_NULL, "revoked_at": TIME_OR_NULL},
        {"token": {"type": "string", "description": "the secret: in the answer to its creation only"}},
    ),
    "Share": obj(
        {"id": ID, "chart": {"enum": sorted(CHARTS)}, "created_by": {"type": ["string", "null"]}, "created_at": TIME,
         "expires_at": TIME, "revoked_at": TIME_OR_NULL},
        {"url": {"type": "string", "description": "in the answer to its creation only"}},
    ),
}

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (POST /tokens)"},
    "basic": {"type": "http", "scheme": "basic", "description": "user name and password"},
    "session": {"type": "apiKey", "in": "cookie", "name": "mlops_session", "description": "the login page's cookie"},
}


def paths() -> dict[str, Any]:
    user_ops = {"getUser": "user_id", "updateUser": "user_id", "deleteUser": "user_id"}
    return {
        "/me": {"get": {"operationId": "me", "summary": "Who is calling, with which role", "responses": {"200": ok(ref("Me"))}}},
        "/tokens": {
            "get": {"operationId": "listTokens", "summary": "Your API tokens (an admin: everyone's)",
                    "responses": {"200": ok(items("Token"))}},
            "post": {
                "operationId": "createToken",
                "summary": "Create an API token with your role; its secret is shown once "
                           "(409 without an account: MLOPS_AUTH=local)",
                "requestBody": body(obj({"name": {"type": "string", "minLength": 1, "maxLength": 255}},
                                        {"expires_in_days": DAYS})),
                "responses": {"201": ok(ref("Token"), "created") | links({"revokeToken": "token_id"}), **err(*JSON_BODY, 409)},
            },
        },
        "/tokens/{token_id}": {
            "parameters": [in_path("token_id")],
            "delete": {"operationId": "revokeToken", "summary": "Revoke a token (at once, and its open WebSockets within 2 s)",
                       "responses": {**NO_CONTENT, **err(404)}},
        },
        "/users": {
            "get": {"operationId": "listUsers", "summary": "Users (admins)",
                    "responses": {"200": ok(items("User"))}},
            "post": {
                "operationId": "createUser", "summary": "Create a user (admins)",
                "requestBody": body(obj({"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"},
                                         "password": PASSWORD, "role": ROLE})),
                "responses": {"201": ok(ref("User"), "created") | links(user_ops), **err(*JSON_BODY, 409)},
            },
        },
        "/users/{user_id}": {
            "parameters": [in_path("user_id")],
            "get": {"operationId": "getUser", "summary": "One user (admins)", "responses": {"200": ok(ref("User")), **err(404)}},
            "patch": {
                "operationId": "updateUser", "summary": "Change a user's role or password (admins); their logins end",
                "requestBody": body(obj({}, {"password": PASSWORD, "role": ROLE})),
                "responses": {"200": ok(ref("User")), **err(*JSON_BODY, 404, 409)},
            },
            "delete": {"operationId": "deleteUser", "summary": "Delete a user and their tokens (admins; not the last admin)",
                       "responses": {**NO_CONTENT, **err(404, 409)}},
        },
        "/charts/{chart}/share": {
            "parameters": [in_path("chart", {"enum": sorted(CHARTS)})],
            "post": {
                "operationId": "shareChart",
                "summary": "A read-only link to the chart's live embed page, for people without an account",
                "requestBody": body(obj({}, {"expires_in_days": DAYS}), required=False),
                "responses": {"201": ok(ref("Share"), "created") | links({"revokeShare": "share_id"}), **err(*JSON_BODY, 404)},
            },
        },
        "/shares": {"get": {"operationId": "listShares", "summary": "Share links (admins)",
                            "responses": {"200": ok(items("Share"))}}},
        "/shares/{share_id}": {
            "parameters": [in_path("share_id")],
            "delete": {"operationId": "revokeShare", "summary": "Revoke a share link (admins)",
                       "responses": {**NO_CONTENT, **err(404)}},
        },
    }


def secure(document: dict[str, Any], auth_mode: str) -> dict[str, Any]:
    """Every operation but the health check takes a credential and may answer 401 or 403, and 503
    when the database or the event log cannot be reached.

    With MLOPS_AUTH=local a credential is optional (``{}``): this machine's requests without one are
    the local admin's, and a credential that is sent must still be right.
    """
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [*([{}] if auth_mode == "local" else []), {"bearer": []}, {"basic": []}, {"session": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            if path == "/health":
                operation["security"] = []
                continue
            operation["responses"].update(err(401, 403, 503))
    return document
