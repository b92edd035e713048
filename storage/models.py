"""The data plane's tables as typed SQLAlchemy models: datasets, pipelines, models, jobs, alerts.

Every timestamp is an aware UTC datetime (``UTCDateTime``) on every backend. JSON columns hold
JSON-ready values only (NaN, numpy scalars and datetimes are refused: convert them first, e.g. with
``events.serialize.to_jsonable``) and are not mutation-tracked: assign a new value to change one.
Constraint names follow ``NAMING_CONVENTION`` so later migrations can name what they alter.
Integer ids are never reused, also on SQLite (``AUTOINCREMENT``, ``NEVER_REUSED``): a cache, a link, an
artifact folder or a log line naming a deleted row's id never finds another row under it.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    MetaData,
    Select,
    String,
    Text,
    UniqueConstraint,
    select,
    types,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from events.serialize import iso_utc, utc_now  # one form of time for rows and events

MODEL_KINDS = ("linear", "random_forest", "gradient_boosting", "mlp")
MODEL_STATUSES = ("training", "ready", "deploying", "deployed", "retired", "failed")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TASKS = ("classification", "regression")
ROLES = ("viewer", "editor", "admin")  # each can do all that the ones before it can

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# SQLite otherwise hands a deleted row's id to the next row; PostgreSQL sequences never go back.
NEVER_REUSED = {"sqlite_autoincrement": True}


def one_of(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a CHECK that ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(types.TypeDecorator[dt.datetime]):
    """Store UTC and read back aware UTC, also on SQLite, which keeps no offset.

    A naive datetime is taken to be UTC already, as ``events.serialize.iso_utc`` does.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def check_json(value: Any, path: str = "$") -> None:
    """Raise ``ValueError`` naming the first part of ``value`` that has no exact JSON form."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value}, which JSON cannot hold: store None for a missing number")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has the key {key!r}: JSON object keys are strings")
            check_json(item, f"{path}.{key}")
        return
    raise ValueError(
        f"{path} is a {type(value).__module__}.{type(value).__qualname__}, which has no JSON form: "
        "convert it first (events.serialize.to_jsonable)"
    )


class Json(types.TypeDecorator[Any]):
    """JSON that refuses NaN, numpy scalars or datetimes with the same error on every backend.

    None is SQL NULL, so a NOT NULL JSON column rejects it instead of storing JSON ``null``.
    """

    impl = JSON(none_as_null=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        check_json(value)
        return value


class Base(DeclarativeBase):
    """Declarative base: the naming convention, UTC datetimes and ``to_dict`` for every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}

    def to_dict(self) -> dict[str, Any]:
        """Column values as JSON-ready builtins (datetimes as ISO 8601 UTC strings with ``Z``)."""
        out: dict[str, Any] = {}
        for attr in self.__mapper__.column_attrs:
            value = getattr(self, attr.key)
            out[attr.key] = iso_utc(value) if isinstance(value, dt.datetime) else value
        return out

    def __repr__(self) -> str:
        keys = ", ".join(f"{c.key}={getattr(self, c.key)!r}" for c in self.__mapper__.primary_key)
        return f"{type(self).__name__}({keys})"


class Dataset(Base):
    """A named dataset; its uploads are the numbered ``versions``."""

    __tablename__ = "datasets"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    current_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    versions: Mapped[list[DatasetVersion]] = relationship(
        back_populates="dataset",
        order_by="DatasetVersion.version",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class DatasetVersion(Base):
    """One uploaded file of a dataset, with the schema and profile computed when it was parsed."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"), NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int]
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(Json(), default=list)
    profile: Mapped[dict[str, Any]] = mapped_column(Json(), default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    dialect: Mapped[dict[str, Any] | None] = mapped_column(Json())  # how to read the file (services.ingest.Dialect)

    dataset: Mapped[Dataset] = relationship(back_populates="versions")


class Pipeline(Base):
    """What to train: a dataset, a target column, a model kind and its parameters."""

    __tablename__ = "pipelines"
    __table_args__ = (CheckConstraint(one_of("model", MODEL_KINDS), name="model"), NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # RESTRICT: deleting a dataset must not silently take its pipelines (and their models) with it.
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"), index=True)
    target: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(Json(), default=dict)
    features: Mapped[list[str] | None] = mapped_column(Json())
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    dataset: Mapped[Dataset] = relationship()
    models: Mapped[list[Model]] = relationship(
        back_populates="pipeline",
        order_by="Model.version",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Model(Base):
    """One trained version of a pipeline and where it is in its life (training to retired)."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "version"),
        CheckConstraint(one_of("status", MODEL_STATUSES), name="status"),
        CheckConstraint(one_of("task", TASKS), name="task"),
        NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(32))
    metrics: Mapped[dict[str, Any]] = mapped_column(Json(), default=dict)
    artifact_path: Mapped[str | None] = mapped_column(Text)
    task: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    deployed_at: Mapped[dt.datetime | None]
    # What serving validates requests against: {"columns": [{name, type, required}], "classes": [...] | None,
    # "target": str, "dropped": {column: why}}; NULL until training succeeds.
    signature: Mapped[dict[str, Any] | None] = mapped_column(Json())
    predictions: Mapped[int] = mapped_column(BigInteger, default=0)  # served in all processes, flushed each second

    pipeline: Mapped[Pipeline] = relationship(back_populates="models")


def new_job_id() -> str:
    return uuid.uuid4().hex


class TrainingJob(Base):
    """A training run, in a worker here (``pipeline_id``) or reported by an external script."""

    __tablename__ = "training_jobs"
    __table_args__ = (CheckConstraint(one_of("status", JOB_STATUSES), name="status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    pipeline_id: Mapped[int | None] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    external: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(32), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    metrics: Mapped[dict[str, Any]] = mapped_column(Json(), default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    step: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    # The process running the job ("host:pid") and when it last said so: a job whose process is gone
    # is failed, not left "running" (services.training.Training.recover).
    worker: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[dt.datetime | None]

    pipeline: Mapped[Pipeline | None] = relationship()
    model: Mapped[Model | None] = relationship()


class PredictionMinute(Base):
    """Predictions served per model per UTC minute, summed over every serving process."""

    __tablename__ = "prediction_minutes"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    minute: Mapped[dt.datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms_sum: Mapped[float] = mapped_column(default=0.0)


class Alert(Base):
    """Something a person should look at; open until ``resolved_at`` is set."""

    __tablename__ = "alerts"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    component: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    resolved_at: Mapped[dt.datetime | None]


class ComponentHealth(Base):
    """The last known health of each component (kept for alert history; live health is in the event stream)."""

    __tablename__ = "component_health"

    component: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class Activity(Base):
    """The activity feed: what happened, newest first, paged with ``newest_first``."""

    __tablename__ = "activity"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    actor: Mapped[str | None] = mapped_column(String(64))  # who did it; None for the system itself

    @classmethod
    def newest_first(cls, limit: int, before: int | None = None) -> Select[tuple[Activity]]:
        """At most ``limit`` entries, newest first, older than the entry ``before`` when given.

        Keyset paging on ``(created_at, id)``: pages stay stable while new entries arrive.
        """
        query = select(cls).order_by(cls.created_at.desc(), cls.id.desc()).limit(limit)
        if before is not None:
            cursor = select(cls.created_at).where(cls.id == before).scalar_subquery()
            query = query.where((cls.created_at < cursor) | ((cls.created_at == cursor) & (cls.id < before)))
        return query


Index("ix_activity_created_at_id", Activity.created_at.desc(), Activity.id.desc())


class User(Base):
    """An account: a name, a password hash (argon2id) and a role."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(one_of("role", ROLES), name="role"), NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    # Bumped when the password or role changes: sessions signed with an older value end.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_dict().items() if k not in {"password_hash", "session_version"}}


class ApiToken(Base):
    """A bearer token of a user; only its SHA-256 is stored, so the database never holds the secret."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


class ShareLink(Base):
    """A read-only link to one chart's embed page; the URL carries a signed id, this row its revocation."""

    __tablename__ = "share_links"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    chart: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
