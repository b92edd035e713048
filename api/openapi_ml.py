"""The OpenAPI paths and schemas of training jobs, external runs, the model registry and serving
(``api.openapi`` assembles the document)."""

from __future__ import annotations

from typing import Any

from api.openapi_accounts import (ID, JSON_BODY, NAME, TIME, TIME_OR_NULL, body, err, in_path, in_query, items, links,
                                  obj, ok, ref)
from storage.models import JOB_STATUSES, MODEL_STATUSES

METRICS = {"type": "object", "maxProperties": 50, "propertyNames": {"minLength": 1, "maxLength": 64},
           "additionalProperties": {"type": ["number", "null"]}}
MAX_STEP = 2**31 - 1  # training steps are 32-bit columns
FAILED_NEEDS_ERROR = {"if": {"required": ["status"], "properties": {"status": {"const": "failed"}}},
                      "then": {"required": ["error"], "properties": {"error": {"type": "string", "pattern": r"\S"}}}}


def paths() -> dict[str, Any]:
    job_ops = {"getJob": "job_id", "jobProgress": "job_id", "cancelJob": "job_id"}
    run_ops = {**job_ops, "logRun": "job_id", "finishRun": "job_id"}
    model_ops = {"getModel": "model_id", "deployModel": "model_id", "undeployModel": "model_id",
                 "predictModel": "model_id", "modelPredictions": "model_id"}
    job_id = in_path("job_id", {"type": "string", "pattern": "^[0-9a-f]{32}$"})
    model_id = in_path("model_id")
    predict = {
        "requestBody": body(ref("Instances")),
        # 400: a body other than {"instances": [...]}; 409: no deployed or ready model; 422: instances unlike its schema
        "responses": {"200": ok(ref("Predictions")), **err(*JSON_BODY, 404, 409)},
    }
    return {
        "/pipelines/{pipeline_id}/train": {
            "parameters": [in_path("pipeline_id")],
            "post": {"operationId": "trainPipeline", "summary": "Queue a training job",
                     "responses": {"202": ok(ref("Job"), "queued") | links(job_ops), **err(404, 429, 503)}},
        },
        "/pipelines/{pipeline_id}/predict": {
            "parameters": [in_path("pipeline_id")],
            "post": {"operationId": "predictPipeline", "summary": "Predict with the pipeline's deployed model", **predict},
        },
        "/jobs": {"get": {
            "operationId": "listJobs", "summary": "Training jobs and external runs, newest first",
            "parameters": [
                in_query("status", {"enum": list(JOB_STATUSES)}, "only jobs in this state"),
                in_query("pipeline_id", ID, "only this pipeline's jobs"),
                in_query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "at most this many (default 50)"),
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
            "parameters": [in_query("pipeline_id", ID, "only this pipeline's versions")],
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
        "/models/{model_id}/undeploy": {
            "parameters": [model_id],
            "post": {"operationId": "undeployModel",
                     "summary": "Stop serving this version (retired): the pipeline's endpoint answers 409 until one is deployed",
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
                    in_query("minutes", {"type": "integer", "minimum": 1, "maximum": 10080}, "how far back (default 60)")],
                "responses": {"200": ok(ref("PredictionHistory")), **err(400, 404)},
            },
        },
    }


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
SCHEMAS: dict[str, Any] = {
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
