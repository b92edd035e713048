"""Who am I, API tokens, users (admins), and share links to a chart."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from api.errors import ApiError
from api.params import MAX_ID, json_body, optional_json_body, runtime
from components.charts import CHARTS
from security import current_principal


def register(bp: Blueprint) -> None:
    @bp.get("/me")
    def me():
        principal = current_principal()
        return jsonify(principal.describe() | {"mode": runtime().settings.auth_mode})

    @bp.get("/tokens")
    def list_tokens():
        return jsonify({"items": runtime().accounts.list_tokens(current_principal())})

    @bp.post("/tokens")
    def create_token():
        return jsonify(runtime().accounts.create_token(current_principal(), json_body())), 201

    @bp.delete(f"/tokens/<int(max={MAX_ID}):token_id>")
    def revoke_token(token_id: int):
        runtime().accounts.revoke_token(current_principal(), token_id)
        return "", 204

    @bp.get("/users")
    def list_users():
        return jsonify({"items": runtime().accounts.list_users()})

    @bp.post("/users")
    def create_user():
        return jsonify(runtime().accounts.create_user(json_body())), 201

    @bp.get(f"/users/<int(max={MAX_ID}):user_id>")
    def get_user(user_id: int):
        return jsonify(runtime().accounts.get_user(user_id))

    @bp.patch(f"/users/<int(max={MAX_ID}):user_id>")
    def update_user(user_id: int):
        return jsonify(runtime().accounts.update_user(user_id, json_body()))

    @bp.delete(f"/users/<int(max={MAX_ID}):user_id>")
    def delete_user(user_id: int):
        runtime().accounts.delete_user(user_id)
        return "", 204

    @bp.post("/charts/<chart_name>/share")
    def share_chart(chart_name: str):
        if chart_name not in CHARTS:
            raise ApiError(f"no chart {chart_name!r}", code="unknown_chart", status=404, details={"charts": sorted(CHARTS)})
        item, token = runtime().accounts.create_share(chart_name, current_principal().name, optional_json_body())
        base = request.host_url.rstrip("/") + runtime().settings.url_prefix
        return jsonify(item | {"url": f"{base}share/{token}/embed/{chart_name}"}), 201

    @bp.get("/shares")
    def list_shares():
        return jsonify({"items": runtime().accounts.list_shares()})

    @bp.delete(f"/shares/<int(max={MAX_ID}):share_id>")
    def revoke_share(share_id: int):
        runtime().accounts.revoke_share(share_id)
        return "", 204
