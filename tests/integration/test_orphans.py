"""Nothing outlives what owns it: training processes, model artifacts, served models, row ids.

Real servers (``python app.py``), real ``kill -9``, real training in worker processes, real files.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from sqlalchemy import delete

from events.serialize import parse_iso
from storage import Activity, Alert, Database, Dataset, DatasetVersion, Model, Pipeline
from storage.models import ApiToken, ShareLink, User, utc_now
from tests.conftest import wait_until
from tests.integration.test_api import assert_error, call
from tests.integration.test_data_api import sklearn_csv
from tests.integration.test_ml_api import TIMEOUT, job_events, make_pipeline, rows_of, train, wait_job
from tests.integration.wsclient import Client
from tests.processes import AppProcess

GONE_WITHIN_S = 5.0  # a stage of the slow forest takes ~10 s, so survivors would be seen; the time taken is printed
SLOW_FOREST = {"n_estimators": 2000, "max_depth": 12}  # 20 stages of 100 trees, ~10 s each on big_csv


def big_csv(tmp_path: Path, rows: int = 40_000, columns: int = 20) -> Path:
    """A synthetic binary classification CSV on which one tree takes ~0.1 s: a forest stage is slow."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(rows, columns)).round(4)
    target = (features[:, :5].sum(axis=1) + rng.normal(size=rows) > 0).astype(int)
    path = tmp_path / "big.csv"
    header = ",".join([f"x{i}" for i in range(columns)] + ["target"])
    np.savetxt(path, np.column_stack([features, target]), delimiter=",", header=header, comments="", fmt="%.4f")
    return path


def training_tree(server_pid: int) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The server's descendants, and among them the training children (the fork server's children)."""
    descendants = psutil.Process(server_pid).children(recursive=True)
    forkservers = [p for p in descendants if p.ppid() == server_pid and "forkserver" in " ".join(p.cmdline())]
    return descendants, [p for p in descendants if any(p.ppid() == f.pid for f in forkservers)]


def busy(process: psutil.Process, cpu_s: float) -> bool:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return False
    return times.user + times.system >= cpu_s


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_killed_server_takes_its_training_processes_with_it(tmp_path):
    app = AppProcess(tmp_path, "killed", MLOPS_BACKGROUND="false")
    try:
        _, pipeline = make_pipeline(app, big_csv(tmp_path), "random_forest", SLOW_FOREST)
        train(app, pipeline["id"])
        tree: dict = {}

        def training():  # in the forest's first stage: it reports nothing for seconds
            tree["all"], tree["children"] = training_tree(app.proc.pid)
            return any(busy(p, 2.0) for p in tree["children"])

        assert wait_until(training, timeout=TIMEOUT, interval=0.1)
        descendants = tree["all"]
        commands = [" ".join(p.cmdline()) for p in descendants]
        assert any("resource_tracker" in c for c in commands) and len(descendants) >= 3, commands

        app.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        app.proc.wait(timeout=10)
        assert wait_until(lambda: not any(_alive(p) for p in descendants), timeout=GONE_WITHIN_S, interval=0.02), [
            (p.pid, " ".join(p.cmdline())) for p in descendants if _alive(p)
        ]
        print(f"\nall {len(descendants)} training processes gone {time.monotonic() - killed:.3f} s after the SIGKILL")
    finally:
        app.stop()


# -- stalled training ----------------------------------------------------------------------------------


def test_a_training_that_makes_no_progress_fails_as_stalled(make_live_server, settings, tmp_path):
    server = make_live_server(dataclasses.replace(settings, training_workers=1, training_stall_s=1.0))
    training = server.runtime.training
    training.stall_s = server.runtime.settings.training_stall_s  # until services/runtime.py passes it
    _, slow = make_pipeline(server, big_csv(tmp_path), "random_forest", SLOW_FOREST, name="slow")
    client = Client(server.ws_url)
    try:
        job_id = train(server, slow["id"])
        box = {}

        def started():
            local = training._jobs.get(job_id)
            box["process"] = local.process if local is not None else None
            return box["process"] is not None

        assert wait_until(started, timeout=TIMEOUT, interval=0.05)
        events = job_events(client, job_id)
    finally:
        client.close()
    mine = [e for e in events if e["data"].get("job_id") == job_id]
    error = mine[-1]
    assert error["type"] == "training_error" and error["data"]["code"] == "stalled", error
    assert "MLOPS_TRAINING_STALL_S" in error["data"]["error"]
    assert not box["process"].is_alive()  # killed, not left growing beside the next job
    progress = [e for e in mine if e["type"] == "training_progress"]
    assert all(e["data"]["step"] == 0 for e in progress)  # the first stage of 100 trees never ended
    waited = (parse_iso(error["ts"]) - parse_iso(progress[-1]["ts"])).total_seconds()
    print(f"\nstalled reported {waited:.2f} s after the last news ({progress[-1]['data']['stage']}; setting 1 s)")
    job = call(server, "GET", f"/api/v1/jobs/{job_id}")[1]
    assert job["status"] == "failed" and "no progress" in job["error"]
    assert call(server, "GET", f"/api/v1/models/{job['model_id']}")[1]["status"] == "failed"

    # The one worker slot is free again, and a training that reports steps is not taken for stalled.
    _, quick = make_pipeline(server, sklearn_csv("iris.csv"), "random_forest", {"n_estimators": 40}, name="quick")
    assert wait_job(server, train(server, quick["id"]), "succeeded", "failed")["status"] == "succeeded"


# -- deleting and undeploying stop serving at once, in every process ------------------------------------


def test_delete_and_undeploy_stop_serving_at_once_in_every_process(make_live_server, settings, tmp_path):
    first = make_live_server(dataclasses.replace(settings, data_dir=tmp_path / "shared"))
    path = sklearn_csv("iris.csv")
    dataset, pipeline = make_pipeline(first, path, "random_forest", {"n_estimators": 10})
    v1 = wait_job(first, train(first, pipeline["id"]), "succeeded")["model_id"]
    v2 = wait_job(first, train(first, pipeline["id"]), "succeeded")["model_id"]
    assert call(first, "POST", f"/api/v1/models/{v1}/deploy")[0] == 200
    folder = tmp_path / "shared" / "models" / f"pipeline-{pipeline['id']}"
    assert sorted(f.name for f in folder.iterdir()) == ["v1.joblib", "v2.joblib"]
    instances, _ = rows_of(path, "target", 1, [c["name"] for c in dataset["columns"]])
    body = {"instances": instances}
    endpoint = f"/api/v1/pipelines/{pipeline['id']}/predict"

    second = AppProcess(tmp_path, "shared", MLOPS_BACKGROUND="false")  # another process, same database and files
    try:
        for server in (first, second):  # both load version 1 into memory
            status, answer = call(server, "POST", endpoint, body)
            assert (status, answer["version"]) == (200, 1), answer
            assert call(server, "POST", f"/api/v1/models/{v2}/predict", body)[0] == 200

        assert call(first, "POST", f"/api/v1/models/{v2}/deploy")[0] == 200
        assert [call(s, "POST", endpoint, body)[1]["version"] for s in (first, second)] == [2, 2]

        first.runtime.registry.undeploy(v2)
        for server in (first, second):
            assert_error(call(server, "POST", endpoint, body), 409, "not_deployed")
        assert call(first, "POST", f"/api/v1/models/{v2}/deploy")[0] == 200
        assert [call(s, "POST", endpoint, body)[0] for s in (first, second)] == [200, 200]

        started = time.perf_counter()
        assert call(first, "DELETE", f"/api/v1/pipelines/{pipeline['id']}")[0] == 204
        for server in (first, second):  # no waiting: the very next request
            assert_error(call(server, "POST", endpoint, body), 404, "pipeline_not_found")
            assert_error(call(server, "POST", f"/api/v1/models/{v2}/predict", body), 404, "model_not_found")
        print(f"\ndeleted, and refused by both processes, within {time.perf_counter() - started:.3f} s")
        assert not folder.exists()
    finally:
        second.stop()
    assert wait_until(lambda: first.runtime.serving._models == {}, timeout=10)  # memory freed on pipeline_deleted


def test_deleting_a_pipeline_while_it_trains_leaves_no_files(live_server, tmp_path):
    _, pipeline = make_pipeline(live_server, big_csv(tmp_path), "random_forest", SLOW_FOREST)
    client = Client(live_server.ws_url)
    try:
        job_id = train(live_server, pipeline["id"])
        client.until(lambda e: e["type"] == "training_progress" and e["data"].get("job_id") == job_id
                     and e["data"]["stage"] == "training", timeout=TIMEOUT)
        folder = live_server.runtime.registry.models_dir / f"pipeline-{pipeline['id']}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "v1.joblib.partial").write_bytes(b"half written")  # as a save cut short leaves it
        assert call(live_server, "DELETE", f"/api/v1/pipelines/{pipeline['id']}")[0] == 204
        error = job_events(client, job_id)[-1]
    finally:
        client.close()
    assert error["data"]["code"] == "pipeline_deleted"
    assert not folder.exists()


# -- the start-up sweep ---------------------------------------------------------------------------------


def test_start_deletes_artifact_files_no_model_version_owns(make_live_server, settings):
    first = make_live_server(settings)
    _, pipeline = make_pipeline(first, sklearn_csv("iris.csv"), "random_forest", {"n_estimators": 5})
    wait_job(first, train(first, pipeline["id"]), "succeeded")
    models = settings.data_dir / "models"
    owned = models / f"pipeline-{pipeline['id']}" / "v1.joblib"
    assert owned.is_file()
    orphans = [
        owned.with_name("v7.joblib"),  # a version whose row is gone
        owned.with_name("v1.joblib.partial"),  # a save cut short: v1 is finished, nobody writes it
        models / "pipeline-999" / "v1.joblib",  # a pipeline deleted while its process was down
        models / "pipeline-999" / "v2.joblib.partial",
    ]
    strangers = [models / "README.txt", owned.with_name("notes.txt"), models / "backup" / "v1.joblib"]
    for path in orphans + strangers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")

    make_live_server(settings)  # a start on the same data

    assert [p for p in orphans if p.exists()] == []
    assert not (models / "pipeline-999").exists()
    assert owned.is_file() and all(p.exists() for p in strangers)
    again = wait_job(first, train(first, pipeline["id"]), "succeeded")  # the next version saves beside the kept one
    assert sorted(f.name for f in owned.parent.iterdir()) == ["notes.txt", "v1.joblib", "v2.joblib"]
    assert call(first, "POST", f"/api/v1/models/{again['model_id']}/deploy")[0] == 200


# -- ids ------------------------------------------------------------------------------------------------


def _rows(session) -> dict[type, object]:
    """One new row of every table with an integer id (parents flushed first)."""
    dataset = Dataset(name=f"d{time.perf_counter_ns()}")
    user = User(name=f"u{time.perf_counter_ns()}", password_hash="x", role="viewer")
    session.add_all([dataset, user])
    session.flush()
    pipeline = Pipeline(name=f"p{time.perf_counter_ns()}", dataset_id=dataset.id, target="y", model="linear")
    session.add(pipeline)
    session.flush()
    rows = {
        Dataset: dataset,
        User: user,
        Pipeline: pipeline,
        DatasetVersion: DatasetVersion(dataset_id=dataset.id, version=1, filename="f.csv", path="/f", size_bytes=1,
                                       rows=1),
        Model: Model(pipeline_id=pipeline.id, version=1, status="training"),
        ApiToken: ApiToken(user_id=user.id, name="t", token_hash=f"{time.perf_counter_ns():064d}"),
        ShareLink: ShareLink(chart="cpu", expires_at=utc_now()),
        Alert: Alert(level="info", message="m"),
        Activity: Activity(category="c", message="m"),
    }
    session.add_all(rows.values())
    session.flush()
    return rows


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_ids_of_deleted_rows_are_never_given_again(backend, request, tmp_path):
    url = f"sqlite:///{tmp_path / 'ids.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    database = Database(url)
    try:
        database.upgrade()
        with database.session() as session:
            first = {table: row.id for table, row in _rows(session).items()}
        with database.session() as session:  # the newest row of each table goes: SQLite used to hand its id out again
            for table in (ApiToken, DatasetVersion, Model, Pipeline, Dataset, User, ShareLink, Alert, Activity):
                session.execute(delete(table))
        with database.session() as session:
            second = {table: row.id for table, row in _rows(session).items()}
    finally:
        database.close()
    assert {t.__tablename__: (first[t], second[t]) for t in first if second[t] <= first[t]} == {}


def test_an_upgraded_sqlite_database_keeps_its_ids_and_reuses_none(tmp_path):
    from alembic import command
    from sqlalchemy import text

    from storage.schema import alembic_config, migration_lock

    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with migration_lock(database.engine) as conn:
            command.upgrade(alembic_config(conn), "0004")
            for i in (1, 2, 3):
                conn.execute(text(f"INSERT INTO datasets (id, name, current_version, created_at, updated_at) "
                                  f"VALUES ({i}, 'd{i}', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        database.upgrade()
        assert database.schema_diff() == []
        with database.session() as session:
            assert [d.name for d in session.query(Dataset).order_by(Dataset.id)] == ["d1", "d2", "d3"]
            session.execute(delete(Dataset).where(Dataset.id == 3))
        with database.session() as session:
            again = Dataset(name="after the upgrade")
            session.add(again)
            session.flush()
            assert again.id == 4
    finally:
        database.close()


def test_a_deleted_pipelines_ids_and_folder_are_not_reused_through_the_api(live_server):
    path = sklearn_csv("iris.csv")
    dataset, pipeline = make_pipeline(live_server, path, "random_forest", {"n_estimators": 5}, name="first")
    model_id = wait_job(live_server, train(live_server, pipeline["id"]), "succeeded")["model_id"]
    assert call(live_server, "DELETE", f"/api/v1/pipelines/{pipeline['id']}")[0] == 204
    body = {"name": "second", "dataset_id": dataset["id"], "target": "target", "model": "random_forest",
            "params": {"n_estimators": 5}}
    status, again = call(live_server, "POST", "/api/v1/pipelines", body)
    assert status == 201 and again["id"] > pipeline["id"]
    assert wait_job(live_server, train(live_server, again["id"]), "succeeded")["model_id"] > model_id
