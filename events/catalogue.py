"""The event catalogue: the 17 event types, their payload schemas, and publish-time validation.

Adding an event type is one edit here (a member of ``EventType`` and its payload model in
``PAYLOADS``) and one handler in ``assets/mlops_live.js``.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.serialize import NotSerializable, dumps, to_jsonable

MAX_PAYLOAD_BYTES = 64 * 1024  # an event is news, not a document: every open page receives it


class EventType(str, enum.Enum):
    TRAINING_PROGRESS = "training_progress"
    TRAINING_COMPLETE = "training_complete"
    TRAINING_ERROR = "training_error"
    SYSTEM_STATS = "system_stats"
    HEALTH_CHANGE = "health_change"
    UPLOAD_PROGRESS = "upload_progress"
    UPLOAD_COMPLETE = "upload_complete"
    UPLOAD_ERROR = "upload_error"
    ACTIVITY_UPDATE = "activity_update"
    MODEL_STATUS = "model_status"
    PIPELINE_CREATED = "pipeline_created"
    PIPELINE_UPDATED = "pipeline_updated"
    PIPELINE_DELETED = "pipeline_deleted"
    DATASET_CREATED = "dataset_created"
    DATASET_UPDATED = "dataset_updated"
    PREDICTION_VOLUME = "prediction_volume"
    MODEL_DEPLOYED = "model_deployed"


class InvalidEvent(ValueError):
    """A publisher asked for an unknown event type or gave a payload that breaks its schema."""

    def __init__(self, event_type: str, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(f"{event_type}: {message}")
        self.event_type = event_type
        self.errors = errors or []


Id = int | str
Status = Literal["healthy", "degraded", "down"]
ModelKind = Literal["linear", "random_forest", "gradient_boosting", "mlp"]
ModelState = Literal["training", "ready", "deploying", "deployed", "retired", "failed"]


# On every type (actor, posted) or some (a wide dataset's column summary): left out when unset.
META_FIELDS = ("actor", "posted", "columns_total", "columns_truncated", "features_total", "features_truncated")

# Bounds of the numbers charts divide by or draw, so a posted event cannot turn a chart into inf or an
# overflow (count / interval_s, t - interval_s). A producer's interval is at least 1 ms (services/
# system_stats.py, services/serving.py) and far below a day; a rate past a petabyte per second is no
# disk or network, and leaves a chart room to pad its axis without leaving float range.
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.001, 86_400.0
MAX_RATE = 1e15
MAX_COUNT = 2**63 - 1
MAX_LATENCY_MS = MAX_INTERVAL_S * 1000


class Strict(BaseModel):
    # strict: a payload is JSON a program wrote, so false is not 0 and "3" is not 3. validate() has
    # already turned numpy scalars, datetimes and tuples into their JSON form; an int is still a float.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Payload(Strict):
    actor: str | None = Field(default=None, max_length=64)  # the user whose action this is
    posted: bool | None = None  # true when an admin published it raw (POST /api/v1/events)


class TrainingProgress(Payload):
    job_id: Id
    pipeline_id: Id | None = None
    name: str | None = None
    step: int = Field(ge=0)
    total: int | None = Field(default=None, ge=1)
    fraction: float = Field(ge=0.0, le=1.0)
    metrics: dict[str, float | None] = {}
    eta_s: float | None = Field(default=None, ge=0)
    stage: str | None = None


class TrainingComplete(Payload):
    job_id: Id
    pipeline_id: Id | None = None
    name: str | None = None
    model_id: Id | None = None
    metrics: dict[str, float | None] = {}
    duration_s: float = Field(ge=0)


class TrainingError(Payload):
    job_id: Id
    pipeline_id: Id | None = None
    name: str | None = None
    error: str = Field(min_length=1)
    code: str | None = None


class SystemStats(Payload):
    host: str
    cpu_percent: float = Field(ge=0, le=100)
    cpu_per_core: list[Annotated[float, Field(ge=0, le=100)]]
    load_1: float | None = Field(default=None, ge=0)
    load_5: float | None = Field(default=None, ge=0)
    load_15: float | None = Field(default=None, ge=0)
    mem_percent: float = Field(ge=0, le=100)
    mem_used: int = Field(ge=0)
    mem_total: int = Field(ge=0)
    swap_percent: float = Field(ge=0, le=100)
    disk_path: str
    disk_percent: float = Field(ge=0, le=100)
    disk_used: int = Field(ge=0)
    disk_free: int = Field(ge=0)
    disk_total: int = Field(ge=0)
    disk_read_bps: float = Field(ge=0, le=MAX_RATE)
    disk_write_bps: float = Field(ge=0, le=MAX_RATE)
    net_sent_bps: float = Field(ge=0, le=MAX_RATE)
    net_recv_bps: float = Field(ge=0, le=MAX_RATE)
    process_rss: int = Field(ge=0)
    interval_s: float = Field(ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)


class HealthChange(Payload):
    component: str = Field(min_length=1)
    status: Status
    previous: Status | None = None
    message: str = ""
    overall: Status


class UploadProgress(Payload):
    upload_id: Id
    filename: str
    stage: Literal["receiving", "parsing"]
    bytes_received: int = Field(ge=0)
    bytes_total: int | None = Field(default=None, ge=0)
    rows_parsed: int | None = Field(default=None, ge=0)
    fraction: float | None = Field(default=None, ge=0.0, le=1.0)


class UploadComplete(Payload):
    upload_id: Id
    dataset_id: Id
    filename: str
    name: str | None = None
    rows: int = Field(ge=0)
    columns: int = Field(ge=0)


class UploadError(Payload):
    upload_id: Id
    filename: str
    error: str = Field(min_length=1)
    code: str | None = None


class ActivityUpdate(Payload):
    id: Id | None = None
    message: str = Field(min_length=1)
    category: str
    level: Literal["info", "success", "warning", "error"] = "info"
    subject_type: str | None = None
    subject_id: Id | None = None
    source_type: str | None = None


class ModelStatus(Payload):
    model_id: Id
    pipeline_id: Id | None = None
    version: int | None = Field(default=None, ge=1)
    status: ModelState
    previous: ModelState | None = None
    message: str | None = None


class Pipeline(Payload):
    id: Id
    name: str = Field(min_length=1)
    dataset_id: Id
    target: str = Field(min_length=1)
    model: ModelKind
    params: dict[str, Any] = {}
    features: list[str] | None = None
    features_total: int | None = Field(default=None, ge=0)  # set when ``features`` lists only the first ones
    features_truncated: bool | None = None
    created_at: str
    updated_at: str


class PipelineDeleted(Payload):
    id: Id
    name: str | None = None


class Column(Strict):
    name: str
    dtype: str
    missing: int = Field(ge=0)


class Dataset(Payload):
    id: Id
    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    filename: str
    size_bytes: int = Field(ge=0)
    rows: int = Field(ge=0)
    columns: list[Column]
    columns_total: int | None = Field(default=None, ge=0)  # set when ``columns`` lists only the first ones
    columns_truncated: bool | None = None
    created_at: str
    updated_at: str


class PredictionVolume(Payload):
    model_id: Id
    pipeline_id: Id | None = None
    count: int = Field(ge=0, le=MAX_COUNT)
    total: int = Field(ge=0, le=MAX_COUNT)
    interval_s: float = Field(ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)
    latency_p50_ms: float | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)
    latency_p95_ms: float | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)


class ModelDeployed(Payload):
    model_id: Id
    pipeline_id: Id
    version: int | None = Field(default=None, ge=1)
    previous_model_id: Id | None = None
    endpoint: str | None = None


PAYLOADS: dict[EventType, type[Payload]] = {
    EventType.TRAINING_PROGRESS: TrainingProgress,
    EventType.TRAINING_COMPLETE: TrainingComplete,
    EventType.TRAINING_ERROR: TrainingError,
    EventType.SYSTEM_STATS: SystemStats,
    EventType.HEALTH_CHANGE: HealthChange,
    EventType.UPLOAD_PROGRESS: UploadProgress,
    EventType.UPLOAD_COMPLETE: UploadComplete,
    EventType.UPLOAD_ERROR: UploadError,
    EventType.ACTIVITY_UPDATE: ActivityUpdate,
    EventType.MODEL_STATUS: ModelStatus,
    EventType.PIPELINE_CREATED: Pipeline,
    EventType.PIPELINE_UPDATED: Pipeline,
    EventType.PIPELINE_DELETED: PipelineDeleted,
    EventType.DATASET_CREATED: Dataset,
    EventType.DATASET_UPDATED: Dataset,
    EventType.PREDICTION_VOLUME: PredictionVolume,
    EventType.MODEL_DEPLOYED: ModelDeployed,
}


def event_type(name: str | EventType) -> EventType:
    """The ``EventType`` named ``name``, or ``InvalidEvent`` listing the known ones."""
    try:
        return EventType(name)
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        raise InvalidEvent(str(name), f"unknown event type (known: {known})") from None


def validate(name: str | EventType, data: Any) -> tuple[EventType, dict[str, Any]]:
    """Check ``data`` against the schema of ``name``; return the type and the JSON-ready payload."""
    kind = event_type(name)
    try:
        plain = to_jsonable(data if data is not None else {})
    except NotSerializable as exc:
        raise InvalidEvent(kind.value, str(exc)) from None
    if not isinstance(plain, dict):
        raise InvalidEvent(kind.value, f"payload must be an object, got {type(data).__name__}")
    try:
        model = PAYLOADS[kind].model_validate(plain)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidEvent(kind.value, f"invalid payload ({summary})", errors) from None
    payload = model.model_dump(mode="json")
    for field in META_FIELDS:
        if field in payload and payload[field] is None:
            del payload[field]
    try:
        size = len(dumps(payload).encode())
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800" in JSON): no socket or log can carry it
        bad = exc.object[exc.start]
        raise InvalidEvent(kind.value, f"payload text holds U+{ord(bad):04X}, a lone surrogate that is not Unicode") from None
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidEvent(kind.value, f"payload is {size:,} bytes; an event carries at most {MAX_PAYLOAD_BYTES:,}")
    return kind, payload
