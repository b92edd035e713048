"""Train a scikit-learn model on a CSV dataset, reporting held-out metrics while it fits, and serve it.

Pure and process-safe: no Flask, database, events, threads or module state. The job runner calls
``load_frame`` and ``train`` in a worker process, forwards ``report(step, total, metrics)`` to the
browser, saves ``Result.model`` with joblib, and answers predictions with ``prepare_instances`` and
``predict``. Every refusal is a ``TrainingFailed`` or an ``InvalidInstances`` with a code for programs
and a message for a person; both survive pickling, so they cross a process boundary intact.

The task follows the target: text or booleans make a classification, and so does a numeric target
whose values are all whole numbers with two distinct values, or at most 20 distinct values and at
least 5 rows per value on average (iris' 0/1/2 labels, a 1-5 rating); any other numeric target is a
regression.

Steps, each followed by a report: ``linear`` and ``mlp`` fit one epoch per step (``partial_fit``),
the forests grow in up to 20 stages (``random_forest`` by ``warm_start``, ``gradient_boosting``
inside one ``fit`` through its ``monitor``). Intermediate metrics are computed in numpy on a fixed
subsample of the held-out rows (1% of the training rows, from 200 to 2,000) and every tree is
evaluated once (running sums), so progress stays cheap beside the fit; the last report carries the
final metrics, on every held-out row, which ``Result.metrics`` repeats.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from services.ingest import _ISO_DATE, Dialect, IngestError, _options, _parser_error, _TextSource

# Parameter names match services.pipelines.PARAMS (the test checks it); None means scikit-learn's choice.
_COMMON = {"random_state": 0, "test_size": 0.2}
DEFAULTS: dict[str, dict[str, Any]] = {
    "linear": {"alpha": 1e-4, "max_iter": 30, "eta0": None, **_COMMON},
    "random_forest": {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 1, **_COMMON},
    "gradient_boosting": {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3, "subsample": 1.0, **_COMMON},
    "mlp": {"hidden_layer_sizes": [100], "alpha": 1e-4, "learning_rate_init": 1e-3, "max_iter": 50, **_COMMON},
}
KINDS = tuple(DEFAULTS)

MIN_ROWS = 10
MAX_INTEGER_CLASSES = 20
ROWS_PER_CLASS = 5
MAX_CATEGORIES = 50  # one-hot columns per text feature; rarer values share one "infrequent" column
ID_SHARE = 0.9  # a text column this distinct is an id or free text, not a category
ID_MIN_DISTINCT = 10
STAGES = 20
EVAL_MIN, EVAL_MAX, EVAL_SHARE = 200, 2_000, 0.01
MAX_INSTANCES = 10_000
MAX_TARGET = 1e100  # a regression target beyond this overflows squared errors
_DATE_SAMPLE = 20


class TrainingFailed(Exception):
    """Training that cannot go on: ``code`` is for programs, ``message`` for a person."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def __reduce__(self):
        return type(self), (self.code, self.message, self.details)


class InvalidInstances(Exception):
    """Prediction input that does not fit the model's schema; ``details`` names the column and row."""

    code = "invalid_instances"

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def __reduce__(self):
        return type(self), (self.message, self.details)


@dataclass
class Result:
    """A trained model and what it needs to be served; everything except ``model`` is JSON-ready.

    ``schema``: the input columns in order, ``{name, type, required}`` with type number, category or
    boolean; category columns add ``categories``, their most frequent values (up to 50). A required
    column was filled in every training row and must be given a value; others may be null or left out,
    and are imputed as in training. ``seconds``: prepare, fit, progress (intermediate metrics),
    callbacks (time inside ``report`` and ``should_stop``) and final (final metrics).
    """

    model: Any
    task: str
    metrics: dict[str, float]
    schema: list[dict[str, Any]]
    classes: list[Any] | None
    target: str
    dropped: dict[str, str]
    n_train: int
    n_test: int
    steps: int
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class StandardizedTarget(RegressorMixin, BaseEstimator):
    """A regressor trained on the target scaled to mean 0, std 1, predicting in the target's own units.

    Gradient-trained models (SGD, MLP) need a target near unit scale to learn in a few epochs;
    sklearn's TransformedTargetRegressor does this but has no ``partial_fit``.
    """

    def __init__(self, regressor: Any = None):
        self.regressor = regressor

    def fit(self, X, y):
        self._scale(y)
        self.regressor.fit(X, (np.asarray(y, dtype=float) - self.mean_) / self.scale_)
        return self

    def partial_fit(self, X, y):
        if not hasattr(self, "mean_"):
            self._scale(y)
        self.regressor.partial_fit(X, (np.asarray(y, dtype=float) - self.mean_) / self.scale_)
        return self

    def predict(self, X):
        return self.regressor.predict(X) * self.scale_ + self.mean_

    def _scale(self, y) -> None:
        values = np.asarray(y, dtype=float)
        self.mean_ = float(values.mean())
        self.scale_ = float(values.std()) or 1.0


# -- reading ---------------------------------------------------------------------------------------


def load_frame(path: Any, dialect: dict[str, Any] | None) -> pd.DataFrame:
    """The whole CSV as the upload read it: same dialect, same encoding fallback, text as ``str``."""
    chosen = _dialect(dialect)
    layout = {"header": None, "names": list(chosen.names), "skiprows": 1} if chosen.names else {"header": 0}
    try:
        with _TextSource(path, chosen.encoding) as source:
            frame = pd.read_csv(source, **_options(chosen), **layout, low_memory=False)
    except IngestError as exc:
        raise TrainingFailed(exc.code, f"the dataset file cannot be read: {exc.message}", exc.details) from None
    except pd.errors.ParserError as exc:
        problem = _parser_error(exc, path, chosen)
        message = f"the dataset file cannot be read: {problem.message}"
        raise TrainingFailed(problem.code, message, problem.details) from None
    except pd.errors.EmptyDataError:
        raise TrainingFailed("empty_file", "the dataset file is empty: there is no header and no data") from None
    except MemoryError:
        raise TrainingFailed("out_of_memory", "the dataset does not fit in memory for training") from None
    except OSError as exc:
        raise TrainingFailed("unreadable_file", f"the dataset file cannot be opened: {exc.strerror or exc}") from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas turns surplus leading fields into an index
        raise TrainingFailed("ragged_rows", "a row of the dataset file has more fields than its header")
    return frame


def _dialect(dialect: dict[str, Any] | None) -> Dialect:
    if not dialect:
        return Dialect()
    known = {f.name for f in fields(Dialect)}
    values = {key: value for key, value in dialect.items() if key in known}
    if values.get("names") is not None:
        values["names"] = tuple(values["names"])
    return Dialect(**values)


# -- training --------------------------------------------------------------------------------------


def train(
    frame: pd.DataFrame,
    *,
    target: str,
    features: list[str] | None = None,
    kind: str,
    params: dict[str, Any] | None = None,
    report: Callable[[int, int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    report_interval_s: float = 0.0,
) -> Result:
    """Fit ``kind`` to predict ``target``, calling ``report`` after every step and ``should_stop`` between steps.

    ``report_interval_s`` > 0 skips the report (and its metrics) of a step that comes sooner than that
    after the last report; the first and last steps are always reported. ``features`` None means every other usable column (the rest go to ``Result.dropped`` with the reason);
    a listed feature that cannot be used is an error.
    """
    try:
        return _train(frame, target, features, kind, params, report, should_stop, report_interval_s)
    except MemoryError:
        raise TrainingFailed("out_of_memory", "ran out of memory while training: use fewer rows or columns, "
                             "or a smaller model") from None


def _train(frame: pd.DataFrame, target: str, features: list[str] | None, kind: str, params: dict[str, Any] | None,
           report: Callable | None, should_stop: Callable[[], bool] | None, report_interval_s: float = 0.0) -> Result:
    started = time.perf_counter()
    settings = _settings(kind, params)
    if len(frame) == 0:
        raise TrainingFailed("too_few_rows", "the dataset has no rows", {"rows": 0, "minimum": MIN_ROWS})
    if target not in frame.columns:
        message = f"the target column {target!r} is not in the dataset ({_names(frame.columns)})"
        raise TrainingFailed("unknown_column", message, {"column": target})
    labels, kept, task, notes = _target(frame[target], target)
    n_rows = int(kept.sum())
    schema, columns, dropped = _features(frame, target, features, kept)
    classes = _check_rows(labels, task, n_rows, target)
    with _sklearn_errors("split the rows into training and test sets"):
        data = _split(_as_frame(columns, schema), labels, task, classes, settings)
    with _sklearn_errors("prepare the features"):
        prepare = _preprocessor(schema)
        data.prepare(prepare)
    progress = _Progress(report, should_stop, report_interval_s)
    prepared = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", r".*(overflow|invalid value)", RuntimeWarning)  # reported as "diverged"
        estimator = _FIT[kind](data, task, classes, settings, progress)
    fitted = time.perf_counter()
    fit_seconds = fitted - prepared - progress.evaluating - progress.calling
    model = Pipeline([("prepare", prepare), ("model", estimator)])
    with _sklearn_errors("evaluate the model"):
        metrics = data.final_metrics(model, estimator)
    _check_finite(metrics)
    progress.finish(metrics)
    return Result(
        model=model,
        task=task,
        metrics=metrics,
        schema=schema,
        classes=classes.tolist() if classes is not None else None,
        target=target,
        dropped=dropped,
        n_train=data.n_train,
        n_test=data.n_test,
        steps=progress.total,
        notes=notes,
        seconds={
            "prepare": round(prepared - started, 6),
            "fit": round(fit_seconds, 6),
            "progress": round(progress.evaluating, 6),
            "callbacks": round(progress.calling, 6),
            "final": round(time.perf_counter() - fitted, 6),
        },
    )


def _settings(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    if kind not in DEFAULTS:
        message = f"unknown model kind {kind!r}: use one of {', '.join(KINDS)}"
        raise TrainingFailed("unknown_model", message, {"model": kind})
    unknown = sorted(set(params or {}) - set(DEFAULTS[kind]))
    if unknown:
        raise TrainingFailed("bad_params", f"not parameters of {kind}: {', '.join(unknown)} "
                             f"(allowed: {', '.join(sorted(DEFAULTS[kind]))})", {"params": unknown})
    return {**DEFAULTS[kind], **(params or {})}


def _names(columns: Any, limit: int = 20) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(names[:limit])
    return f"columns: {shown}" + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _target(series: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
    """(labels of the kept rows, mask of kept rows, task, notes); rows without a target value are left out."""
    notes: list[str] = []
    if pd.api.types.is_bool_dtype(series.dtype):
        kept = np.ones(len(series), dtype=bool)
        values = series.to_numpy(dtype=bool)
        kind = "boolean"
    elif pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_complex_dtype(series.dtype):
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        kept = np.isfinite(numbers)
        values = numbers[kept]
        kind = "number"
    else:
        kept = series.notna().to_numpy()
        present = series[kept]
        if len(present) and pd.api.types.infer_dtype(present, skipna=True) == "boolean":
            values, kind = present.to_numpy(dtype=bool), "boolean"
        else:
            values, kind = np.array([str(v) for v in present.tolist()], dtype=object), "text"
    if not kept.any():
        raise TrainingFailed("target_missing", f"the target column {name!r} has no values: every row is empty there",
                             {"column": name})
    missing = len(series) - int(kept.sum())
    if missing:
        notes.append(f"{missing} of {len(series)} rows have no value in the target {name!r} and were left out")
    whole = kind == "number" and bool(np.all(values == np.round(values))) and float(np.abs(values).max()) < 2**53
    distinct = pd.unique(values.astype(np.int64) if whole else values)
    if len(distinct) == 1:
        raise TrainingFailed(
            "one_class",
            f"every row holds the same target value ({_shown(distinct[0])}) in {name!r}: "
            "a model needs at least two different values to learn from",
            {"column": name, "value": _json(distinct[0])},
        )
    if kind != "number":
        return values, kept, "classification", notes
    few = len(distinct) == 2 or (len(distinct) <= MAX_INTEGER_CLASSES and len(distinct) * ROWS_PER_CLASS <= len(values))
    if whole and few:
        return values.astype(np.int64), kept, "classification", notes
    largest = float(np.abs(values).max())
    if largest > MAX_TARGET:
        raise TrainingFailed(
            "target_too_large",
            f"the target {name!r} holds values as large as {largest:.3g}, too large for squared errors to be computed: "
            "rescale it (for example to thousands or millions)",
            {"column": name, "largest": largest},
        )
    return values, kept, "regression", notes


def _features(
    frame: pd.DataFrame, target: str, features: list[str] | None, kept: np.ndarray
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], dict[str, str]]:
    """Schema, canonical columns (float64, or object with str values and NaN) and what was left out."""
    explicit = features is not None
    if explicit and not features:
        raise TrainingFailed("no_features", "no feature columns were chosen")
    if explicit:
        unknown = [f for f in features if f not in frame.columns]
        if unknown:
            listed = ", ".join(repr(f) for f in unknown)
            message = f"feature column(s) {listed} not in the dataset ({_names(frame.columns)})"
            raise TrainingFailed("unknown_column", message, {"column": unknown[0], "columns": unknown})
        for name in features:
            if name == target:
                raise TrainingFailed("unusable_column", f"the feature {name!r} is the target itself", {"column": name})
        if len(set(features)) != len(features):
            twice = next(f for f in features if features.count(f) > 1)
            raise TrainingFailed("unusable_column", f"the feature {twice!r} is listed twice", {"column": twice})
    candidates = list(features) if explicit else [c for c in frame.columns if c != target]
    schema: list[dict[str, Any]] = []
    columns: dict[str, np.ndarray] = {}
    dropped: dict[str, str] = {}
    for name in candidates:
        entry, values, why = _feature(frame[name], kept)
        if why is not None:
            if explicit:
                raise TrainingFailed("unusable_column", f"the feature {name!r} cannot be used: {why}",
                                     {"column": name, "reason": why})
            dropped[str(name)] = why
            continue
        schema.append({"name": str(name), **entry})
        columns[str(name)] = values
    if not schema:
        why = "; ".join(f"{name!r}: {reason}" for name, reason in list(dropped.items())[:5])
        more = f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
        message = f"no column can be used as a feature ({why}{more})" if dropped else "the dataset has only the target"
        raise TrainingFailed("no_features", message, {"dropped": dropped})
    return schema, columns, dropped


def _feature(series: pd.Series, kept: np.ndarray) -> tuple[dict[str, Any], np.ndarray | None, str | None]:
    """(schema entry without name, canonical values, None) for a usable column, or ({}, None, why)."""
    series = series[kept]
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return {}, None, "it holds dates or times, which the models do not use"
    inferred = None
    if pd.api.types.is_bool_dtype(dtype):
        kind = "boolean"
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        kind = "number"
    elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        kind = {"boolean": "boolean", "integer": "number", "floating": "number", "mixed-integer-float": "number"}.get(
            inferred, "category")
    else:
        return {}, None, f"its values ({dtype}) are neither numbers, text nor booleans"
    if kind == "number":
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan, copy=True)
        values[np.isinf(values)] = np.nan
        present = values[~np.isnan(values)]
    else:
        values = series.to_numpy(dtype=object, na_value=np.nan)
        missing = pd.isna(values)
        if kind == "boolean" or inferred != "string":
            values = values.copy()
            values[~missing] = [_text(v) for v in values[~missing].tolist()]
        present = values[~missing]
    if len(present) == 0:
        return {}, None, "every value is missing"
    counts = pd.Series(present).value_counts()
    if len(counts) == 1:
        return {}, None, f"every row holds the same value ({_shown(counts.index[0])})"
    if kind == "category":
        if _looks_like_dates(present):
            return {}, None, "it holds dates or times, which the models do not use"
        if len(counts) >= max(ID_MIN_DISTINCT, ID_SHARE * len(present)):
            why = f"nearly every row has a different value ({len(counts)} distinct in {len(present)} rows)"
            return {}, None, f"{why}, like an id or free text"
    entry: dict[str, Any] = {"type": kind, "required": len(present) == len(values)}
    if kind == "category":
        entry["categories"] = [str(v) for v in counts.index[:MAX_CATEGORIES].tolist()]
    return entry, values, None


def _text(value: Any) -> str:
    """A category value as training stores it: booleans as True/False, everything as its text."""
    return str(bool(value)) if isinstance(value, (bool, np.bool_)) else str(value)


def _looks_like_dates(present: np.ndarray) -> bool:
    if not all(_ISO_DATE.fullmatch(v) for v in present[:_DATE_SAMPLE]):
        return False
    try:
        pd.to_datetime(pd.Series(present), format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _check_rows(labels: np.ndarray, task: str, n_rows: int, target: str) -> np.ndarray | None:
    """The sorted classes for a classification; refuses data too small to split into train and test."""
    if n_rows < MIN_ROWS:
        message = f"only {n_rows} rows have a target value; training needs at least {MIN_ROWS}"
        raise TrainingFailed("too_few_rows", message, {"rows": n_rows, "minimum": MIN_ROWS})
    if task != "classification":
        return None
    classes, counts = np.unique(labels, return_counts=True)
    lonely = [_json(c) for c, n in zip(classes.tolist(), counts.tolist()) if n < 2]
    if lonely:
        shown = ", ".join(_shown(c) for c in lonely[:5]) + (f" and {len(lonely) - 5} more" if len(lonely) > 5 else "")
        raise TrainingFailed(
            "too_few_rows",
            f"the target {target!r} has classes with a single row ({shown}): each class needs at least two rows, "
            "one to learn from and one to test on; remove those rows or merge the rare classes",
            {"column": target, "classes": lonely[:20]},
        )
    return classes


def _shown(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _json(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _as_frame(columns: dict[str, Any], schema: list[dict[str, Any]]) -> pd.DataFrame:
    """The model's input: float64 numbers, object text. Training and serving both build frames here."""
    return pd.DataFrame(
        {c["name"]: pd.Series(columns[c["name"]], dtype="float64" if c["type"] == "number" else object, copy=False)
         for c in schema},
        copy=False,
    )


def _preprocessor(schema: list[dict[str, Any]]) -> ColumnTransformer:
    numbers = [c["name"] for c in schema if c["type"] == "number"]
    others = [c["name"] for c in schema if c["type"] != "number"]
    parts = []
    if numbers:
        scale = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        parts.append(("number", scale, numbers))
    if others:
        encode = Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", max_categories=MAX_CATEGORIES)),
        ])
        parts.append(("category", encode, others))
    return ColumnTransformer(parts)


@contextmanager
def _sklearn_errors(doing: str) -> Iterator[None]:
    """scikit-learn's exceptions as TrainingFailed with a sentence; ours pass through unchanged."""
    try:
        yield
    except TrainingFailed:
        raise
    except MemoryError:
        raise TrainingFailed("out_of_memory", f"ran out of memory trying to {doing}: use fewer rows or columns, "
                             "or a smaller model") from None
    except (ValueError, FloatingPointError, ArithmeticError) as exc:
        text = str(exc)
        if isinstance(exc, ArithmeticError) or "overflow" in text.lower() or "non-finite" in text.lower():
            raise _diverged(text) from exc  # sklearn's advice to scale the input does not apply: it is scaled
        raise TrainingFailed("training_failed", f"scikit-learn could not {doing}: {text}") from exc
    except Exception as exc:
        raise TrainingFailed("training_failed", f"scikit-learn could not {doing}: {type(exc).__name__}: {exc}") from exc


def _diverged(detail: str) -> TrainingFailed:
    return TrainingFailed(
        "diverged",
        "training diverged: the model's weights grew without bound; "
        "try a smaller learning rate (eta0, learning_rate_init) or a larger alpha",
        {"detail": detail},
    )


def _check_finite(metrics: dict[str, float]) -> None:
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise _diverged(f"{', '.join(bad)} not finite")


# -- split and evaluation --------------------------------------------------------------------------


class _Data:
    """The split, the transformed matrices and the fixed evaluation subsamples."""

    def __init__(self, frame: pd.DataFrame, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                 task: str, classes: np.ndarray | None, seed: int | None):
        self.task, self.classes = task, classes
        self.frame_train, self.frame_test = frame.iloc[train], frame.iloc[test]
        self.y_train, self.y_test = labels[train], labels[test]
        self.n_train, self.n_test = len(train), len(test)
        rng = np.random.default_rng(seed)
        n_eval = min(self.n_test, max(EVAL_MIN, min(EVAL_MAX, int(self.n_train * EVAL_SHARE))))
        self.eval_rows = _subsample(rng, self.n_test, n_eval)
        self.fit_rows = _subsample(rng, self.n_train, min(n_eval, self.n_train))
        self.y_eval, self.y_fit = self._truth(self.y_test[self.eval_rows]), self._truth(self.y_train[self.fit_rows])

    def _truth(self, labels: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.classes, labels) if self.task == "classification" else labels.astype(float)

    def prepare(self, prepare: ColumnTransformer) -> None:
        """Transform once; the probe rows (evaluation rows, then fit rows) go to the model in one call per report."""
        self.X_train = prepare.fit_transform(self.frame_train)
        X_eval = prepare.transform(self.frame_test.iloc[self.eval_rows])
        stack = sparse.vstack if sparse.issparse(X_eval) else np.vstack
        self.X_probe = stack([X_eval, self.X_train[self.fit_rows]])
        self.n_eval = len(self.eval_rows)

    def metrics(self, outputs: np.ndarray) -> dict[str, float]:
        """Metrics from model outputs on the probe rows: probabilities, or predictions for a regression."""
        classify = self.task == "classification"
        metrics = (_classification_metrics if classify else _regression_metrics)(outputs[: self.n_eval], self.y_eval)
        metrics["train_loss"] = (_log_loss if classify else _squared_error)(outputs[self.n_eval :], self.y_fit)
        return metrics

    def outputs(self, estimator: Any) -> np.ndarray:
        if self.task == "classification":
            return estimator.predict_proba(self.X_probe)
        return estimator.predict(self.X_probe)

    def final_metrics(self, model: Pipeline, estimator: Any) -> dict[str, float]:
        """Every held-out row, through the whole pipeline as it will be served."""
        score = _classification_metrics if self.task == "classification" else _regression_metrics
        test = model.predict_proba(self.frame_test) if self.task == "classification" else model.predict(self.frame_test)
        metrics = score(test, self._truth(self.y_test))
        metrics["train_loss"] = self.metrics(self.outputs(estimator))["train_loss"]
        return metrics


def _split(frame: pd.DataFrame, labels: np.ndarray, task: str, classes: np.ndarray | None,
           settings: dict[str, Any]) -> _Data:
    n = len(labels)
    n_test = max(math.ceil(settings["test_size"] * n), 2, len(classes) if classes is not None else 0)
    train, test = train_test_split(
        np.arange(n), test_size=n_test, random_state=settings["random_state"],
        stratify=labels if task == "classification" else None,
    )
    return _Data(frame, labels, np.sort(train), np.sort(test), task, classes, settings["random_state"])


def _subsample(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    if size >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def _log_loss(proba: np.ndarray, truth: np.ndarray) -> float:
    eps = np.finfo(np.float64).eps
    picked = np.clip(proba[np.arange(len(truth)), truth].astype(np.float64), eps, 1 - eps)
    return float(-np.log(picked).mean())


def _squared_error(predicted: np.ndarray, truth: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        error = np.asarray(predicted, dtype=np.float64) - truth
        return float(np.dot(error, error)) / len(truth)


def _classification_metrics(proba: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Log loss, accuracy and macro F1 as sklearn.metrics computes them, in microseconds not milliseconds."""
    k = proba.shape[1]
    guess = proba.argmax(axis=1)
    right = guess == truth
    hits = np.bincount(truth[right], minlength=k)
    actual, guessed = np.bincount(truth, minlength=k), np.bincount(guess, minlength=k)
    seen = (actual + guessed) > 0  # sklearn averages over the labels present in either
    return {
        "loss": _log_loss(proba, truth),
        "accuracy": float(right.mean()),
        "f1": float((2 * hits[seen] / (actual[seen] + guessed[seen])).mean()),
    }


def _regression_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    with np.errstate(over="ignore", invalid="ignore"):
        error = np.asarray(predicted, dtype=np.float64) - truth
        squared = float(np.dot(error, error))
        total = float(np.sum((truth - truth.mean()) ** 2))
    r2 = 1 - squared / total if total > 0 else (1.0 if squared == 0 else 0.0)
    return {"loss": squared / len(truth), "r2": float(r2), "mae": float(np.abs(error).mean())}


class _Progress:
    """Reports and stop checks between steps; times what they cost apart from the fit."""

    def __init__(self, report: Callable | None, should_stop: Callable[[], bool] | None, min_interval_s: float = 0.0):
        self.report, self.should_stop = report, should_stop
        self.min_interval_s = min_interval_s
        self.last_report = -math.inf
        self.total = 0
        self.evaluating = 0.0
        self.calling = 0.0

    def evaluate(self, compute: Callable[[], dict[str, float]]) -> dict[str, float]:
        started = time.perf_counter()
        with _sklearn_errors("evaluate the model"):
            metrics = compute()
        _check_finite(metrics)
        self.evaluating += time.perf_counter() - started
        return metrics

    def step(self, step: int, metrics: Callable[[], dict[str, float]]) -> None:
        """After fitting step ``step``: report it, then ask whether to stop; the last step waits for ``finish``."""
        if step == self.total:
            return
        # Metrics no one will see are not computed: with min_interval_s, steps closer together than
        # that are not reported (the last step always is, by finish).
        due = self.report is not None and time.perf_counter() - self.last_report >= self.min_interval_s
        values = self.evaluate(metrics) if due else None
        started = time.perf_counter()
        try:
            if due:
                self.report(step, self.total, values)
                self.last_report = time.perf_counter()
            stop = self.should_stop is not None and self.should_stop()
        finally:
            self.calling += time.perf_counter() - started
        if stop:
            raise TrainingFailed("cancelled", f"training was cancelled after step {step} of {self.total}",
                                 {"step": step, "total": self.total})

    def finish(self, metrics: dict[str, float]) -> None:
        started = time.perf_counter()
        if self.report is not None:
            self.report(self.total, self.total, dict(metrics))
        self.calling += time.perf_counter() - started


# -- the four model kinds --------------------------------------------------------------------------


def _seed(settings: dict[str, Any]) -> np.random.RandomState | None:
    """One generator for the whole fit: with an int, partial_fit would reshuffle every epoch the same way."""
    seed = settings["random_state"]
    return None if seed is None else np.random.RandomState(seed)


def _fit_epochs(
    data: _Data, task: str, classes: np.ndarray | None, settings: dict[str, Any], progress: _Progress, kind: str
) -> Any:
    estimator = _gradient_model(kind, task, settings, data.n_train)
    progress.total = settings["max_iter"]
    for step in range(1, progress.total + 1):
        with _sklearn_errors("fit the model"):
            if step == 1 and classes is not None:
                estimator.partial_fit(data.X_train, data.y_train, classes=classes)
            else:
                estimator.partial_fit(data.X_train, data.y_train)
        outputs = _linear_outputs if kind == "linear" else _mlp_outputs
        progress.step(step, lambda: data.metrics(outputs(estimator, data.X_probe)))
    return estimator


# predict_proba and predict check their input at a cost of about a millisecond, which on a small dataset
# is more than an epoch's work; these compute the same from the fitted weights (the tests check that).


def _linear_outputs(model: Any, X: Any) -> np.ndarray:
    """SGD's predict_proba (log loss: one-vs-rest sigmoids, normalized) or predict."""
    classify = isinstance(model, SGDClassifier)
    inner = model if classify else model.regressor
    scores = np.asarray(X @ inner.coef_.T + inner.intercept_)
    if not classify:
        return scores * model.scale_ + model.mean_
    if scores.shape[1] == 1:
        positive = expit(scores[:, 0])
        return np.column_stack([1 - positive, positive])
    scores = expit(scores)
    return scores / scores.sum(axis=1, keepdims=True)


def _mlp_outputs(model: Any, X: Any) -> np.ndarray:
    """The MLP's forward pass (ReLU hidden layers) as predict_proba or predict computes it."""
    classify = isinstance(model, MLPClassifier)
    inner = model if classify else model.regressor
    last = len(inner.coefs_) - 1
    values = X
    for layer, (weights, bias) in enumerate(zip(inner.coefs_, inner.intercepts_)):
        values = np.asarray(values @ weights) + bias
        if layer < last:
            np.maximum(values, 0, out=values)
    if not classify:
        return values[:, 0] * model.scale_ + model.mean_
    if values.shape[1] == 1:
        positive = expit(values[:, 0])
        return np.column_stack([1 - positive, positive])
    return _softmax(values)


def _softmax(raw: np.ndarray) -> np.ndarray:
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _gradient_model(kind: str, task: str, settings: dict[str, Any], n_train: int) -> Any:
    seed = _seed(settings)
    if kind == "linear":
        schedule = {} if settings["eta0"] is None else {"learning_rate": "invscaling", "eta0": settings["eta0"]}
        if task == "classification":
            return SGDClassifier(loss="log_loss", alpha=settings["alpha"], random_state=seed, **schedule)
        return StandardizedTarget(SGDRegressor(alpha=settings["alpha"], random_state=seed, **schedule))
    # Mini-batches of a tenth of the rows (16 to 200), so a small dataset still gets several updates per epoch.
    options = {
        "hidden_layer_sizes": tuple(settings["hidden_layer_sizes"]),
        "alpha": settings["alpha"],
        "learning_rate_init": settings["learning_rate_init"],
        "batch_size": min(200, max(16, n_train // 10)),
        "activation": "relu",  # _mlp_outputs relies on it
        "random_state": seed,
    }
    if task == "classification":
        return MLPClassifier(**options)
    return StandardizedTarget(MLPRegressor(**options))


def _stage_ends(n_estimators: int) -> list[int]:
    """Tree counts after each step: up to STAGES evenly spread stages ending at ``n_estimators``."""
    stages = min(STAGES, n_estimators)
    return [math.ceil(n_estimators * i / stages) for i in range(1, stages + 1)]


def _float32(X: Any, layout: str) -> Any:
    """Trees work in float32 (csc to fit, csr_matrix to predict): converting once saves a copy per stage."""
    if sparse.issparse(X):
        return (sparse.csc_matrix if layout == "csc" else sparse.csr_matrix)(X, dtype=np.float32)
    return np.ascontiguousarray(X, dtype=np.float32)


def _fit_forest(
    data: _Data, task: str, classes: np.ndarray | None, settings: dict[str, Any], progress: _Progress
) -> Any:
    options = {
        "max_depth": settings["max_depth"],
        "min_samples_leaf": settings["min_samples_leaf"],
        "random_state": settings["random_state"],
        "warm_start": True,
        "n_jobs": 1,
    }
    classify = task == "classification"
    estimator = (RandomForestClassifier if classify else RandomForestRegressor)(n_estimators=1, **options)
    X, probe = _float32(data.X_train, "csc"), _float32(data.X_probe, "csr")
    sums = np.zeros((probe.shape[0], len(classes)) if classify else probe.shape[0])
    done = 0
    ends = _stage_ends(settings["n_estimators"])
    progress.total = len(ends)
    for step, end in enumerate(ends, 1):
        with _sklearn_errors("fit the model"):
            estimator.set_params(n_estimators=end)
            estimator.fit(X, data.y_train)

        def metrics(end: int = end) -> dict[str, float]:
            """The forest's average from running sums: each tree is evaluated once, not once per report."""
            nonlocal done
            for tree in estimator.estimators_[done:end]:
                predict = tree.predict_proba if classify else tree.predict
                sums[...] += predict(probe, check_input=False)
            done = end
            return data.metrics(sums / end)

        progress.step(step, metrics)
    return estimator


def _fit_boosting(
    data: _Data, task: str, classes: np.ndarray | None, settings: dict[str, Any], progress: _Progress
) -> Any:
    classify = task == "classification"
    options = {
        "n_estimators": settings["n_estimators"],
        "learning_rate": settings["learning_rate"],
        "max_depth": settings["max_depth"],
        "subsample": settings["subsample"],
        "random_state": settings["random_state"],
    }
    estimator = (GradientBoostingClassifier if classify else GradientBoostingRegressor)(**options)
    probe = _float32(data.X_probe, "csr")
    ends = _stage_ends(settings["n_estimators"])
    step_of = {end: step for step, end in enumerate(ends, 1)}
    progress.total = len(ends)
    raw = np.empty(0)
    stopped: list[BaseException] = []

    def add_stage(i: int, model: Any) -> None:
        """Raw scores as GradientBoosting computes them: the init estimator's, plus learning_rate x each tree."""
        nonlocal raw
        if i == 0:
            raw = np.tile(_init_raw(model.init_, probe, classify), (probe.shape[0], 1))
        for k, tree in enumerate(model.estimators_[i]):  # tree_.predict: a third of predict's cost, same values
            raw[:, k] += model.learning_rate * tree.tree_.predict(probe).ravel()

    def monitor(i: int, model: Any, _locals: dict[str, Any]) -> bool:
        """Called by fit after each tree; returning True ends the fit."""
        try:
            started = time.perf_counter()
            with _sklearn_errors("evaluate the model"):
                add_stage(i, model)
            progress.evaluating += time.perf_counter() - started
            if i + 1 in step_of:
                progress.step(step_of[i + 1], lambda: data.metrics(_raw_outputs(raw, classify)))
        except BaseException as exc:  # re-raised once fit returns, so fit's own error handling stays out of it
            stopped.append(exc)
            return True
        return False

    with _sklearn_errors("fit the model"):
        estimator.fit(data.X_train, data.y_train, monitor=monitor)
    if stopped:
        raise stopped[0]
    return estimator


def _init_raw(init: Any, rows: Any, classify: bool) -> np.ndarray:
    """One row of the init estimator's raw score: log-odds of the class priors, or the mean target."""
    if not classify:
        return np.array([float(init.predict(rows[:1])[0])])
    eps = np.finfo(np.float32).eps
    prior = np.clip(init.predict_proba(rows[:1])[0].astype(np.float64), eps, 1 - eps)
    if len(prior) == 2:
        return np.array([np.log(prior[1] / prior[0])])
    return np.log(prior)


def _raw_outputs(raw: np.ndarray, classify: bool) -> np.ndarray:
    if not classify:
        return raw[:, 0].copy()
    if raw.shape[1] == 1:
        positive = expit(raw[:, 0])
        return np.column_stack([1 - positive, positive])
    return _softmax(raw)


_FIT: dict[str, Callable[..., Any]] = {
    "linear": lambda *args: _fit_epochs(*args, kind="linear"),
    "mlp": lambda *args: _fit_epochs(*args, kind="mlp"),
    "random_forest": _fit_forest,
    "gradient_boosting": _fit_boosting,
}


# -- serving ---------------------------------------------------------------------------------------


_ABSENT = object()
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def prepare_instances(schema: list[dict[str, Any]], instances: Any) -> pd.DataFrame:
    """JSON instances (a list of objects) as the model's input frame, or InvalidInstances naming the problem.

    Numbers take JSON numbers or numeric text; categories take text, numbers or booleans (read as the
    training text); booleans take true/false (or "true"/"false", 1/0). A column that was always filled
    in training must be given a value; the others may be null or left out.
    """
    if not isinstance(instances, list) or not 1 <= len(instances) <= MAX_INSTANCES:
        count = len(instances) if isinstance(instances, list) else None
        raise InvalidInstances(f"instances must be a list of 1 to {MAX_INSTANCES} objects"
                               + (f", got {count}" if count is not None else ""), {"count": count})
    names = [column["name"] for column in schema]
    known = set(names)
    values: dict[str, list[Any]] = {name: [] for name in names}
    for row, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise InvalidInstances(f"instance {row} is not an object of column values", {"row": row})
        if len(instance) > len(names) or not known.issuperset(instance):
            unknown = sorted(str(key) for key in instance if key not in known)
            raise InvalidInstances(
                f"instance {row} has column(s) the model does not use: {', '.join(unknown)} "
                f"(columns: {', '.join(names)})",
                {"row": row, "column": unknown[0], "columns": unknown},
            )
        for column in schema:
            name = column["name"]
            value = instance.get(name, _ABSENT)
            if type(value) is float and column["type"] == "number" and math.isfinite(value):
                values[name].append(value)  # the common case, without a call per cell
                continue
            if value is _ABSENT or value is None:
                if column.get("required", True):
                    what = "lacks" if value is _ABSENT else "has null for"
                    raise InvalidInstances(
                        f"instance {row} {what} the column {name!r}, which the model needs a value for",
                        {"row": row, "column": name},
                    )
                values[name].append(np.nan)
            else:
                values[name].append(_convert(column, value, row))
    if all(c["type"] == "number" for c in schema):
        # One float block, not a column each: building it and selecting from it is several times faster.
        return pd.DataFrame(np.array([values[name] for name in names], dtype="float64").T, columns=names, copy=False)
    return _as_frame(
        {c["name"]: np.array(values[c["name"]], dtype="float64" if c["type"] == "number" else object) for c in schema},
        schema,
    )


def _convert(column: dict[str, Any], value: Any, row: int) -> Any:
    kind, name = column["type"], column["name"]
    if kind == "number":
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise InvalidInstances(f"instance {row}: the column {name!r} takes a number, not {_described(value)}",
                                   {"row": row, "column": name})
        try:
            number = float(number)
        except OverflowError:  # an integer past float range
            number = math.inf
        if not math.isfinite(number):
            raise InvalidInstances(f"instance {row}: the column {name!r} takes a finite number, not {value!r}",
                                   {"row": row, "column": name})
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE or text in _FALSE:
                return str(text in _TRUE)
        elif isinstance(value, (int, float)) and value in (0, 1):
            return str(value == 1)
        raise InvalidInstances(f"instance {row}: the column {name!r} takes true or false, not {_described(value)}",
                               {"row": row, "column": name})
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        # JSON's 1 and 1.0 are one number; the training text may have been either "1" or "1.0".
        try:
            candidates = [str(value), str(float(value))] if isinstance(value, int) else [str(value)]
        except OverflowError:  # an integer past float range has only its digits
            candidates = [str(value)]
        if isinstance(value, float) and value.is_integer():
            candidates.append(str(int(value)))
        seen = column.get("categories") or ()
        return next((text for text in candidates if text in seen), candidates[0])
    raise InvalidInstances(f"instance {row}: the column {name!r} takes text or a number, not {_described(value)}",
                           {"row": row, "column": name})


def _described(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, (list, dict)):
        return "a JSON array" if isinstance(value, list) else "a JSON object"
    return f"{type(value).__name__} {str(value)[:40]}"


def predict(model: Any, task: str, frame: pd.DataFrame, classes: list[Any] | None) -> dict[str, Any]:
    """JSON-ready predictions; a classifier's are its most probable classes, with every class's probability."""
    if task == "classification":
        proba = model.predict_proba(frame)
        return {
            "predictions": [classes[i] for i in proba.argmax(axis=1).tolist()],
            "probabilities": proba.tolist(),
        }
    values = np.asarray(model.predict(frame), dtype=float).tolist()
    return {"predictions": [value if math.isfinite(value) else None for value in values]}
