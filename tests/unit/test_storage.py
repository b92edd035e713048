"""The storage contract, on SQLite and on PostgreSQL: schema upgrade, constraints, JSON, UTC, paging.

PostgreSQL: ``MLOPS_TEST_POSTGRES_URL`` names a database to connect to for creating and dropping
one database per test (default: ``test`` on 127.0.0.1:5432 as user root, else as postgres).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    create_engine,
    delete,
    event,
    func,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from sqlalchemy.pool import NullPool

from storage import (
    Activity,
    Alert,
    Base,
    ComponentHealth,
    Database,
    Dataset,
    DatasetVersion,
    Model,
    Pipeline,
    SchemaError,
    StorageUnavailable,
    TrainingJob,
    default_url,
    normalize_url,
)
from storage.schema import alembic_config, head_revision, migration_lock
from tests.conftest import need

POSTGRES_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL")
POSTGRES_CANDIDATES = (
    [POSTGRES_URL]
    if POSTGRES_URL
    else [f"postgresql://{user}@127.0.0.1:5432/test" for user in ("root", "postgres")]
)
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


@functools.cache
def postgres_admin_url() -> str | None:
    """The first candidate URL PostgreSQL accepts, or None when no server answers."""
    for url in POSTGRES_CANDIDATES:
        engine = create_engine(normalize_url(url), poolclass=NullPool, connect_args={"connect_timeout": 2})
        try:
            with engine.connect():
                return url
        except OperationalError:
            continue
        finally:
            engine.dispose()
    return None


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new empty database for one test, dropped afterwards even if connections are left open."""
    admin = postgres_admin_url()
    need(admin is not None, f"PostgreSQL is not answering at {' or '.join(POSTGRES_CANDIDATES)}")
    name = f"mlops_test_{uuid.uuid4().hex}"
    engine = create_engine(normalize_url(admin), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name},
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of each backend."""
    if request.param == "sqlite":
        yield default_url(tmp_path)
        return
    with postgres_database() as pg_url:
        yield pg_url


@pytest.fixture
def open_db(url: str) -> Iterator[Callable[..., Database]]:
    """Open ``Database`` objects on the test's URL (upgraded unless asked not to); closed afterwards."""
    opened: list[Database] = []

    def factory(upgrade: bool = True, db_url: str | None = None) -> Database:
        database = Database(db_url or url)
        opened.append(database)
        if upgrade:
            database.upgrade()
        return database

    yield factory
    for database in opened:
        database.close()


@pytest.fixture
def db(open_db) -> Database:
    return open_db()


def add_pipeline(db: Database, name: str = "churn", dataset: str = "customers") -> int:
    with db.session() as s:
        ds = Dataset(name=dataset)
        pipeline = Pipeline(name=name, dataset=ds, target="churned", model="random_forest")
        s.add(pipeline)
        s.flush()
        return pipeline.id


def version(number: int, **values) -> DatasetVersion:
    """A dataset version with dull defaults for what a test does not look at."""
    defaults = {"filename": f"v{number}.csv", "path": f"/data/v{number}.csv", "size_bytes": 1, "rows": 1}
    return DatasetVersion(version=number, **defaults | values)


def count(db: Database, model: type[Base]) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


# --- schema upgrade ---------------------------------------------------------------------------------


def test_upgrade_creates_the_schema_and_a_second_call_is_a_no_op(open_db):
    database = open_db(upgrade=False)
    assert database.revision() is None

    database.upgrade()

    assert database.revision() == head_revision()
    tables = set(inspect(database.engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}

    statements: list[str] = []
    event.listen(database.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    database.upgrade()
    assert statements, "the second upgrade should still look at the revision"
    writes = [s for s in statements if not s.lstrip().upper().startswith(("SELECT", "PRAGMA")) or "advisory" in s]
    assert writes == []
    assert database.revision() == head_revision()


def test_upgrade_of_a_database_with_data_keeps_the_data(open_db):
    first = open_db()
    pipeline_id = add_pipeline(first)
    with first.session() as s:
        s.add(Activity(category="pipeline", message="created churn", subject_type="pipeline", subject_id="1"))
    first.close()

    second = open_db()
    second.upgrade()

    with second.session() as s:
        assert s.get(Pipeline, pipeline_id).dataset.name == "customers"
        assert s.scalars(select(Activity.message)).all() == ["created churn"]


def test_concurrent_upgrades_of_a_new_database_all_succeed(open_db):
    """Several processes starting at once: one migrates, the others wait and find nothing to do."""
    databases = [open_db(upgrade=False) for _ in range(4)]
    barrier = threading.Barrier(len(databases))
    errors: list[BaseException] = []

    def start(database: Database) -> None:
        barrier.wait()
        try:
            database.upgrade()
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(d,)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert {d.revision() for d in databases} == {head_revision()}
    assert databases[0].schema_diff() == []


def test_migrations_match_the_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert db.schema_diff() == []


def test_downgrade_to_base_and_upgrade_again(db):
    with migration_lock(db.engine) as conn:
        command.downgrade(alembic_config(conn), "base")
    assert db.revision() is None
    assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
    db.upgrade()
    assert db.revision() == head_revision()


def test_upgrade_refuses_a_schema_from_a_newer_version(db):
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaError, match="9999_from_the_future.*newer version"):
        db.upgrade()


# --- CRUD -------------------------------------------------------------------------------------------


def test_dataset_and_versions_crud(db):
    columns = [{"name": "age", "dtype": "int64", "missing": 0}, {"name": "city", "dtype": "object", "missing": 3}]
    with db.session() as s:
        ds = Dataset(name="customers", current_version=2)
        ds.versions.append(version(2, size_bytes=5 * 2**32, rows=3 * 2**31, columns=columns))
        ds.versions.append(version(1))
        s.add(ds)

    with db.session() as s:
        ds = s.scalars(select(Dataset).where(Dataset.name == "customers")).one()
        assert [v.version for v in ds.versions] == [1, 2]
        v2 = ds.versions[1]
        assert (v2.size_bytes, v2.rows, v2.columns, v2.profile) == (5 * 2**32, 3 * 2**31, columns, {})
        assert ds.versions[0].columns == []
        created, updated = ds.created_at, ds.updated_at
        ds.current_version = 1

    with db.session() as s:
        ds = s.get(Dataset, ds.id)
        assert ds.current_version == 1
        assert ds.created_at == created and ds.updated_at > updated
        data = ds.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert set(data) == {"id", "name", "current_version", "created_at", "updated_at"}
        assert data["created_at"].endswith("Z")
        v2_data = ds.versions[1].to_dict()
        assert v2_data["columns"] == columns and v2_data["dataset_id"] == ds.id
        s.delete(ds)

    assert count(db, Dataset) == 0
    assert count(db, DatasetVersion) == 0


def test_pipeline_model_and_job_crud(db):
    pipeline_id = add_pipeline(db)
    with db.session() as s:
        pipeline = s.get(Pipeline, pipeline_id)
        assert (pipeline.params, pipeline.features) == ({}, None)
        pipeline.params = {"n_estimators": 200, "max_depth": None}
        pipeline.features = ["age", "city"]
        model = Model(pipeline=pipeline, version=1, status="training", task="classification")
        job = TrainingJob(pipeline=pipeline, name="churn v1", model=model)
        s.add(job)
        s.flush()
        job_id, model_id = job.id, model.id
        assert len(job_id) == 32 and int(job_id, 16) >= 0
        assert (job.status, job.progress, job.external, job.metrics) == ("queued", 0.0, False, {})
        assert job.started_at is None

    with db.session() as s:
        job = s.get(TrainingJob, job_id)
        job.status, job.progress, job.started_at = "running", 0.5, dt.datetime.now(dt.timezone.utc)
        job.metrics = {"epoch": 5, "loss": [0.9, 0.5]}
        model = s.get(Model, model_id)
        model.status, model.metrics, model.artifact_path = "deployed", {"accuracy": 0.93}, "/data/models/1.joblib"
        model.deployed_at = dt.datetime.now(dt.timezone.utc)

    with db.session() as s:
        pipeline = s.get(Pipeline, pipeline_id)
        assert pipeline.params == {"n_estimators": 200, "max_depth": None}
        assert pipeline.features == ["age", "city"]
        assert [(m.version, m.status, m.metrics) for m in pipeline.models] == [(1, "deployed", {"accuracy": 0.93})]
        job = s.get(TrainingJob, job_id)
        assert (job.status, job.progress, job.metrics["loss"]) == ("running", 0.5, [0.9, 0.5])
        assert job.model.id == model_id
        for row in (pipeline, pipeline.models[0], job):
            data = row.to_dict()
            assert json.loads(json.dumps(data)) == data
        assert job.to_dict()["finished_at"] is None
        s.delete(pipeline.models[0])

    with db.session() as s:
        assert s.get(TrainingJob, job_id).model_id is None  # SET NULL: the run's history outlives its model
        s.add(Model(pipeline_id=pipeline_id, version=2, status="ready"))

    with db.session() as s:
        s.execute(delete(Pipeline).where(Pipeline.id == pipeline_id))  # in the database: its CASCADE
    assert (count(db, Pipeline), count(db, Model), count(db, TrainingJob), count(db, Dataset)) == (0, 0, 0, 1)


def test_external_job_without_pipeline(db):
    with db.session() as s:
        job = TrainingJob(id=uuid.uuid4().hex, name="notebook run", external=True, status="running")
        s.add(job)
    with db.session() as s:
        again = s.get(TrainingJob, job.id)
        again.status, again.error = "failed", "CUDA out of memory"
        again.finished_at = dt.datetime.now(dt.timezone.utc)
    with db.session() as s:
        again = s.get(TrainingJob, job.id)
        assert (again.pipeline_id, again.external, again.status) == (None, True, "failed")
        assert again.error == "CUDA out of memory"


def test_alert_health_and_activity_crud(db):
    with db.session() as s:
        alert = Alert(level="warning", component="disk", message="1.2 GB free")
        s.add_all([alert, ComponentHealth(component="disk", status="degraded", message="1.2 GB free")])
        s.add(
            Activity(
                category="training", level="success", message="churn v1 trained", subject_type="model", subject_id="7"
            )
        )

    with db.session() as s:
        alert = s.get(Alert, alert.id)
        assert alert.resolved_at is None
        alert.resolved_at = dt.datetime.now(dt.timezone.utc)
        s.merge(ComponentHealth(component="disk", status="healthy", message="40 GB free"))

    with db.session() as s:
        alert = s.get(Alert, alert.id)
        assert alert.resolved_at >= alert.created_at
        health = s.get(ComponentHealth, "disk")
        assert (health.status, health.message) == ("healthy", "40 GB free")
        activity = s.scalars(select(Activity)).one()
        assert activity.to_dict() | {"id": 0, "created_at": ""} == {
            "id": 0,
            "category": "training",
            "level": "success",
            "message": "churn v1 trained",
            "subject_type": "model",
            "subject_id": "7",
            "created_at": "",
            "actor": None,
        }
        for row in (alert, health, activity):
            data = row.to_dict()
            assert json.loads(json.dumps(data)) == data
        s.delete(alert)
        s.delete(health)
        s.delete(activity)
    assert (count(db, Alert), count(db, ComponentHealth), count(db, Activity)) == (0, 0, 0)


def test_a_failing_session_rolls_back(db):
    with pytest.raises(RuntimeError, match="boom"), db.session() as s:
        s.add(Dataset(name="half written"))
        s.flush()
        raise RuntimeError("boom")
    assert count(db, Dataset) == 0


# --- constraints ------------------------------------------------------------------------------------


def test_dataset_name_is_unique(db):
    with db.session() as s:
        s.add(Dataset(name="customers"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Dataset(name="customers"))
    assert count(db, Dataset) == 1


def test_dataset_version_is_unique_per_dataset(db):
    with db.session() as s:
        ds = Dataset(name="customers")
        other = Dataset(name="orders")
        s.add_all([ds, other])
        s.flush()
        for dataset_id in (ds.id, other.id):
            s.add(version(1, dataset_id=dataset_id))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(version(1, dataset_id=ds.id, filename="again.csv"))
    assert count(db, DatasetVersion) == 2


def test_a_dataset_used_by_a_pipeline_cannot_be_deleted(db):
    pipeline_id = add_pipeline(db)
    with db.session() as s:
        dataset = s.get(Pipeline, pipeline_id).dataset
        dataset.versions.append(version(1))

    with pytest.raises(IntegrityError), db.session() as s:
        s.delete(s.scalars(select(Dataset)).one())
    assert (count(db, Dataset), count(db, DatasetVersion)) == (1, 1)

    with db.session() as s:
        s.delete(s.get(Pipeline, pipeline_id))
    with db.session() as s:
        s.delete(s.scalars(select(Dataset)).one())
    assert (count(db, Dataset), count(db, DatasetVersion)) == (0, 0)


def test_check_constraints_reject_unknown_values(db):
    pipeline_id = add_pipeline(db)
    with db.session() as s:
        dataset_id = s.get(Pipeline, pipeline_id).dataset_id
    bad_rows = {
        "pipeline.model": lambda: Pipeline(name="x", dataset_id=dataset_id, target="y", model="xgboost"),
        "model.status": lambda: Model(pipeline_id=pipeline_id, version=9, status="shipped"),
        "model.task": lambda: Model(pipeline_id=pipeline_id, version=9, status="ready", task="clustering"),
        "job.status": lambda: TrainingJob(pipeline_id=pipeline_id, status="done"),
    }
    accepted = []
    for case, make in bad_rows.items():
        try:
            with db.session() as s:
                s.add(make())
        except IntegrityError:
            continue
        accepted.append(case)
    assert accepted == []
    assert (count(db, Pipeline), count(db, Model), count(db, TrainingJob)) == (1, 0, 0)


# --- values -----------------------------------------------------------------------------------------


def test_json_round_trip(db, open_db):
    profile = {
        "Größe": {"mean": 1.5, "histogram": [[0, 3], [1.25, 7]], "top": None, "ok": True},
        "城市": ["東京", "Zürich", "😀"],
        "nested": {"a": {"b": {"c": [1, -2, 2**53, 1e-300, ""]}}},
        "empty": {"list": [], "dict": {}},
    }
    with db.session() as s:
        s.add(Dataset(name="ünïcødé 数据", versions=[version(1, filename="é.csv", profile=profile)]))

    with open_db().session() as s:  # a fresh engine: nothing cached
        ds = s.scalars(select(Dataset)).one()
        assert ds.name == "ünïcødé 数据"
        assert ds.versions[0].profile == profile
        assert json.loads(json.dumps(ds.versions[0].to_dict()))["profile"] == profile


def test_json_refuses_values_without_an_exact_json_form(db):
    pipeline_id = add_pipeline(db)
    bad_values = [
        ({"loss": float("nan")}, r"\$\.loss is nan"),
        ({"curve": [1.0, float("inf")]}, r"\$\.curve\[1\] is inf"),
        ({"when": dt.datetime(2026, 1, 1)}, r"\$\.when is a datetime\.datetime"),
        ({1: "a"}, r"key 1"),
    ]
    for bad, message in bad_values:
        with pytest.raises(StatementError, match=message), db.session() as s:
            s.get(Pipeline, pipeline_id).params = bad
    with db.session() as s:
        assert s.get(Pipeline, pipeline_id).params == {}


def test_datetimes_come_back_aware_utc(db, open_db, url):
    when = dt.datetime(2026, 11, 26, 17, 18, 0, 123456, tzinfo=IST)
    naive = dt.datetime(2026, 11, 26, 11, 0, 0)
    with db.session() as s:
        s.add(Alert(level="info", message="ist", created_at=when))
        s.add(Alert(level="info", message="naive", created_at=naive))
        s.add(Alert(level="info", message="default"))

    reader = db
    if url.startswith("postgresql"):  # a session in another time zone still reads UTC
        in_kolkata = make_url(url).update_query_dict({"options": "-c timezone=Asia/Kolkata"})
        reader = open_db(db_url=in_kolkata.render_as_string(hide_password=False))
    with reader.session() as s:
        alerts = {a.message: a for a in s.scalars(select(Alert))}
        for alert in alerts.values():
            assert alert.created_at.tzinfo == dt.timezone.utc
        assert alerts["ist"].created_at == when
        assert alerts["ist"].to_dict()["created_at"] == "2026-11-26T11:48:00.123456Z"
        assert alerts["naive"].created_at == naive.replace(tzinfo=dt.timezone.utc)
        assert abs(alerts["default"].created_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)
        since = when - dt.timedelta(microseconds=1)
        assert sorted(s.scalars(select(Alert.message).where(Alert.created_at > since))) == ["default", "ist"]


def test_activity_pages_newest_first_with_a_before_cursor(db):
    base = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
    # Some entries share a timestamp and one arrives late with an older time: order is (time, id).
    offsets = [0, 1, 1, 1, 2, 3, 5, 5, 4, 6, 7, 8, 9, 9, 10, 11, 12, 13, 14, 15, -1, 16, 17, 18, 19]
    with db.session() as s:
        for i, offset in enumerate(offsets):
            s.add(Activity(category="test", message=f"#{i}", created_at=base + dt.timedelta(seconds=offset)))
    with db.session() as s:
        rows = sorted(s.scalars(select(Activity)), key=lambda a: (a.created_at, a.id), reverse=True)
        expected = [a.id for a in rows]

    seen: list[int] = []
    before = None
    while True:
        with db.session() as s:
            page = s.scalars(Activity.newest_first(limit=10, before=before)).all()
        if not page:
            break
        assert len(page) <= 10
        seen += [a.id for a in page]
        before = page[-1].id
    assert seen == expected
    assert len(seen) == len(offsets)

    with db.session() as s:
        first = s.scalars(Activity.newest_first(limit=3)).all()
    assert [a.message for a in first] == ["#24", "#23", "#22"]


def test_two_database_objects_on_one_url_see_each_others_writes(db, open_db):
    other = open_db()
    with db.session() as s:
        s.add(Dataset(name="from first"))
    with other.session() as s:
        assert s.scalars(select(Dataset.name)).all() == ["from first"]
        s.add(Dataset(name="from second"))
    with db.session() as s:
        assert sorted(s.scalars(select(Dataset.name))) == ["from first", "from second"]


# --- connection and URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_unreachable_database_raises_storage_unavailable(backend, tmp_path, caplog):
    if backend == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'mlops.db'}")
        expected = "unable to open database file"
    else:
        database = Database("postgresql://mlops:s3cret@127.0.0.1:1/mlops")
        expected = "127.0.0.1"
    try:
        with pytest.raises(StorageUnavailable, match="does not answer") as info:
            database.ping()
        message = str(info.value)
        # The answer carries no driver words; the log names the database and the driver's reason.
        assert expected not in message and database.describe() not in message
        logged = caplog.text
        assert database.describe() in logged and expected in logged
        assert "s3cret" not in message and "s3cret" not in logged
        if backend == "postgresql":
            with pytest.raises(StorageUnavailable, match="does not answer"):
                database.upgrade()
    finally:
        database.close()


def test_ping_succeeds_on_a_reachable_database(db):
    db.ping()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://me@db:5432/mlops", "postgresql+psycopg://me@db:5432/mlops"),
        ("postgres://me@db/mlops", "postgresql+psycopg://me@db/mlops"),
        ("postgresql+psycopg://me@db/mlops", "postgresql+psycopg://me@db/mlops"),
        ("sqlite:////var/lib/mlops/mlops.db", "sqlite:////var/lib/mlops/mlops.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_accepted_urls(given, expected):
    assert normalize_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "given", ["mysql://me:pw@db/mlops", "postgresql+psycopg2://me:pw@db/mlops", "redis://db:6379/0", "not a url"]
)
def test_unsupported_url_names_the_url_and_the_accepted_forms(given):
    with pytest.raises(ValueError) as info:
        Database(given)
    message = str(info.value)
    assert given.replace(":pw@", ":***@") in message
    assert "pw@" not in message
    assert "sqlite:///" in message and "postgresql://" in message


def test_describe_and_default_url(tmp_path):
    database = Database("postgresql://me:s3cret@db.internal:5432/mlops")
    assert database.describe() == "postgresql+psycopg://me@db.internal:5432/mlops"
    assert "s3cret" not in repr(database)
    assert default_url(tmp_path) == f"sqlite:///{tmp_path}/mlops.db"


def test_in_memory_sqlite_shares_one_database_across_sessions():
    database = Database("sqlite://")
    database.upgrade()
    with database.session() as s:
        s.add(Dataset(name="in memory"))
    with database.session() as s:
        assert s.scalars(select(Dataset.name)).all() == ["in memory"]
    database.close()


def test_upgrade_from_the_first_revision_keeps_the_data(open_db):
    from alembic import command
    from sqlalchemy import text as sql

    database = open_db(upgrade=False)
    with database.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(sql("INSERT INTO datasets (id, name, current_version, created_at, updated_at) "
                         "VALUES (1, 'old', 1, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"))
        conn.execute(sql("INSERT INTO dataset_versions (dataset_id, version, filename, path, size_bytes, rows, columns, profile, created_at) "
                         "VALUES (1, 1, 'old.csv', '/x', 10, 2, '[]', '{}', '2026-01-01 00:00:00+00:00')"))
    assert database.revision() == "0001"
    database.upgrade()
    assert database.revision() == head_revision() != "0001"
    with database.session() as s:
        version = s.scalars(select(DatasetVersion)).one()
        assert (version.filename, version.rows, version.dialect) == ("old.csv", 2, None)
    assert database.schema_diff() == []
