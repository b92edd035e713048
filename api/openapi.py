"""The OpenAPI 3.1 document of the REST API (``GET <prefix>api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from components.charts import CHARTS
from events.catalogue import PAYLOADS, EventType
from services.export import FORMATS
from services.pipelines import MODELS, PARAMS

ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "error", "content": {"application/json": {"schema": ERROR}}} for s in statuses}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _items(name: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"items": {"type": "array", "items": _ref(name)}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def document(server_url: str) -> dict[str, Any]:
    chart_params = [
        _query("last", {"type": "string", "pattern": r"^\d+(\.\d+)?[smhd]$"}, "time range, e.g. 15m (default: the live window)"),
        _query("width", {"type": "integer", "minimum": 100, "maximum": 4000}, "image width in px"),
        _query("height", {"type": "integer", "minimum": 100, "maximum": 4000}, "image height in px"),
        _query("theme", {"enum": ["light", "dark"]}, "figure theme"),
        _query("download", {"type": "string"}, "any value: answer as an attachment"),
    ]
    chart_name = {"name": "chart", "in": "path", "required": True, "schema": {"enum": sorted(CHARTS)}}
    event_types = [t.value for t in EventType]
    return {
        "openapi": "3.1.0",
        "info": {"title": "MLOps Dashboard API", "version": "1"},
        "servers": [{"url": server_url}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "Health of each component",
                    "responses": {"200": _json({"$ref": "#/components/schemas/Health"}), **_errors(503)},
                }
            },
            "/snapshot": {"get": {"summary": "State the page renders first, at a seq", "responses": {"200": _json({"type": "object"})}}},
            "/events": {
                "get": {
                    "summary": "Replay events after a seq",
                    "parameters": [
                        _query("after", {"type": "integer", "minimum": 0}, "last seq the caller has"),
                        _query("epoch", {"type": "string"}, "epoch of that seq"),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many"),
                    ],
                    "responses": {"200": _json({"type": "object"}), **_errors(400, 410, 503)},
                },
                "post": {
                    "summary": "Publish one event",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["type"],
                                    "additionalProperties": False,
                                    "properties": {"type": {"enum": event_types}, "data": {"type": "object"}},
                                }
                            }
                        },
                    },
                    "responses": {"201": _json({"$ref": "#/components/schemas/Event"}, "published"), **_errors(400, 415, 422, 503)},
                },
            },
            "/charts": {"get": {"summary": "The charts that can be exported", "responses": {"200": _json({"type": "object"})}}},
            "/charts/{chart}.{format}": {
                "get": {
                    "summary": "Export a chart",
                    "parameters": [
                        chart_name,
                        {"name": "format", "in": "path", "required": True, "schema": {"enum": sorted(FORMATS)}},
                        *chart_params,
                    ],
                    "responses": {
                        "200": {"description": "the chart", "content": {mime.split(";")[0]: {} for mime in FORMATS.values()}},
                        **_errors(400, 404),
                    },
                }
            },
            "/charts/{chart}/data": {
                "get": {
                    "summary": "A chart's samples (what notebooks build the same figure from)",
                    "parameters": [chart_name, *chart_params[:1]],
                    "responses": {"200": _json({"type": "object"}), **_errors(400, 404)},
                }
            },
            "/datasets": {
                "get": {"summary": "All datasets (current versions)", "responses": {"200": _json(_items("Dataset"))}},
                "post": {
                    "summary": "Upload a CSV (streamed); the same name again makes a new version",
                    "parameters": [_query("upload_id", {"type": "string"}, "id echoed in upload_progress / upload_complete / upload_error events")],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {"file": {"type": "string", "format": "binary"}, "name": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {"201": _json(_ref("Dataset"), "stored"), **_errors(400, 409, 413, 415, 422)},
                },
            },
            "/datasets/{dataset_id}": {
                "parameters": [_path_id("dataset_id")],
                "get": {"summary": "One dataset with its profile and versions", "responses": {"200": _json(_ref("Dataset")), **_errors(404)}},
                "patch": {
                    "summary": "Rename",
                    "requestBody": _body({"type": "object", "required": ["name"], "additionalProperties": False, "properties": {"name": {"type": "string"}}}),
                    "responses": {"200": _json(_ref("Dataset")), **_errors(400, 404, 409, 415, 422)},
                },
                "delete": {"summary": "Delete with its files", "responses": {"204": {"description": "deleted"}, **_errors(404, 409)}},
            },
            "/pipelines": {
                "get": {"summary": "All pipelines", "responses": {"200": _json(_items("Pipeline"))}},
                "post": {
                    "summary": "Create a pipeline",
                    "requestBody": _body(_ref("PipelineInput")),
                    "responses": {"201": _json(_ref("Pipeline"), "created"), **_errors(400, 409, 415, 422)},
                },
            },
            "/pipelines/{pipeline_id}": {
                "parameters": [_path_id("pipeline_id")],
                "get": {"summary": "One pipeline", "responses": {"200": _json(_ref("Pipeline")), **_errors(404)}},
                "patch": {
                    "summary": "Change any of the fields",
                    "requestBody": _body(_ref("PipelineInput")),
                    "responses": {"200": _json(_ref("Pipeline")), **_errors(400, 404, 409, 415, 422)},
                },
                "delete": {"summary": "Delete", "responses": {"204": {"description": "deleted"}, **_errors(404)}},
            },
            "/activity": {
                "get": {
                    "summary": "The activity feed, newest first",
                    "parameters": [
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (default 50)"),
                        _query("before", {"type": "integer", "minimum": 1}, "id of the last item of the previous page"),
                    ],
                    "responses": {"200": _json({"type": "object"}), **_errors(400)},
                }
            },
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message", "details"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
                        }
                    },
                },
                "Health": {
                    "type": "object",
                    "properties": {
                        "status": {"enum": ["healthy", "degraded", "down"]},
                        "components": {"type": "object"},
                    },
                },
                "Event": {
                    "type": "object",
                    "required": ["seq", "epoch", "type", "ts", "data"],
                    "properties": {
                        "seq": {"type": "integer"},
                        "epoch": {"type": "string"},
                        "type": {"enum": event_types},
                        "ts": {"type": "string", "format": "date-time"},
                        "data": {"type": "object"},
                    },
                },
                "Dataset": PAYLOADS[EventType.DATASET_CREATED].model_json_schema(),
                "Pipeline": PAYLOADS[EventType.PIPELINE_CREATED].model_json_schema(),
                "PipelineInput": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "dataset_id", "target", "model"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 100},
                        "dataset_id": {"type": "integer"},
                        "target": {"type": "string", "description": "a column of the dataset"},
                        "model": {"enum": list(MODELS)},
                        "params": {"type": "object", "description": "per model: " + "; ".join(f"{m}: {', '.join(sorted(p))}" for m, p in PARAMS.items())},
                        "features": {"type": ["array", "null"], "items": {"type": "string"}},
                    },
                },
                **{f"Payload_{t.value}": PAYLOADS[t].model_json_schema() for t in EventType},
            }
        },
    }
