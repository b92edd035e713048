"""The OpenAPI 3.1 document of the REST API (``GET <prefix>api/v1/openapi.json``).

Exact enough to fuzz (``tests/integration/test_fuzz_api.py``): every status an operation answers is
listed, request schemas state the bounds the handlers enforce, response schemas name every field, and
links lead from each created resource to the operations that take its id.
"""

from __future__ import annotations

import copy
from typing import Any

from api import openapi_accounts as common
from api import openapi_ml as ml
from api.openapi_accounts import ID, JSON_BODY, NAME, TIME, body, err, in_path, in_query, items, links, obj, ok, ref
from api.params import MAX_JSON_INT, runtime
from components.charts import CHARTS
from events.catalogue import PAYLOADS, EventType
from services.export import FORMATS
from services.pipelines import MODELS, param_schemas

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


def document(server_url: str, auth_mode: str | None = None) -> dict[str, Any]:
    """The document; ``auth_mode`` ("local" or "on", default: the serving app's) says whether credentials are optional."""
    if auth_mode is None:
        auth_mode = runtime().settings.auth_mode
    schemas = {**SCHEMAS, **ml.SCHEMAS, **common.SCHEMAS}
    for kind in EventType:
        schemas.update(_payload_schemas(kind))
    paths = {**_core_paths(), **_data_paths(), **ml.paths(), **common.paths(),
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
        in_query("last", {"type": "string", "pattern": LAST_PATTERN},
               "time range: a number and s, m, h or d, more than 0 and at most 366d (default: the live window)"),
        in_query("width", {"type": "integer", "minimum": 100, "maximum": 4000}, "image width in px"),
        in_query("height", {"type": "integer", "minimum": 100, "maximum": 4000}, "image height in px"),
        in_query("theme", {"enum": ["light", "dark"]}, "figure theme"),
        in_query("download", {"type": "string"}, "any non-empty value: answer as an attachment"),
    ]


def _core_paths() -> dict[str, Any]:
    chart = in_path("chart", {"enum": sorted(CHARTS)})
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
                    in_query("after", {"type": "integer", "minimum": 0, "maximum": 2**62}, "last seq the caller has"),
                    in_query("epoch", {"type": "string"}, "epoch of that seq"),
                    in_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many (default 100)"),
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
            "parameters": [chart, in_path("format", {"enum": sorted(FORMATS)}), *_chart_params()],
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
                in_query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (default 50)"),
                in_query("before", ID, "id of the last item of the previous page"),
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
                    in_query("upload_id", UPLOAD_ID, "id echoed in upload_progress / upload_complete / upload_error events"),
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
            "parameters": [in_path("dataset_id")],
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
            "parameters": [in_path("pipeline_id")],
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
}
