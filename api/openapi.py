"""The OpenAPI 3.1 document of the REST API (``GET <prefix>api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from api import openapi_accounts
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
    return openapi_accounts.secure({
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
            **_ml_paths(),
            **openapi_accounts.paths(),
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
                **ML_SCHEMAS,
                **openapi_accounts.SCHEMAS,
                **{f"Payload_{t.value}": PAYLOADS[t].model_json_schema() for t in EventType},
            }
        },
    })


def _job_id(name: str = "job_id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}


METRICS = {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
INSTANCES = {
    "type": "object",
    "required": ["instances"],
    "additionalProperties": False,
    "properties": {
        "instances": {
            "type": "array", "minItems": 1, "maxItems": 10000,
            "items": {"type": "object", "description": "column name -> value, as the model's schema lists"},
        }
    },
}
ML_SCHEMAS: dict[str, Any] = {
    "Job": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "pipeline_id": {"type": ["integer", "null"]},
            "name": {"type": ["string", "null"]},
            "external": {"type": "boolean"},
            "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "step": {"type": "integer"},
            "total": {"type": ["integer", "null"]},
            "metrics": METRICS,
            "error": {"type": ["string", "null"]},
            "model_id": {"type": ["integer", "null"]},
            "worker": {"type": ["string", "null"], "description": "host:pid of the process running it"},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Model": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "pipeline_id": {"type": "integer"},
            "pipeline_name": {"type": ["string", "null"]},
            "version": {"type": "integer"},
            "status": {"enum": ["training", "ready", "deploying", "deployed", "retired", "failed"]},
            "task": {"enum": ["classification", "regression", None]},
            "metrics": METRICS,
            "schema": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "type": {"enum": ["number", "category", "boolean"]}, "required": {"type": "boolean"}}}},
            "classes": {"type": ["array", "null"]},
            "target": {"type": ["string", "null"]},
            "dropped": {"type": "object", "description": "columns left out of training -> why"},
            "predictions": {"type": "integer", "description": "served in total"},
            "endpoint": {"type": "string"},
            "pipeline_endpoint": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "deployed_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Predictions": {
        "type": "object",
        "properties": {
            "predictions": {"type": "array"},
            "probabilities": {"type": "array", "description": "classifiers: per instance, one number per class"},
            "classes": {"type": "array"},
            "model_id": {"type": "integer"},
            "version": {"type": "integer"},
        },
    },
    "Instances": INSTANCES,
}


def _ml_paths() -> dict[str, Any]:
    predict = {
        "requestBody": _body(_ref("Instances")),
        "responses": {"200": _json(_ref("Predictions")), **_errors(400, 404, 409, 413, 415, 422)},
    }
    return {
        "/pipelines/{pipeline_id}/train": {
            "parameters": [_path_id("pipeline_id")],
            "post": {"summary": "Queue a training job", "responses": {"202": _json(_ref("Job"), "queued"), **_errors(404, 429, 503)}},
        },
        "/pipelines/{pipeline_id}/predict": {
            "parameters": [_path_id("pipeline_id")],
            "post": {"summary": "Predict with the pipeline's deployed model", **predict},
        },
        "/jobs": {
            "get": {
                "summary": "Training jobs and external runs, newest first",
                "parameters": [
                    _query("status", {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]}, "only jobs in this state"),
                    _query("pipeline_id", {"type": "integer", "minimum": 1}, "only this pipeline's jobs"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "at most this many (default 50)"),
                ],
                "responses": {"200": _json(_items("Job")), **_errors(400)},
            }
        },
        "/jobs/{job_id}": {
            "parameters": [_job_id()],
            "get": {"summary": "One job", "responses": {"200": _json(_ref("Job")), **_errors(404)}},
        },
        "/jobs/{job_id}/progress": {
            "parameters": [_job_id()],
            "get": {
                "summary": "The job's progress points (step, total, metrics, ts) the event log still keeps: its curves",
                "responses": {"200": _json({"type": "object"}), **_errors(404)},
            },
        },
        "/jobs/{job_id}/cancel": {
            "parameters": [_job_id()],
            "post": {"summary": "Cancel a queued or running job", "responses": {"200": _json(_ref("Job")), **_errors(404, 409)}},
        },
        "/runs": {
            "post": {
                "summary": "Start an external run (client.run.Run does this)",
                "requestBody": _body({"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "total": {"type": ["integer", "null"], "minimum": 1},
                    "params": {"type": "object"}}}),
                "responses": {"201": _json(_ref("Job"), "started"), **_errors(400, 415, 422)},
            }
        },
        "/runs/{job_id}/log": {
            "parameters": [_job_id()],
            "post": {
                "summary": "Report steps of an external run",
                "requestBody": _body({"type": "object", "required": ["entries"], "additionalProperties": False, "properties": {
                    "entries": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
                        "type": "object", "required": ["step"], "additionalProperties": False, "properties": {
                            "step": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 1},
                            "metrics": METRICS}}}}}),
                "responses": {"200": _json({"type": "object", "properties": {"accepted": {"type": "integer"}}}),
                              **_errors(400, 404, 409, 415, 422)},
            },
        },
        "/runs/{job_id}/finish": {
            "parameters": [_job_id()],
            "post": {
                "summary": "Finish an external run",
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "properties": {
                        "status": {"enum": ["succeeded", "failed"]}, "error": {"type": "string"}, "metrics": METRICS}}}}},
                "responses": {"200": _json(_ref("Job")), **_errors(400, 404, 409, 415, 422)},
            },
        },
        "/models": {
            "get": {
                "summary": "The model registry, newest first",
                "parameters": [_query("pipeline_id", {"type": "integer", "minimum": 1}, "only this pipeline's versions")],
                "responses": {"200": _json(_items("Model")), **_errors(400)},
            }
        },
        "/models/{model_id}": {
            "parameters": [_path_id("model_id")],
            "get": {"summary": "One model version", "responses": {"200": _json(_ref("Model")), **_errors(404)}},
        },
        "/models/{model_id}/deploy": {
            "parameters": [_path_id("model_id")],
            "post": {"summary": "Deploy this version (retires the pipeline's previous one)",
                     "responses": {"200": _json(_ref("Model")), **_errors(404, 409)}},
        },
        "/models/{model_id}/predict": {
            "parameters": [_path_id("model_id")],
            "post": {"summary": "Predict with this version", **predict},
        },
        "/models/{model_id}/predictions": {
            "parameters": [_path_id("model_id")],
            "get": {
                "summary": "Predictions served per minute",
                "parameters": [_query("minutes", {"type": "integer", "minimum": 1, "maximum": 10080}, "how far back (default 60)")],
                "responses": {"200": _json({"type": "object"}), **_errors(400, 404)},
            },
        },
    }
