"""Training jobs, external runs, the model registry, deployment and prediction serving."""

from __future__ import annotations

from flask import Blueprint, jsonify

from api.errors import ApiError
from api.params import MAX_ID, id_param, int_param, json_body, optional_json_body, query_param, runtime
from storage.models import JOB_STATUSES

JOB_ID = "<string(length=32):job_id>"


def register(bp: Blueprint) -> None:
    @bp.post(f"/pipelines/<int(max={MAX_ID}):pipeline_id>/train")
    def train(pipeline_id: int):
        job = runtime().training.submit(pipeline_id)
        return jsonify(job | {"job_id": job["id"]}), 202

    @bp.get("/jobs")
    def list_jobs():
        status = query_param("status") or None
        if status is not None and status not in JOB_STATUSES:
            raise ApiError(f"status must be one of {', '.join(JOB_STATUSES)}", code="invalid_parameter",
                           details={"status": status})
        pipeline_id = id_param("pipeline_id")
        limit = int_param("limit", 50, minimum=1, maximum=500)
        return jsonify({"items": runtime().training.list_jobs(limit=limit, pipeline_id=pipeline_id, status=status)})

    @bp.get(f"/jobs/{JOB_ID}")
    def get_job(job_id: str):
        return jsonify(runtime().training.get_job(job_id))

    @bp.get(f"/jobs/{JOB_ID}/progress")
    def job_progress(job_id: str):
        return jsonify({"job_id": job_id, "items": runtime().training.progress_history(job_id)})

    @bp.post(f"/jobs/{JOB_ID}/cancel")
    def cancel_job(job_id: str):
        return jsonify(runtime().training.cancel(job_id))

    @bp.post("/runs")
    def create_run():
        return jsonify(runtime().training.create_run(json_body())), 201

    @bp.post(f"/runs/{JOB_ID}/log")
    def log_run(job_id: str):
        return jsonify(runtime().training.log_run(job_id, json_body()))

    @bp.post(f"/runs/{JOB_ID}/finish")
    def finish_run(job_id: str):
        return jsonify(runtime().training.finish_run(job_id, optional_json_body()))

    @bp.get("/models")
    def list_models():
        return jsonify({"items": runtime().registry.list_models(id_param("pipeline_id"))})

    @bp.get(f"/models/<int(max={MAX_ID}):model_id>")
    def get_model(model_id: int):
        return jsonify(runtime().registry.get_model(model_id))

    @bp.post(f"/models/<int(max={MAX_ID}):model_id>/deploy")
    def deploy_model(model_id: int):
        return jsonify(runtime().registry.deploy(model_id))

    @bp.post(f"/models/<int(max={MAX_ID}):model_id>/undeploy")
    def undeploy_model(model_id: int):
        return jsonify(runtime().registry.undeploy(model_id))

    @bp.post(f"/models/<int(max={MAX_ID}):model_id>/predict")
    def predict_model(model_id: int):
        return jsonify(runtime().serving.predict_model(model_id, json_body()))

    @bp.post(f"/pipelines/<int(max={MAX_ID}):pipeline_id>/predict")
    def predict_pipeline(pipeline_id: int):
        return jsonify(runtime().serving.predict_pipeline(pipeline_id, json_body()))

    @bp.get(f"/models/<int(max={MAX_ID}):model_id>/predictions")
    def prediction_history(model_id: int):
        minutes = int_param("minutes", 60, minimum=1, maximum=7 * 24 * 60)
        return jsonify({"model_id": model_id, "items": runtime().serving.history(model_id, minutes)})
