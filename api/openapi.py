"""The OpenAPI 3.1 document of the REST API (``GET <prefix>api/v1/openapi.json``).

Exact enough to fuzz (``tests/integration/test_fuzz_api.py``): every status an operation answers is
listed, request schemas state the bounds the handlers enforce, response schemas name every field, and
links lead from each created resource to the operations that take its id.
"""

from __future__ import annotations

import copy
from typing import Any

from api import openapi_accounts as common
from api.openapi_accounts import ID, JSON_BODY, TIME, TIME_OR_NULL, body, err, items, links, obj, ok, ref
from api.params import MAX_JSON_INT, runtime
from components.charts import CHARTS
from events.catalogue import PAYLOADS, EventType
from services.export import FORMATS
from services.pipelines import MODELS, param_schemas
from storage.models import JOB_STATUSES, MODEL_STATUSES

NAME = {"type": "string", "minLength": 1, "maxLength": 100, "description": "printable; not only spaces"}
METRICS = {"type": "object", "maxProperties": 50, "propertyNames": {"minLength": 1, "maxLength": 64},
           "additionalProperties": {"type": ["number", "null"]}}
MAX_STEP = 2**31 - 1  # training steps are 32-bit columns
FAILED_NEEDS_ERROR = {"if": {"required": ["status"], "properties": {"status": {"const": "failed"}}},
                      "then": {"required": ["error"], "properties": {"error": {"type": "string", "pattern": r"\S"}}}}
UPLOAD_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"}
# Schemathesis starts scenarios only at operations that need no id from elsewhere; it takes upload_id
# for one, so this link (from the list, which it does start at) is how scenarios reach the upload.
UPLOAD_ANOTHER = {"operationId": "uploadDataset", "description": "add a dataset to the list"}
# "last": a number and a unit, more than 0 and at most 366 days (what services.export.parse_duration
# accepts), spelled digit by digit per unit: below the maximum, the maximum itself, or a fraction of one.
_BELOW_MAX = {
    "s": (r"[1-9]\d{0,6}|[12]\d{7}|30\d{6}|31[0-5]\d{5}|316[01]\d{4}|3162[01]\d{3}|31622[0-3]\d\d", "31622400"),
    "m": (r"[1-9]\d{0,4}|[1-4]\d{5}|5[01]\d{4}|52[0-6]\d{3}|5270[0-3]\d", "527040"),
    "h": (r"[1-9]\d{0,2}|[1-7]\d{3}|8[0-6]\d\d|87[0-7]\d|878[0-3]", "8784"),
    "d": (r"[1-9]\d?|[12]\d\d|3[0-5]\d|36[0-5]", "366"),
}
LAST_PATTERN = "^(?:|" + "|".join(  # empty: the default window
    rf"(?:0*(?:{below})(?:\.\d+)?|0*{top}(?:\.0+)?|0+\.\d*[1-9]\d*){unit}" for unit, (below, top) in _BELOW_MAX.items()
) + ")$"


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or ID}


def document(server_url: str, auth_mode: str | None = None) -> dict[str, Any]:
    """The document; ``auth_mode`` ("local" or "on", default: the serving app's) says whether credentials are optional."""
    if auth_mode is None:
        auth_mode = runtime().settings.auth_mode
    schemas = {**SCHEMAS, **common.SCHEMAS}
    for kind in EventType:
        schemas.update(_payload_schemas(kind))
    paths = {**_core_paths(), **_data_paths(), **_ml_paths(), **common.paths(),
             "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                       "responses": {"200": ok({"type": "object"})}}}}
    return common.secure({
        "openapi": "3.1.0",
        "info": {"title": "MLOps Dashboard API", "version": "1"},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": schemas},
    }, auth_mode)


def _payload_schemas(kind: EventType) -> dict[str, Any]:
    """``Payload_<type>`` and what POST /events takes as its data, with pydantic's nested models hoisted
    beside them (``#/components/schemas/Column``)."""
    schema = _int64(PAYLOADS[kind].model_json_schema(ref_template="#/components/schemas/{model}"))
    nested = schema.pop("$defs", {})
    data = copy.deepcopy(schema)
    data["properties"]["posted"] = {"description": "ignored: a published event is always marked posted"}
    data["properties"]["actor"] = {"description": "ignored: the event's actor is the caller"}
    return {**nested, f"Payload_{kind.value}": schema, f"EventData_{kind.value}": data}


def _int64(schema: Any) -> Any:
    """Integers without an upper bound get the JSON bodies' (larger ones are refused: number_out_of_range)."""
    if isinstance(schema, list):
        return [_int64(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _int64(value) for key, value in schema.items()}
    kinds = out.get("type")
    if (kinds == "integer" or isinstance(kinds, list) and "integer" in kinds) and "maximum" not in out:
        out["maximum"] = MAX_JSON_INT
        out.setdefault("minimum", -MAX_JSON_INT - 1)
    return out


def _event_input(kind: EventType) -> dict[str, Any]:
    return obj({"type": {"const": kind.value}, "data": ref(f"EventData_{kind.value}")})


def _chart_params() -> list[dict[str, Any]]:
    return [
        _query("last", {"type": "string", "pattern": LAST_PATTERN},
               "time range: a number and s, m, h or d, more than 0 and at most 366d (default: the live window)"),
        _query("width", {"type": "integer", "minimum": 100, "maximum": 4000}, "image width in px"),
        _query("height", {"type": "integer", "minimum": 100, "maximum": 4000}, "image height in px"),
        _query("theme", {"enum": ["light", "dark"]}, "figure theme"),
        _query("download", {"type": "string"}, "any non-empty value: answer as an attachment"),
    ]


def _core_paths() -> dict[str, Any]:
    chart = _path("chart", {"enum": sorted(CHARTS)})
    return {
        "/health": {"get": {
            "operationId": "health", "summary": "Health of each component",
            "responses": {"200": ok(ref("Health"), "healthy or degraded"), "503": ok(ref("Health"), "down")},
        }},
        "/snapshot": {"get": {"operationId": "snapshot", "summary": "State the page renders first, at a seq",
                              "responses": {"200": ok(ref("Snapshot"))}}},
        "/events": {
            "get": {
                "operationId": "listEvents", "summary": "Replay events after a seq",
                "parameters": [
                    _query("after", {"type": "integer", "minimum": 0, "maximum": 2**62}, "last seq the caller has"),
                    _query("epoch", {"type": "string"}, "epoch of that seq"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many (default 100)"),
                ],
                "responses": {"200": ok(ref("EventPage")), **err(400, 410, 503)},
            },
            "post": {
                "operationId": "publishEvent", "summary": "Publish one event (its data is marked posted)",
                "requestBody": body({"oneOf": [_event_input(kind) for kind in EventType]}),
                "responses": {"201": ok(ref("Event"), "published"), **err(*JSON_BODY, 503)},
            },
        },
        "/charts": {"get": {"operationId": "listCharts", "summary": "The charts that can be exported",
                            "responses": {"200": ok(ref("Charts"))}}},
        "/charts/{chart}.{format}": {"get": {
            "operationId": "exportChart", "summary": "Export a chart",
            "parameters": [chart, _path("format", {"enum": sorted(FORMATS)}), *_chart_params()],
            "responses": {
                "200": {"description": "the chart", "content": {mime.split(";")[0]: {} for mime in FORMATS.values()}},
                **err(400, 404), "503": ok(ref("Error"), "image export unavailable (no Chromium)"),
            },
        }},
        "/charts/{chart}/data": {"get": {
            "operationId": "chartData", "summary": "A chart's samples (what notebooks build the same figure from)",
            # the export's other parameters are accepted (and checked) here too, though they change nothing
            "parameters": [chart, *_chart_params()],
            "responses": {"200": ok(ref("ChartData")), **err(400, 404)},
        }},
        "/activity": {"get": {
            "operationId": "listActivity", "summary": "The activity feed, newest first",
            "parameters": [
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (default 50)"),
                _query("before", ID, "id of the last item of the previous page"),
            ],
            "responses": {"200": ok(items("Activity")), **err(400)},
        }},
    }


def _data_paths() -> dict[str, Any]:
    dataset_ops = {"getDataset": "dataset_id", "renameDataset": "dataset_id", "deleteDataset": "dataset_id"}
    pipeline_ops = {"getPipeline": "pipeline_id", "updatePipeline": "pipeline_id", "deletePipeline": "pipeline_id",
                    "trainPipeline": "pipeline_id", "predictPipeline": "pipeline_id",
                    "listJobs": "pipeline_id", "listModels": "pipeline_id"}
    new_pipeline = {"operationId": "createPipeline", "description": "a pipeline named after the dataset, on its first column",
                    "requestBody": {"name": "$response.body#/name", "dataset_id": "$response.body#/id",
                                    "target": "$response.body#/columns/0/name", "features": None}}

    def new_version(pointer: str) -> dict[str, Any]:
        return {"operationId": "uploadDataset", "requestBody": {"name": f"$response.body#{pointer}"},
                "description": "the same name again: its next version"}

    upload = {"type": "object", "required": ["file"], "additionalProperties": False, "properties": {
        "file": {"type": "string", "format": "binary", "contentMediaType": "text/csv",
                 "description": "a CSV (any common delimiter and encoding) with a header row"},
        "name": {"type": "string", "maxLength": 100, "description": "default: the file name without extension"}}}
    return {
        "/datasets": {
            "get": {"operationId": "listDatasets", "summary": "All datasets (current versions)",
                    "responses": {"200": ok(items("Dataset")) | links(dataset_ops, "/items/0/id", uploadDataset=UPLOAD_ANOTHER)}},
            "post": {
                "operationId": "uploadDataset",
                "summary": "Upload a CSV (streamed); the same name again makes a new version",
                "parameters": [
                    _query("upload_id", UPLOAD_ID, "id echoed in upload_progress / upload_complete / upload_error events"),
                    {"name": "X-Upload-Id", "in": "header", "required": False, "schema": UPLOAD_ID,
                     "description": "the same as upload_id (which wins)"},
                ],
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": upload}}},
                "responses": {
                    "201": ok(ref("Dataset"), "stored")
                    | links(dataset_ops, createPipeline=new_pipeline, uploadDataset=new_version("/name")),
                    **err(400, 409, 413, 415, 422, 507),
                },
            },
        },
        "/datasets/{dataset_id}": {
            "parameters": [_path("dataset_id")],
            "get": {"operationId": "getDataset", "summary": "One dataset with its profile and versions",
                    "responses": {"200": ok(ref("DatasetDetail")), **err(404)}},
            "patch": {"operationId": "renameDataset", "summary": "Rename",
                      "requestBody": body(obj({"name": NAME})),
                      "responses": {"200": ok(ref("Dataset")), **err(*JSON_BODY, 404, 409)}},
            "delete": {"operationId": "deleteDataset", "summary": "Delete with its files (not while a pipeline uses it)",
                       "responses": {"204": {"description": "deleted"}, **err(404, 409)}},
        },
        "/pipelines": {
            "get": {"operationId": "listPipelines", "summary": "All pipelines",
                    "responses": {"200": ok(items("Pipeline")) | links(pipeline_ops, "/items/0/id")}},
            "post": {
                "operationId": "createPipeline", "summary": "Create a pipeline",
                "requestBody": body(ref("PipelineInput")),
                "responses": {"201": ok(ref("Pipeline"), "created") | links(pipeline_ops), **err(*JSON_BODY, 409)},
            },
        },
        "/pipelines/{pipeline_id}": {
            "parameters": [_path("pipeline_id")],
            "get": {"operationId": "getPipeline", "summary": "One pipeline",
                    "responses": {"200": ok(ref("Pipeline")), **err(404)}},
            "patch": {
                "operationId": "updatePipeline", "summary": "Change any of the fields",
                "requestBody": body(ref("PipelineChanges")),
                "responses": {"200": ok(ref("Pipeline")), **err(*JSON_BODY, 404, 409)},
            },
            "delete": {"operationId": "deletePipeline", "summary": "Delete with its models and jobs",
                       "responses": {"204": {"description": "deleted"}, **err(404)}},
        },
    }


def _ml_paths() -> dict[str, Any]:
    job_ops = {"getJob": "job_id", "jobProgress": "job_id", "cancelJob": "job_id"}
    run_ops = {**job_ops, "logRun": "job_id", "finishRun": "job_id"}
    model_ops = {"getModel": "model_id", "deployModel": "model_id", "predictModel": "model_id", "modelPredictions": "model_id"}
    job_id = _path("job_id", {"type": "string", "pattern": "^[0-9a-f]{32}$"})
    model_id = _path("model_id")
    predict = {
        "requestBody": body(ref("Instances")),
        # 400: a body other than {"instances": [...]}; 409: no deployed or ready model; 422: instances unlike its schema
        "responses": {"200": ok(ref("Predictions")), **err(*JSON_BODY, 404, 409)},
    }
    return {
        "/pipelines/{pipeline_id}/train": {
            "parameters": [_path("pipeline_id")],
            "post": {"operationId": "trainPipeline", "summary": "Queue a training job",
                     "responses": {"202": ok(ref("Job"), "queued") | links(job_ops), **err(404, 429, 503)}},
        },
        "/pipelines/{pipeline_id}/predict": {
            "parameters": [_path("pipeline_id")],
            "post": {"operationId": "predictPipeline", "summary": "Predict with the pipeline's deployed model", **predict},
        },
        "/jobs": {"get": {
            "operationId": "listJobs", "summary": "Training jobs and external runs, newest first",
            "parameters": [
                _query("status", {"enum": list(JOB_STATUSES)}, "only jobs in this state"),
                _query("pipeline_id", ID, "only this pipeline's jobs"),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "at most this many (default 50)"),
            ],
            "responses": {"200": ok(items("Job")), **err(400)},
        }},
        "/jobs/{job_id}": {
            "parameters": [job_id],
            "get": {"operationId": "getJob", "summary": "One job",
                    "responses": {"200": ok(ref("Job")) | links(model_ops, "/model_id"), **err(404)}},
        },
        "/jobs/{job_id}/progress": {
            "parameters": [job_id],
            "get": {"operationId": "jobProgress",
                    "summary": "The job's progress points (step, total, metrics, ts) the event log still keeps: its curves",
                    "responses": {"200": ok(ref("JobProgress")), **err(404)}},
        },
        "/jobs/{job_id}/cancel": {
            "parameters": [job_id],
            "post": {"operationId": "cancelJob", "summary": "Cancel a queued or running job",
                     "responses": {"200": ok(ref("Job")), **err(404, 409)}},
        },
        "/runs": {"post": {
            "operationId": "createRun", "summary": "Start an external run (client.run.Run does this)",
            "requestBody": body(obj({"name": NAME}, {
                "total": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_STEP},
                "params": {"type": ["object", "null"], "maxProperties": 50, "propertyNames": {"maxLength": 64},
                           "description": "shown with the run; values are numbers, booleans, null or strings (200 characters)",
                           "additionalProperties": {"type": ["number", "boolean", "null", "string"], "maxLength": 200}},
            })),
            "responses": {"201": ok(ref("Job"), "started") | links(run_ops), **err(*JSON_BODY)},
        }},
        "/runs/{job_id}/log": {
            "parameters": [job_id],
            "post": {
                "operationId": "logRun", "summary": "Report steps of an external run (steps never go back)",
                "requestBody": body(obj({"entries": {"type": "array", "minItems": 1, "maxItems": 1000, "items": obj(
                    {"step": {"type": "integer", "minimum": 0, "maximum": MAX_STEP}},
                    {"total": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_STEP},
                     "metrics": METRICS | {"type": ["object", "null"]}})}})),
                "responses": {"200": ok(obj({"accepted": {"type": "integer", "minimum": 1}})), **err(*JSON_BODY, 404, 409)},
            },
        },
        "/runs/{job_id}/finish": {
            "parameters": [job_id],
            "post": {
                "operationId": "finishRun", "summary": "Finish an external run (failed needs an error)",
                "requestBody": body(obj({}, {
                    "status": {"enum": ["succeeded", "failed"]}, "error": {"type": ["string", "null"]},
                    "metrics": METRICS | {"type": ["object", "null"]}}) | FAILED_NEEDS_ERROR, required=False),
                "responses": {"200": ok(ref("Job")), **err(*JSON_BODY, 404, 409)},
            },
        },
        "/models": {"get": {
            "operationId": "listModels", "summary": "The model registry, newest first",
            "parameters": [_query("pipeline_id", ID, "only this pipeline's versions")],
            # models are made by training, in the background: scenarios find them in the list
            "responses": {"200": ok(items("Model")) | links(model_ops, "/items/0/id"), **err(400)},
        }},
        "/models/{model_id}": {
            "parameters": [model_id],
            "get": {"operationId": "getModel", "summary": "One model version",
                    "responses": {"200": ok(ref("Model")), **err(404)}},
        },
        "/models/{model_id}/deploy": {
            "parameters": [model_id],
            "post": {"operationId": "deployModel", "summary": "Deploy this version (retires the pipeline's previous one)",
                     "responses": {"200": ok(ref("Model")), **err(404, 409)}},
        },
        "/models/{model_id}/predict": {
            "parameters": [model_id],
            "post": {"operationId": "predictModel", "summary": "Predict with this version", **predict},
        },
        "/models/{model_id}/predictions": {
            "parameters": [model_id],
            "get": {
                "operationId": "modelPredictions", "summary": "Predictions served per minute",
                "parameters": [
                    _query("minutes", {"type": "integer", "minimum": 1, "maximum": 10080}, "how far back (default 60)")],
                "responses": {"200": ok(ref("PredictionHistory")), **err(400, 404)},
            },
        },
    }


def _pipeline_schemas() -> dict[str, Any]:
    fields = {
        "name": NAME,
        "dataset_id": ID,
        "target": {"type": "string", "minLength": 1, "maxLength": 255, "description": "a column of the dataset"},
        "features": {"type": ["array", "null"], "minItems": 1, "uniqueItems": True, "items": {"type": "string"},
                     "description": "columns other than the target (null: all of them)"},
    }
    variants = [{"properties": {"model": {"const": model}, "params": params}} for model, params in param_schemas().items()]
    every = {"model": {"enum": list(MODELS)}, "params": {"type": "object", "description": "the model kind's parameters"}}
    return {
        "PipelineInput": obj({k: fields[k] for k in ("name", "dataset_id", "target")} | {"model": every["model"]},
                              {"features": fields["features"], "params": every["params"]}) | {"oneOf": variants},
        "PipelineChanges": obj({}, fields | every)
        | {"description": "params are checked against the (new or current) model kind"},
        "Pipeline": obj({"id": ID, "name": {"type": "string"}, "dataset_id": ID, "target": {"type": "string"},
                          "model": {"enum": list(MODELS)}, "params": {"type": "object"},
                          "features": {"type": ["array", "null"], "items": {"type": "string"}},
                          "created_at": TIME, "updated_at": TIME}),
    }


COLUMN = obj({"name": {"type": "string"}, "dtype": {"type": "string"}, "missing": {"type": "integer", "minimum": 0}})
DATASET = {"id": ID, "name": {"type": "string"}, "version": {"type": "integer", "minimum": 1}, "filename": {"type": "string"},
           "size_bytes": {"type": "integer", "minimum": 0}, "rows": {"type": "integer", "minimum": 0},
           "columns": {"type": "array", "items": COLUMN}, "created_at": TIME, "updated_at": TIME}
VERSION = obj({"version": {"type": "integer", "minimum": 1}, "filename": {"type": "string"}, "rows": {"type": "integer"},
                "size_bytes": {"type": "integer"}, "created_at": TIME})
JOB = {
    "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "pipeline_id": {"type": ["integer", "null"]},
    "name": {"type": ["string", "null"]}, "external": {"type": "boolean"}, "status": {"enum": list(JOB_STATUSES)},
    "progress": {"type": "number", "minimum": 0, "maximum": 1}, "step": {"type": "integer", "minimum": 0},
    "total": {"type": ["integer", "null"]}, "metrics": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
    "error": {"type": ["string", "null"]}, "model_id": {"type": ["integer", "null"]},
    "worker": {"type": ["string", "null"], "description": "host:pid of the process running it"},
    "created_at": TIME, "started_at": TIME_OR_NULL, "finished_at": TIME_OR_NULL,
}
MODEL = {
    "id": ID, "pipeline_id": ID, "pipeline_name": {"type": ["string", "null"]}, "version": {"type": "integer", "minimum": 1},
    "status": {"enum": list(MODEL_STATUSES)}, "task": {"enum": ["classification", "regression", None]},
    "metrics": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
    "schema": {"type": "array", "items": obj({"name": {"type": "string"}, "type": {"enum": ["number", "category", "boolean"]},
                                               "required": {"type": "boolean"}}, {"categories": {"type": "array"}})},
    "classes": {"type": ["array", "null"]}, "target": {"type": ["string", "null"]},
    "dropped": {"type": "object", "description": "columns left out of training -> why"},
    "predictions": {"type": "integer", "minimum": 0, "description": "served in total"},
    "endpoint": {"type": "string"}, "pipeline_endpoint": {"type": "string"},
    "created_at": TIME, "updated_at": TIME, "deployed_at": TIME_OR_NULL,
}
STATUS = {"enum": ["healthy", "degraded", "down"]}
HEALTH = {"status": STATUS, "components": {"type": "object", "additionalProperties": obj(
    {"status": STATUS, "message": {"type": "string"}})}}
LIVE_HEALTH = {"status": STATUS, "components": {"type": "object", "additionalProperties": obj(
    {"status": STATUS, "message": {"type": "string"}, "since": TIME})}}
EVENT = {"seq": {"type": "integer", "minimum": 1}, "epoch": {"type": "string"},
         "type": {"enum": [t.value for t in EventType]}, "ts": TIME, "data": {"type": "object"}}
SCHEMAS: dict[str, Any] = {
    "Health": obj(HEALTH),
    "Snapshot": obj({"epoch": {"type": "string"}, "seq": {"type": "integer", "minimum": 0},
                      "samples": {"type": "array"}, "latest_stats": {"type": ["object", "null"]},
                      "predictions": {"type": "array"}, "health": obj(LIVE_HEALTH)}),
    "Event": obj(EVENT),
    "EventPage": obj({"epoch": {"type": "string"}, "seq": {"type": "integer", "minimum": 0},
                       "next_after": {"type": "integer", "minimum": 0}, "events": {"type": "array", "items": ref("Event")}}),
    "Charts": obj({"items": {"type": "array", "items": obj({
        "name": {"enum": sorted(CHARTS)}, "title": {"type": "string"}, "fields": {"type": "array", "items": {"type": "string"}},
        "formats": {"type": "array", "items": {"enum": sorted(FORMATS)}}})}}),
    "ChartData": obj({"chart": {"enum": sorted(CHARTS)}, "fields": {"type": "array", "items": {"type": "string"}},
                       "samples": {"type": "array", "items": {"type": "object", "required": ["t", "seq"]}}}),
    "Activity": obj({"id": ID, "category": {"type": "string"}, "level": {"enum": ["info", "success", "warning", "error"]},
                      "message": {"type": "string"}, "subject_type": {"type": ["string", "null"]},
                      "subject_id": {"type": ["string", "null"]}, "created_at": TIME, "actor": {"type": ["string", "null"]}}),
    "Dataset": obj(DATASET),
    "DatasetDetail": obj(DATASET | {"profile": {"type": "object", "description": "per column: counts, range or top values"},
                                     "versions": {"type": "array", "items": VERSION}}),
    **_pipeline_schemas(),
    "Job": obj(JOB, {"params": {"type": "object", "description": "external runs: in the answer to their creation"},
                      "job_id": {"type": "string", "description": "the same as id, in the answer to POST .../train"}}),
    "JobProgress": obj({"job_id": {"type": "string"}, "items": {"type": "array", "items": obj(
        {"step": {"type": "integer"}, "total": {"type": ["integer", "null"]}, "metrics": {"type": "object"}, "ts": TIME})}}),
    "Model": obj(MODEL),
    "Predictions": obj({"predictions": {"type": "array"}, "model_id": ID, "version": {"type": "integer", "minimum": 1}},
                        {"probabilities": {"type": "array", "description": "classifiers: per instance, one number per class"},
                         "classes": {"type": "array"}}),
    "PredictionHistory": obj({"model_id": ID, "items": {"type": "array", "items": obj(
        {"minute": TIME, "count": {"type": "integer", "minimum": 0}, "latency_mean_ms": {"type": ["number", "null"]}})}}),
    "Instances": obj({"instances": {"type": "array", "minItems": 1, "maxItems": 10000, "items": {
        "type": "object", "description": "column name -> value, as the model's schema lists"}}}),
}
