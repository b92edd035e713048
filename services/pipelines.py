"""Pipelines: a dataset, a target column, a model kind and its parameters, validated before storing.

Every field is checked for its type before its value (a JSON body can hold anything anywhere), and
every model parameter against bounds that keep one training job to minutes on one core: a job that
can never finish would hold a worker. ``PARAMS`` states the bounds; ``param_schemas`` gives them as
JSON Schema for the OpenAPI document.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from events.hub import Hub
from services.activity import ActivityFeed
from services.datasets import after_commit, summarised
from services.validation import check_fields, name_problem
from services.errors import Conflict, Invalid, NotFound
from storage.db import Database
from storage.models import Dataset, Pipeline

FIELDS = {"name", "dataset_id", "target", "model", "params", "features"}
REQUIRED = {"name", "dataset_id", "target", "model"}
MAX_ID = 2**31 - 1  # ids are 32-bit integers in every database: larger ones name nothing
MAX_TARGET = 255  # characters, what Pipeline.target holds
MAX_PROBLEMS = 20  # a body with thousands of bad entries gets the first ones back, not an echo of itself


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


@dataclasses.dataclass(frozen=True)
class Range:
    """A number from ``low`` to ``high`` (``low`` itself excluded when ``open_low``), or null when ``null``."""

    low: float
    high: float
    open_low: bool = False
    integer: bool = False
    null: bool = False

    def __call__(self, value: Any) -> bool:
        if value is None:
            return self.null
        return (value > self.low if self.open_low else value >= self.low) and value <= self.high

    @property
    def text(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low = f"> {_number(self.low)} and" if self.open_low else f"from {_number(self.low)}"
        high = f"at most {_number(self.high)}" if self.open_low else f"to {_number(self.high)}"
        return f"{kind} {low} {high}" + (", or null" if self.null else "")

    def schema(self) -> dict[str, Any]:
        kind = "integer" if self.integer else "number"
        out: dict[str, Any] = {"type": [kind, "null"] if self.null else kind, "maximum": self.high}
        out["exclusiveMinimum" if self.open_low else "minimum"] = self.low
        return out


@dataclasses.dataclass(frozen=True)
class Layers:
    """Hidden layer sizes: ``1..max_layers`` integers from 1 to ``max_units``."""

    max_layers: int
    max_units: int

    def __call__(self, value: Any) -> bool:
        return 0 < len(value) <= self.max_layers and all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= self.max_units for n in value
        )

    @property
    def text(self) -> str:
        return f"a list of 1 to {self.max_layers} layer sizes, each an integer from 1 to {self.max_units}"

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "minItems": 1, "maxItems": self.max_layers,
                "items": {"type": "integer", "minimum": 1, "maximum": self.max_units}}


class Param(NamedTuple):
    """A model parameter: the JSON types it takes, its check (a ``Range`` or ``Layers``) and the rule in words."""

    types: tuple[type, ...]
    check: Callable[[Any], bool]
    description: str


def _param(check: Range | Layers) -> Param:
    if isinstance(check, Layers):
        types: tuple[type, ...] = (list,)
    else:
        types = (int,) if check.integer else (int, float)
    return Param(types + ((type(None),) if getattr(check, "null", False) else ()), check, check.text)


# Bounds keep a job finite and its memory modest: n_estimators trees, max_iter epochs, layer sizes.
_ITERATIONS = _param(Range(1, 10_000, integer=True))
_TREES = _param(Range(1, 2_000, integer=True))
_DEPTH = _param(Range(1, 100, integer=True, null=True))
_RATE = _param(Range(0, 10, open_low=True))
_PENALTY = _param(Range(0, 100, open_low=True))
PARAMS: dict[str, dict[str, Param]] = {
    "linear": {"alpha": _PENALTY, "max_iter": _ITERATIONS, "eta0": _RATE},
    "random_forest": {"n_estimators": _TREES, "max_depth": _DEPTH,
                      "min_samples_leaf": _param(Range(1, 100_000, integer=True))},
    "gradient_boosting": {"n_estimators": _TREES, "learning_rate": _RATE, "max_depth": _DEPTH,
                          "subsample": _param(Range(0, 1, open_low=True))},
    "mlp": {"hidden_layer_sizes": _param(Layers(5, 1024)), "alpha": _PENALTY, "learning_rate_init": _RATE,
            "max_iter": _ITERATIONS},
}
for _kind in PARAMS.values():
    # random_state: numpy seeds are 32-bit; test_size: enough rows on both sides of the split.
    _kind.update({"random_state": _param(Range(0, 2**32 - 1, integer=True, null=True)),
                  "test_size": _param(Range(0.05, 0.5))})
MODELS = tuple(PARAMS)


def param_schemas() -> dict[str, dict[str, Any]]:
    """Each model kind's parameters as a JSON Schema object, with their bounds (for the OpenAPI document)."""
    return {
        kind: {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: {**p.check.schema(), "description": p.description} for name, p in params.items()},
        }
        for kind, params in PARAMS.items()
    }


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_params(model: Any, params: Any, problems: dict[str, str]) -> None:
    if not isinstance(params, dict):
        problems["params"] = "must be an object of parameter names to values"
        return
    if not (isinstance(model, str) and model in PARAMS):
        return  # the model's own problem is reported; its parameters cannot be judged
    allowed = PARAMS[model]
    for key, value in params.items():
        if len(problems) >= MAX_PROBLEMS:
            return
        spec = allowed.get(key)
        if spec is None:
            problems[f"params.{key[:64]}"] = f"not a parameter of {model} (allowed: {', '.join(sorted(allowed))})"
        elif isinstance(value, bool) or not isinstance(value, spec.types) or not spec.check(value):
            problems[f"params.{key}"] = f"must be {spec.description}, got {_shown(value)}"


def _validate(values: dict[str, Any], columns: list[str] | None) -> dict[str, str]:
    """Every problem with a pipeline at once, field -> message; ``columns`` None when the dataset is unknown."""
    problems: dict[str, str] = {}
    if (problem := name_problem(values.get("name"))) is not None:
        problems["name"] = problem
    model = values.get("model")
    if not isinstance(model, str) or model not in PARAMS:
        problems["model"] = f"must be one of {', '.join(MODELS)}, got {_shown(model)}"
    _check_params(model, values.get("params"), problems)
    known = set(columns) if columns is not None else None
    target, features = values.get("target"), values.get("features")
    if not isinstance(target, str) or not target or len(target) > MAX_TARGET:
        problems["target"] = f"must be the name of a column of the dataset, got {_shown(target)}"
    elif known is not None and target not in known:
        problems["target"] = f"no column {_shown(target)} in the dataset (columns: {', '.join(columns[:20])})"
    if features is None:
        pass
    elif not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        problems["features"] = "must be a non-empty list of column names, or null for all other columns"
    elif known is not None:
        unknown = [f for f in features if f not in known]
        if unknown:
            listed = ", ".join(_shown(f) for f in unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            problems["features"] = f"not columns of the dataset: {listed}"
        elif target in features:
            problems["features"] = "must not include the target column"
        elif len(set(features)) != len(features):
            problems["features"] = "lists a column twice"
    return problems


class Pipelines:
    def __init__(self, db: Database, hub: Hub, activity: ActivityFeed):
        self.db = db
        self.hub = hub
        self.activity = activity

    def _columns(self, session, dataset_id: int) -> list[str] | None:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            return None
        version = dataset.versions[-1]
        return [c["name"] for c in version.columns]

    def _check(self, session, values: dict[str, Any]) -> None:
        dataset_id, columns = values.get("dataset_id"), None
        if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
            problem = f"must be the integer id of a dataset, got {_shown(dataset_id)}"
        elif not 1 <= dataset_id <= MAX_ID or (columns := self._columns(session, dataset_id)) is None:
            problem = f"no dataset with id {dataset_id}"
        else:
            problem = None
        problems = _validate(values, columns)
        if problem is not None:
            problems["dataset_id"] = problem
        if problems:
            summary = "; ".join(f"{field}: {message}" for field, message in problems.items())
            raise Invalid(f"the pipeline is not valid ({summary})", details=problems)

    def _get(self, session, pipeline_id: int) -> Pipeline:
        pipeline = session.get(Pipeline, pipeline_id)
        if pipeline is None:
            raise NotFound(f"no pipeline with id {pipeline_id}", code="pipeline_not_found")
        return pipeline

    def list(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return [p.to_dict() for p in session.scalars(select(Pipeline).order_by(Pipeline.id))]

    def get(self, pipeline_id: int) -> dict[str, Any]:
        with self.db.session() as session:
            return self._get(session, pipeline_id).to_dict()

    def _commit_unique(self, session, name: str) -> None:
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"a pipeline named {name!r} already exists", code="name_taken", details={"name": name}) from None

    def create(self, body: Any) -> dict[str, Any]:
        values = dict(check_fields(body, FIELDS, REQUIRED))
        values.setdefault("params", {})
        values.setdefault("features", None)
        with self.db.session() as session:
            self._check(session, values)
            pipeline = Pipeline(**{**values, "name": values["name"].strip()})
            session.add(pipeline)
            self._commit_unique(session, values["name"])
            item = pipeline.to_dict()
        after_commit("pipeline_created", self.hub.announce, "pipeline_created", summarised("pipeline_created", item, "features"))
        after_commit(
            "activity", self.activity.record,
            f"Pipeline {item['name']} created: {item['model']} predicting {item['target']}.",
            category="pipeline", level="success", subject_type="pipeline", subject_id=item["id"],
            source_type="pipeline_created",
        )
        return item

    def update(self, pipeline_id: int, body: Any) -> dict[str, Any]:
        changes = check_fields(body, FIELDS)
        with self.db.session() as session:
            pipeline = self._get(session, pipeline_id)
            values = {field: getattr(pipeline, field) for field in FIELDS} | changes
            self._check(session, values)
            for field, value in changes.items():
                setattr(pipeline, field, value.strip() if field == "name" else value)
            self._commit_unique(session, values["name"])
            item = pipeline.to_dict()
        after_commit("pipeline_updated", self.hub.announce, "pipeline_updated", summarised("pipeline_updated", item, "features"))
        changed = ", ".join(sorted(changes)) or "nothing"
        after_commit(
            "activity", self.activity.record,
            f"Pipeline {item['name']} updated ({changed}).", category="pipeline", subject_type="pipeline",
            subject_id=item["id"], source_type="pipeline_updated",
        )
        return item

    def delete(self, pipeline_id: int) -> None:
        """Delete the pipeline, its model versions and jobs (the database cascades) and their artifact files.

        Serving reads the model rows on every request, so the endpoints stop answering at once; a job
        still training notices within a second, stops, and deletes what its process wrote.
        """
        from services.registry import remove_artifacts  # the registry owns the artifact layout

        with self.db.session() as session:
            pipeline = self._get(session, pipeline_id)
            name = pipeline.name
            artifacts = [model.artifact_path for model in pipeline.models]
            session.delete(pipeline)
        remove_artifacts(artifacts)
        self.hub.announce("pipeline_deleted", {"id": pipeline_id, "name": name})
        self.activity.record(
            f"Pipeline {name} deleted.", category="pipeline", level="warning", subject_type="pipeline",
            subject_id=pipeline_id, source_type="pipeline_deleted",
        )
