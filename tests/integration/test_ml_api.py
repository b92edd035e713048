"""Training, the model registry, deployment and serving through the real HTTP API and WebSocket.

Real scikit-learn training in worker processes on the CSVs bundled with scikit-learn.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import signal
import threading
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from ml import trainer
from tests.conftest import wait_until
from tests.integration.test_api import assert_error, call
from tests.integration.test_data_api import sklearn_csv, upload
from tests.integration.wsclient import Client
from tests.processes import AppProcess

TIMEOUT = 120  # a real training on a shared 2-core machine: generous bound, not a threshold


def diabetes_csv(tmp_path: Path) -> Path:
    """scikit-learn's diabetes data (shipped as two gzipped tables) as one CSV with a header."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    path = tmp_path / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path


def rows_of(path: Path, target: str, n: int, dialect_names: list[str] | None = None) -> tuple[list[dict], list]:
    """The first ``n`` data rows as instances (numbers as numbers) and their target values."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        names = dialect_names or header
        instances, labels = [], []
        for record in reader:
            row = dict(zip(names, record))
            labels.append(row.pop(target))
            instances.append({k: float(v) for k, v in row.items()})
            if len(instances) == n:
                break
    return instances, labels


def make_pipeline(server, csv_path: Path, model: str, params: dict | None = None, target: str = "target", name=None):
    status, dataset = upload(server, csv_path.name, csv_path.read_bytes(), name=name or csv_path.stem)
    assert status == 201, dataset
    body = {"name": name or f"{csv_path.stem}-{model}", "dataset_id": dataset["id"], "target": target, "model": model,
            "params": params or {}}
    status, pipeline = call(server, "POST", "/api/v1/pipelines", body)
    assert status == 201, pipeline
    return dataset, pipeline


def job_events(client: Client, job_id: str, timeout: float = TIMEOUT) -> list[dict]:
    """Every event until the job's training_complete or training_error (inclusive)."""
    return client.until(
        lambda e: e["type"] in ("training_complete", "training_error") and e["data"]["job_id"] == job_id, timeout=timeout
    )


def train(server, pipeline_id: int) -> str:
    status, job = call(server, "POST", f"/api/v1/pipelines/{pipeline_id}/train")
    assert status == 202, job
    assert job["status"] == "queued" and job["job_id"] == job["id"]
    return job["id"]


def wait_job(server, job_id: str, *statuses: str) -> dict:
    seen = {}

    def done():
        seen["job"] = call(server, "GET", f"/api/v1/jobs/{job_id}")[1]
        return seen["job"]["status"] in statuses

    assert wait_until(done, timeout=TIMEOUT, interval=0.1), seen
    return seen["job"]


CASES = [
    ("iris.csv", "linear", {"max_iter": 20}, "classification"),
    ("wine_data.csv", "random_forest", {"n_estimators": 40}, "classification"),
    ("breast_cancer.csv", "gradient_boosting", {"n_estimators": 30}, "classification"),
    ("diabetes", "mlp", {"max_iter": 30, "hidden_layer_sizes": [16]}, "regression"),
]


@pytest.mark.parametrize("csv_name,kind,params,task", CASES, ids=[c[0].split(".")[0] + "-" + c[1] for c in CASES])
def test_train_deploy_predict_end_to_end(live_server, tmp_path, csv_name, kind, params, task):
    path = diabetes_csv(tmp_path) if csv_name == "diabetes" else sklearn_csv(csv_name)
    dataset, pipeline = make_pipeline(live_server, path, kind, params)
    client = Client(live_server.ws_url)
    try:
        job_id = train(live_server, pipeline["id"])
        events = job_events(client, job_id)
        mine = [e for e in events if e["data"].get("job_id") == job_id]
        assert mine[-1]["type"] == "training_complete", mine[-1]
        progress = [e["data"] for e in mine if e["type"] == "training_progress"]
        assert progress[0]["stage"] == "queued"
        steps = [p["step"] for p in progress]
        fractions = [p["fraction"] for p in progress]
        assert steps == sorted(steps) and fractions == sorted(fractions), (steps, fractions)
        trained = [p for p in progress if p["stage"] == "training"]
        assert len(trained) >= 2 and trained[-1]["step"] == trained[-1]["total"] and trained[-1]["fraction"] == 1.0
        assert "loss" in trained[-1]["metrics"]
        complete = mine[-1]["data"]
        model_id = complete["model_id"]
        statuses = [(e["data"]["previous"], e["data"]["status"]) for e in events
                    if e["type"] == "model_status" and e["data"]["model_id"] == model_id]
        assert statuses == [(None, "training"), ("training", "ready")]

        job = call(live_server, "GET", f"/api/v1/jobs/{job_id}")[1]
        assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["model_id"] == model_id
        model = call(live_server, "GET", f"/api/v1/models/{model_id}")[1]
        assert model["status"] == "ready" and model["task"] == task and model["version"] == 1
        assert model["metrics"] == complete["metrics"]
        if task == "classification":
            assert 0.0 <= model["metrics"]["accuracy"] <= 1.0 and "f1" in model["metrics"]
        else:
            assert {"r2", "mae", "loss"} <= set(model["metrics"])
        assert {c["name"] for c in model["schema"]} == {c["name"] for c in dataset["columns"]} - {"target"}
        assert Path(live_server.runtime.settings.data_dir, "models", f"pipeline-{pipeline['id']}", "v1.joblib").is_file()

        status, deployed = call(live_server, "POST", f"/api/v1/models/{model_id}/deploy")
        assert status == 200 and deployed["status"] == "deployed", deployed
        event = client.until(lambda e: e["type"] == "model_deployed")[-1]["data"]
        assert event["model_id"] == model_id and event["pipeline_id"] == pipeline["id"]
        assert event["endpoint"] == f"/api/v1/pipelines/{pipeline['id']}/predict"

        names = [c["name"] for c in dataset["columns"]]
        instances, _ = rows_of(path, "target", 5, names if csv_name != "diabetes" else None)
        status, answer = call(live_server, "POST", event["endpoint"], {"instances": instances})
        assert status == 200, answer
        assert len(answer["predictions"]) == 5 and answer["model_id"] == model_id
        # The same answer as the stored artifact gives on the same rows, read by pandas directly.
        bundle = joblib.load(Path(live_server.runtime.settings.data_dir, "models", f"pipeline-{pipeline['id']}", "v1.joblib"))
        frame = pd.DataFrame(instances)[[c["name"] for c in model["schema"]]]
        direct = trainer.predict(bundle["model"], task, frame, model["classes"])
        if task == "regression":
            assert answer["predictions"] == pytest.approx(direct["predictions"])
        else:
            assert answer["predictions"] == direct["predictions"]
            np.testing.assert_allclose(answer["probabilities"], direct["probabilities"])
        if task == "classification":
            assert set(map(str, answer["predictions"])) <= set(map(str, model["classes"]))
            assert len(answer["probabilities"]) == 5
            assert all(len(p) == len(model["classes"]) and abs(sum(p) - 1) < 1e-6 for p in answer["probabilities"])
        else:
            assert all(isinstance(p, float) for p in answer["predictions"]) and "probabilities" not in answer
        volume = client.until(lambda e: e["type"] == "prediction_volume" and e["data"]["model_id"] == model_id)[-1]["data"]
        assert volume["count"] == 1 and volume["total"] == 1 and volume["latency_p50_ms"] > 0
    finally:
        client.close()


def test_classifier_learns_beyond_chance(live_server):
    """iris with a forest: accuracy must beat always answering the most common class."""
    path = sklearn_csv("iris.csv")
    _, pipeline = make_pipeline(live_server, path, "random_forest", {"n_estimators": 30})
    job = wait_job(live_server, train(live_server, pipeline["id"]), "succeeded", "failed")
    assert job["status"] == "succeeded", job
    chance = 50 / 150  # iris holds three classes of 50 rows each
    assert job["metrics"]["accuracy"] > chance + 0.3


def test_training_errors_are_sentences(live_server, tmp_path):
    one_class = tmp_path / "one_class.csv"
    one_class.write_text("a,b,label\n" + "".join(f"{i},{i * 2},yes\n" for i in range(40)))
    _, pipeline = make_pipeline(live_server, one_class, "linear", target="label")
    client = Client(live_server.ws_url)
    try:
        job_id = train(live_server, pipeline["id"])
        error = job_events(client, job_id)[-1]
    finally:
        client.close()
    assert error["type"] == "training_error" and error["data"]["code"] == "one_class"
    assert "label" in error["data"]["error"] and "yes" in error["data"]["error"]
    job = call(live_server, "GET", f"/api/v1/jobs/{job_id}")[1]
    assert job["status"] == "failed" and job["error"] == error["data"]["error"]
    model = call(live_server, "GET", f"/api/v1/models/{job['model_id']}")[1]
    assert model["status"] == "failed"
    assert_error(call(live_server, "POST", f"/api/v1/models/{model['id']}/deploy"), 409, "not_deployable")
    assert_error(call(live_server, "POST", f"/api/v1/models/{model['id']}/predict", {"instances": [{"a": 1, "b": 2}]}),
                 409, "model_not_servable")


def test_api_errors(live_server):
    assert_error(call(live_server, "POST", "/api/v1/pipelines/999/train"), 404, "pipeline_not_found")
    assert_error(call(live_server, "GET", "/api/v1/jobs/" + "0" * 32), 404, "job_not_found")
    assert_error(call(live_server, "POST", "/api/v1/jobs/" + "0" * 32 + "/cancel"), 404, "job_not_found")
    assert_error(call(live_server, "GET", "/api/v1/jobs/short"), 404, "not_found")
    assert_error(call(live_server, "GET", "/api/v1/jobs?status=sleeping"), 400, "invalid_parameter")
    assert_error(call(live_server, "GET", "/api/v1/models/5"), 404, "model_not_found")
    assert_error(call(live_server, "POST", "/api/v1/models/5/deploy"), 404, "model_not_found")
    assert_error(call(live_server, "POST", "/api/v1/models/5/predict", {"instances": [{}]}), 404, "model_not_found")
    assert_error(call(live_server, "POST", "/api/v1/pipelines/5/predict", {"instances": [{}]}), 404, "pipeline_not_found")
    assert_error(call(live_server, "GET", "/api/v1/models/5/predictions"), 404, "model_not_found")
    assert call(live_server, "GET", "/api/v1/models")[1] == {"items": []}
    assert call(live_server, "GET", "/api/v1/jobs")[1] == {"items": []}


def test_predict_validates_columns_and_types(live_server):
    path = sklearn_csv("iris.csv")
    dataset, pipeline = make_pipeline(live_server, path, "linear", {"max_iter": 5})
    assert_error(call(live_server, "POST", f"/api/v1/pipelines/{pipeline['id']}/predict", {"instances": [{}]}), 409, "not_deployed")
    job = wait_job(live_server, train(live_server, pipeline["id"]), "succeeded", "failed")
    model_id = job["model_id"]
    names = [c["name"] for c in dataset["columns"] if c["name"] != "target"]
    good = {name: 1.0 for name in names}
    url = f"/api/v1/models/{model_id}/predict"
    assert call(live_server, "POST", url, {"instances": [good]})[0] == 200

    status, body = call(live_server, "POST", url, {"instances": [good, {**good, names[1]: "tall"}]})
    assert status == 422 and body["error"]["code"] == "invalid_instances"
    assert names[1] in body["error"]["message"] and "tall" in body["error"]["message"]

    status, body = call(live_server, "POST", url, {"instances": [{**good, "colour": "red"}]})
    assert status == 422 and "colour" in body["error"]["message"]
    missing = dict(good)
    del missing[names[0]]
    status, body = call(live_server, "POST", url, {"instances": [missing]})
    assert status == 422 and names[0] in body["error"]["message"]
    assert_error(call(live_server, "POST", url, {"rows": [good]}), 400, "invalid_body")
    assert_error(call(live_server, "POST", url, {"instances": []}), 422, "invalid_instances")
    assert_error(call(live_server, "POST", url, b"{not json", "application/json"), 400, "invalid_json")


def slow_pipeline(server, name="slow"):
    """A training that takes a while: many epochs of an MLP on breast_cancer."""
    return make_pipeline(server, sklearn_csv("breast_cancer.csv"), "mlp",
                         {"max_iter": 5000, "hidden_layer_sizes": [256, 256]}, name=name)[1]


def running_process(server, job_id: str):
    box = {}

    def started():
        job = server.runtime.training._jobs.get(job_id)
        box["p"] = job.process if job is not None else None
        return box["p"] is not None and box["p"].pid is not None and call(server, "GET", f"/api/v1/jobs/{job_id}")[1]["step"] > 0

    assert wait_until(started, timeout=TIMEOUT, interval=0.1)
    return box["p"]


def test_a_killed_worker_becomes_a_training_error(live_server):
    pipeline = slow_pipeline(live_server)
    client = Client(live_server.ws_url)
    try:
        job_id = train(live_server, pipeline["id"])
        process = running_process(live_server, job_id)
        os.kill(process.pid, signal.SIGKILL)
        error = job_events(client, job_id)[-1]
    finally:
        client.close()
    assert error["type"] == "training_error" and error["data"]["code"] == "worker_died"
    assert "SIGKILL" in error["data"]["error"]
    job = call(live_server, "GET", f"/api/v1/jobs/{job_id}")[1]
    assert job["status"] == "failed" and "SIGKILL" in job["error"]
    assert call(live_server, "GET", f"/api/v1/models/{job['model_id']}")[1]["status"] == "failed"


def test_cancel_running_and_queued_jobs(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, training_workers=1))
    pipeline = slow_pipeline(server)
    client = Client(server.ws_url)
    try:
        first = train(server, pipeline["id"])
        second = train(server, pipeline["id"])
        process = running_process(server, first)
        assert call(server, "GET", f"/api/v1/jobs/{second}")[1]["status"] == "queued"  # one worker: it waits

        status, cancelled = call(server, "POST", f"/api/v1/jobs/{second}/cancel")
        assert status == 200 and cancelled["status"] == "cancelled"
        assert job_events(client, second)[-1]["data"]["code"] == "cancelled"

        status, _ = call(server, "POST", f"/api/v1/jobs/{first}/cancel")
        assert status == 200
        error = job_events(client, first)[-1]
        assert error["type"] == "training_error" and error["data"]["code"] == "cancelled"
        assert wait_until(lambda: not process.is_alive(), timeout=10)
    finally:
        client.close()
    assert call(server, "GET", f"/api/v1/jobs/{first}")[1]["status"] == "cancelled"
    assert_error(call(server, "POST", f"/api/v1/jobs/{first}/cancel"), 409, "job_finished")
    # the queued job never started: no model version was made for it
    versions = call(server, "GET", f"/api/v1/models?pipeline_id={pipeline['id']}")[1]["items"]
    assert [m["status"] for m in versions] == ["failed"]


def test_switching_versions_never_fails_a_prediction(live_server):
    path = sklearn_csv("iris.csv")
    dataset, pipeline = make_pipeline(live_server, path, "random_forest", {"n_estimators": 10})
    first = wait_job(live_server, train(live_server, pipeline["id"]), "succeeded")
    assert call(live_server, "POST", f"/api/v1/models/{first['model_id']}/deploy")[0] == 200
    second = wait_job(live_server, train(live_server, pipeline["id"]), "succeeded")
    names = [c["name"] for c in dataset["columns"]]
    instances, _ = rows_of(path, "target", 1, names)
    answers: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            status, body = call(live_server, "POST", f"/api/v1/pipelines/{pipeline['id']}/predict", {"instances": instances})
            answers.append((status, body.get("version") if status == 200 else None))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        assert wait_until(lambda: len(answers) >= 20, timeout=30)
        status, deployed = call(live_server, "POST", f"/api/v1/models/{second['model_id']}/deploy")
        assert status == 200 and deployed["version"] == 2
        count = len(answers)
        assert wait_until(lambda: len(answers) >= count + 20, timeout=30)
    finally:
        stop.set()
        thread.join()
    assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:3]
    versions = [v for _, v in answers]
    switch = versions.index(2)
    assert set(versions[:switch]) == {1} and set(versions[switch:]) == {2}  # never back to the old one
    retired = call(live_server, "GET", f"/api/v1/models/{first['model_id']}")[1]
    assert retired["status"] == "retired"
    live_server.runtime.serving.flush()
    history = call(live_server, "GET", f"/api/v1/models/{second['model_id']}/predictions")[1]["items"]
    assert sum(row["count"] for row in history) == versions.count(2)


def test_restart_fails_the_jobs_it_left_running(tmp_path):
    first = AppProcess(tmp_path, "ml", MLOPS_BACKGROUND="false")
    try:
        pipeline = slow_pipeline(first)
        job_id = train(first, pipeline["id"])
        assert wait_until(lambda: call(first, "GET", f"/api/v1/jobs/{job_id}")[1]["step"] > 0, timeout=TIMEOUT, interval=0.2)
        first.proc.send_signal(signal.SIGKILL)  # a crash: no chance to clean up
        first.proc.wait(timeout=10)
    finally:
        first.stop()
    second = AppProcess(tmp_path, "ml", port=first.port, MLOPS_BACKGROUND="false")
    try:
        job = call(second, "GET", f"/api/v1/jobs/{job_id}")[1]
        assert job["status"] == "failed" and "stopped" in job["error"], job
        assert call(second, "GET", f"/api/v1/models/{job['model_id']}")[1]["status"] == "failed"
        feed = call(second, "GET", "/api/v1/activity?limit=5")[1]["items"]
        assert any(job["error"] in item["message"] for item in feed)
    finally:
        second.stop()


def test_external_run_api_validates(live_server):
    assert_error(call(live_server, "POST", "/api/v1/runs", {"name": ""}), 422, "validation_failed")
    assert_error(call(live_server, "POST", "/api/v1/runs", {"name": "x", "gpu": True}), 400, "unknown_fields")
    status, run = call(live_server, "POST", "/api/v1/runs", {"name": "resnet", "total": 4, "params": {"lr": 0.1}})
    assert status == 201 and run["status"] == "running" and run["external"] is True
    url = f"/api/v1/runs/{run['id']}"
    assert_error(call(live_server, "POST", url + "/log", {"entries": [{"step": 2}, {"step": 1}]}), 422, "validation_failed")
    assert_error(call(live_server, "POST", url + "/log", {"entries": [{"step": 1, "metrics": {"loss": "low"}}]}),
                 422, "validation_failed")
    assert call(live_server, "POST", url + "/log", {"entries": [{"step": 1, "metrics": {"loss": 0.9}},
                                                                {"step": 2, "metrics": {"loss": 0.5}}]})[1] == {"accepted": 2}
    job = call(live_server, "GET", f"/api/v1/jobs/{run['id']}")[1]
    assert job["step"] == 2 and job["progress"] == 0.5 and job["metrics"] == {"loss": 0.5}
    assert_error(call(live_server, "POST", f"/api/v1/jobs/{run['id']}/cancel"), 409, "external_run")
    assert_error(call(live_server, "POST", url + "/finish", {"status": "failed"}), 422, "validation_failed")
    assert call(live_server, "POST", url + "/finish", {"status": "failed", "error": "CUDA out of memory"})[0] == 200
    assert_error(call(live_server, "POST", url + "/log", {"entries": [{"step": 3}]}), 409, "run_finished")
    assert call(live_server, "GET", f"/api/v1/jobs/{run['id']}")[1]["error"] == "CUDA out of memory"


def test_stopping_the_server_fails_its_running_job_with_that_reason(make_live_server, settings):
    server = make_live_server(settings)
    pipeline = slow_pipeline(server)
    client = Client(server.ws_url)
    try:
        job_id = train(server, pipeline["id"])
        process = running_process(server, job_id)
        server.runtime.training.stop()  # what runtime.stop() does first on a graceful shutdown
        error = job_events(client, job_id)[-1]
    finally:
        client.close()
    assert error["type"] == "training_error" and error["data"]["code"] == "server_stopped"
    assert not process.is_alive()
    job = server.runtime.training.get_job(job_id)
    assert job["status"] == "failed" and "server stopped" in job["error"]


def test_an_external_batch_gives_the_curve_several_points(live_server):
    status, run = call(live_server, "POST", "/api/v1/runs", {"name": "batched", "total": 20})
    assert status == 201
    client = Client(live_server.ws_url)
    try:
        entries = [{"step": i, "metrics": {"loss": 1.0 / i}} for i in range(1, 21)]
        assert call(live_server, "POST", f"/api/v1/runs/{run['id']}/log", {"entries": entries})[0] == 200
        events = client.until(lambda e: e["type"] == "training_progress" and e["data"]["step"] == 20)
    finally:
        client.close()
    steps = [e["data"]["step"] for e in events if e["type"] == "training_progress" and e["data"]["job_id"] == run["id"]]
    assert len(steps) == 10 and steps == sorted(set(steps)) and steps[0] == 1 and steps[-1] == 20
    losses = [e["data"]["metrics"]["loss"] for e in events if e["type"] == "training_progress" and e["data"]["step"] > 0]
    assert losses == sorted(losses, reverse=True)  # each point carries its own step's metrics


def test_recover_fails_jobs_no_process_looks_after(live_server):
    """Jobs of an earlier process with this pid, and this process's own unsupervised ones, are not left running."""
    import socket as _socket

    from storage.models import TrainingJob

    path = sklearn_csv("iris.csv")
    _, pipeline = make_pipeline(live_server, path, "linear", {"max_iter": 5})
    training = live_server.runtime.training
    earlier = f"{_socket.gethostname()}:{os.getpid()}:00000000"  # same host and pid, another incarnation
    with live_server.runtime.db.session() as session:
        session.add_all([
            TrainingJob(id="a" * 32, pipeline_id=pipeline["id"], name="was running", status="running", worker=earlier),
            TrainingJob(id="b" * 32, pipeline_id=pipeline["id"], name="own, unsupervised", status="running",
                        worker=training.worker_id),
            TrainingJob(id="c" * 32, pipeline_id=pipeline["id"], name="was queued", status="queued", worker=earlier),
        ])
    client = Client(live_server.ws_url)
    try:
        training.recover()
        errors = client.until(lambda e: e["type"] == "training_error" and e["data"]["job_id"] == "b" * 32)
    finally:
        client.close()
    assert {e["data"]["job_id"] for e in errors if e["type"] == "training_error"} >= {"a" * 32, "b" * 32}
    for job_id in ("a" * 32, "b" * 32):
        job = call(live_server, "GET", f"/api/v1/jobs/{job_id}")[1]
        assert job["status"] == "failed" and "stopped" in job["error"]
    adopted = wait_job(live_server, "c" * 32, "succeeded", "failed")  # adopted and trained here
    assert adopted["status"] == "succeeded" and adopted["worker"] == training.worker_id


def test_out_of_range_values_are_client_errors(live_server):
    path = sklearn_csv("breast_cancer.csv")
    dataset, pipeline = make_pipeline(live_server, path, "random_forest", {"n_estimators": 5})
    model_id = wait_job(live_server, train(live_server, pipeline["id"]), "succeeded")["model_id"]
    names = [c["name"] for c in dataset["columns"] if c["name"] != "target"]
    row = {name: 1.0 for name in names} | {names[0]: 1e300}  # finite in JSON, too large for the trees' float32
    status, body = call(live_server, "POST", f"/api/v1/models/{model_id}/predict", {"instances": [row]})
    assert status == 422 and body["error"]["code"] == "invalid_instances", body
    status, run = call(live_server, "POST", "/api/v1/runs", {"name": "tokens"})
    assert_error(call(live_server, "POST", f"/api/v1/runs/{run['id']}/log", {"entries": [{"step": 2**31}]}),
                 422, "validation_failed")
    assert_error(call(live_server, "POST", "/api/v1/runs", {"name": "big", "params": {"notes": "x" * 100_000}}),
                 422, "validation_failed")
    assert_error(call(live_server, "POST", f"/api/v1/runs/{run['id']}/log",
                      {"entries": [{"step": 1, "metrics": {"loss": 10**400}}]}), 422, "number_out_of_range")
    status, _ = call(live_server, "POST", f"/api/v1/runs/{run['id']}/log",
                     b'{"entries": [{"step": 1, "metrics": {"loss": 1e400}}]}')  # valid JSON, beyond a double
    assert status == 200
    assert call(live_server, "GET", f"/api/v1/jobs/{run['id']}")[1]["metrics"] == {"loss": None}


def test_a_jobs_progress_points_can_be_read_back(live_server):
    _, pipeline = make_pipeline(live_server, sklearn_csv("wine_data.csv"), "random_forest", {"n_estimators": 40})
    job = wait_job(live_server, train(live_server, pipeline["id"]), "succeeded")
    status, body = call(live_server, "GET", f"/api/v1/jobs/{job['id']}/progress")
    assert status == 200 and body["job_id"] == job["id"]
    steps = [item["step"] for item in body["items"]]
    assert steps == sorted(set(steps)) and steps[-1] == body["items"][-1]["total"]  # one point per step
    assert body["items"][-1]["metrics"] == job["metrics"]  # the last point is the final held-out score
    assert_error(call(live_server, "GET", "/api/v1/jobs/" + "0" * 32 + "/progress"), 404, "job_not_found")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_runs_refuse_wrong_types_and_text_a_database_cannot_store(request, settings, database):
    if database == "postgresql":  # where NUL in text was a 500 (psycopg.DataError)
        settings = dataclasses.replace(settings, database_url=request.getfixturevalue("postgres_url"))
    server = request.getfixturevalue("make_live_server")(settings)  # stopped before its database is dropped
    for body in ({"name": "r", "params": False}, {"name": "r", "params": 0}, {"name": "r", "params": []},
                 {"name": "x", "params": {"k\u0000": True}}, {"name": "x", "params": {"": 1}},
                 {"name": "x", "params": {"k": "v\u0000"}}, {"name": "x", "params": {"k": "\ud800"}}):
        status, error = call(server, "POST", "/api/v1/runs", body)
        assert_error((status, error), 422, "validation_failed")
        assert "params" in error["error"]["details"], error
    status, run = call(server, "POST", "/api/v1/runs", {"name": "r", "params": None})
    assert status == 201 and run["params"] == {}
    url = f"/api/v1/runs/{run['id']}"
    for entry in ({"step": 1, "metrics": False}, {"step": 1, "metrics": {"loss\u0000": 1.0}}):
        assert_error(call(server, "POST", url + "/log", {"entries": [entry]}), 422, "validation_failed")
    for body in ({"error": 2423}, {"status": "succeeded", "error": False}, {"metrics": False},
                 {"metrics": {"\u202eloss": 1.0}}, {"metrics": {"loss\u0000": 1.0}}):
        status, error = call(server, "POST", url + "/finish", body)
        assert_error((status, error), 422, "validation_failed")
        assert set(error["error"]["details"]) == set(body) - {"status"}, error
    assert call(server, "GET", f"/api/v1/jobs/{run['id']}")[1]["status"] == "running"  # none of them finished it
    # An error text is reported as it is, newlines and all; what no database can hold becomes U+FFFD.
    status, job = call(server, "POST", url + "/finish", {"status": "failed", "error": "3\u00003W\ud800\nTraceback"})
    assert status == 200 and job["error"] == "3\ufffd3W\ufffd\nTraceback", job
    assert call(server, "GET", f"/api/v1/jobs/{run['id']}")[1]["error"] == "3\ufffd3W\ufffd\nTraceback"
