"""Pipelines: a dataset, a target column, a model kind and its parameters, validated before storing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from events.hub import Hub
from services.activity import ActivityFeed
from services.validation import check_fields, name_problem
from services.errors import Conflict, Invalid, NotFound
from storage.db import Database
from storage.models import Dataset, Pipeline

FIELDS = {"name", "dataset_id", "target", "model", "params", "features"}
REQUIRED = {"name", "dataset_id", "target", "model"}

# Parameters each model kind accepts: name -> (types, check, description). Training reads the same names.
_POSITIVE_INT = ((int,), lambda v: v >= 1, "an integer >= 1")
_POSITIVE_FLOAT = ((int, float), lambda v: v > 0, "a number > 0")
_OPTIONAL_DEPTH = ((int, type(None)), lambda v: v is None or v >= 1, "an integer >= 1 or null")
_SEED = ((int, type(None)), lambda v: v is None or v >= 0, "an integer >= 0 or null")
_TEST_SIZE = ((int, float), lambda v: 0.05 <= v <= 0.5, "a fraction from 0.05 to 0.5")
PARAMS: dict[str, dict[str, tuple]] = {
    "linear": {"alpha": _POSITIVE_FLOAT, "max_iter": _POSITIVE_INT, "eta0": _POSITIVE_FLOAT},
    "random_forest": {"n_estimators": _POSITIVE_INT, "max_depth": _OPTIONAL_DEPTH, "min_samples_leaf": _POSITIVE_INT},
    "gradient_boosting": {
        "n_estimators": _POSITIVE_INT,
        "learning_rate": _POSITIVE_FLOAT,
        "max_depth": _OPTIONAL_DEPTH,
        "subsample": ((int, float), lambda v: 0 < v <= 1, "a fraction in (0, 1]"),
    },
    "mlp": {
        "hidden_layer_sizes": ((list,), lambda v: 0 < len(v) <= 5 and all(isinstance(n, int) and 1 <= n <= 4096 for n in v),
                               "a list of 1-5 layer sizes from 1 to 4096"),
        "alpha": _POSITIVE_FLOAT,
        "learning_rate_init": _POSITIVE_FLOAT,
        "max_iter": _POSITIVE_INT,
    },
}
for _kind in PARAMS.values():
    _kind.update({"random_state": _SEED, "test_size": _TEST_SIZE})
MODELS = tuple(PARAMS)


def _validate(values: dict[str, Any], columns: list[str] | None) -> dict[str, str]:
    """Every problem with a pipeline at once, field -> message."""
    problems: dict[str, str] = {}
    name = values.get("name")
    if (problem := name_problem(name)) is not None:
        problems["name"] = problem
    model = values.get("model")
    if model not in PARAMS:
        problems["model"] = f"must be one of {', '.join(MODELS)}"
    params = values.get("params")
    if not isinstance(params, dict):
        problems["params"] = "must be an object of parameter names to values"
    elif model in PARAMS:
        for key, value in params.items():
            spec = PARAMS[model].get(key)
            if spec is None:
                problems[f"params.{key}"] = f"not a parameter of {model} (allowed: {', '.join(sorted(PARAMS[model]))})"
            elif isinstance(value, bool) or not isinstance(value, spec[0]) or not spec[1](value):
                problems[f"params.{key}"] = f"must be {spec[2]}"
    target, features = values.get("target"), values.get("features")
    if columns is not None:
        if target not in columns:
            problems["target"] = f"no column {target!r} in the dataset (columns: {', '.join(columns[:20])})"
        if features is not None:
            if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
                problems["features"] = "must be a non-empty list of column names, or null for all other columns"
            else:
                unknown = [f for f in features if f not in columns]
                if unknown:
                    problems["features"] = f"not columns of the dataset: {', '.join(unknown)}"
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

    def _columns(self, session, dataset_id: Any) -> list[str] | None:
        if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
            return None
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            return None
        version = dataset.versions[-1]
        return [c["name"] for c in version.columns]

    def _check(self, session, values: dict[str, Any]) -> None:
        columns = self._columns(session, values.get("dataset_id"))
        problems = _validate(values, columns)
        if columns is None:
            problems["dataset_id"] = f"no dataset with id {values.get('dataset_id')!r}"
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
        self.hub.announce("pipeline_created", item)
        self.activity.record(
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
        self.hub.announce("pipeline_updated", item)
        changed = ", ".join(sorted(changes)) or "nothing"
        self.activity.record(
            f"Pipeline {item['name']} updated ({changed}).", category="pipeline", subject_type="pipeline",
            subject_id=item["id"], source_type="pipeline_updated",
        )
        return item

    def delete(self, pipeline_id: int) -> None:
        with self.db.session() as session:
            pipeline = self._get(session, pipeline_id)
            name = pipeline.name
            session.delete(pipeline)
        self.hub.announce("pipeline_deleted", {"id": pipeline_id, "name": name})
        self.activity.record(
            f"Pipeline {name} deleted.", category="pipeline", level="warning", subject_type="pipeline",
            subject_id=pipeline_id, source_type="pipeline_deleted",
        )
