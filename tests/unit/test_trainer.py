"""Training and serving on real datasets shipped by scikit-learn and plotly: no mocks, small models."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json
import math
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from ml import trainer
from ml.trainer import InvalidInstances, TrainingFailed
from services import ingest
from tests.conftest import need

REPO = Path(__file__).resolve().parents[2]
# Small models keep the file fast; the defaults get one test of their own.
FAST = {
    "linear": {"max_iter": 10},
    "random_forest": {"n_estimators": 20},
    "gradient_boosting": {"n_estimators": 20},
    "mlp": {"max_iter": 20},
}
CLASSIFICATION = ("iris", "wine_data", "breast_cancer")


def package_dir(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    need(spec is not None and spec.origin is not None, f"{package} is not installed (see requirements.txt)")
    return Path(spec.origin).parent.joinpath(*parts)


def read(path: Path) -> pd.DataFrame:
    """A CSV exactly as the upload would read it: dialect from ingest.sniff, passed on as a dict."""
    return trainer.load_frame(path, dataclasses.asdict(ingest.sniff(path)))


@pytest.fixture(scope="module")
def sklearn_data() -> Path:
    return package_dir("sklearn", "datasets", "data")


@pytest.fixture(scope="module")
def frames(sklearn_data, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """iris, wine and breast cancer from scikit-learn's CSVs; diabetes ships space-separated, so it is written out."""
    loaded = {name: read(sklearn_data / f"{name}.csv") for name in CLASSIFICATION}
    from sklearn.datasets import load_diabetes

    path = tmp_path_factory.mktemp("diabetes") / "diabetes.csv"
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(path, index=False)
    loaded["diabetes"] = read(path)
    return loaded


@pytest.fixture(scope="module")
def tips(tmp_path_factory) -> pd.DataFrame:
    """plotly's tips with a tenth of every column but the target blanked out, plus columns a person would leave in."""
    source = package_dir("plotly", "package_data", "datasets") / "tips.csv.gz"
    need(source.exists(), "plotly does not ship tips.csv.gz")
    frame = pd.read_csv(source)
    rng = np.random.default_rng(7)
    frame["regular"] = (rng.random(len(frame)) < 0.3).astype(object)
    frame["receipt"] = [f"R-{i:05d}" for i in range(len(frame))]
    frame["date"] = pd.date_range("2024-01-01", periods=len(frame), freq="D").strftime("%Y-%m-%d")
    frame["venue"] = "downtown"
    frame["notes"] = np.nan
    for column in ("total_bill", "sex", "smoker", "day", "time", "size", "regular"):
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    path = tmp_path_factory.mktemp("tips") / "tips.csv"
    frame.to_csv(path, index=False)
    return read(path)


@pytest.fixture(scope="module")
def gapminder() -> pd.DataFrame:
    """900 rows of plotly's gapminder: 142 countries and their ISO codes are too many one-hot columns to keep dense."""
    source = package_dir("plotly", "package_data", "datasets") / "gapminder.csv.gz"
    need(source.exists(), "plotly does not ship gapminder.csv.gz")
    return pd.read_csv(source).sample(900, random_state=0).reset_index(drop=True)


def train(frame: pd.DataFrame, kind: str, target: str = "target", **kwargs) -> tuple[trainer.Result, list]:
    reports: list[tuple[int, int, dict[str, float]]] = []
    params = {**FAST[kind], **kwargs.pop("params", {})}
    result = trainer.train(frame, target=target, kind=kind, params=params,
                           report=lambda step, total, metrics: reports.append((step, total, metrics)), **kwargs)
    return result, reports


def failure(frame: pd.DataFrame, kind: str = "random_forest", **kwargs) -> TrainingFailed:
    kwargs.setdefault("target", "target")
    kwargs.setdefault("params", FAST[kind])
    with pytest.raises(TrainingFailed) as caught:
        trainer.train(frame, kind=kind, **kwargs)
    return caught.value


def check_progress(result: trainer.Result, reports: list) -> None:
    steps = [step for step, _, _ in reports]
    assert steps == list(range(1, result.steps + 1))
    assert {total for _, total, _ in reports} == {result.steps}
    assert reports[-1][2] == result.metrics
    for _, _, metrics in reports:
        assert set(metrics) == set(result.metrics)
        assert all(type(value) is float and math.isfinite(value) for value in metrics.values())


def instances(frame: pd.DataFrame, schema: list[dict]) -> list[dict]:
    """Rows of the file as a JSON client would send them (missing values as null)."""
    names = [column["name"] for column in schema]
    return json.loads(frame[names].to_json(orient="records"))


def majority_share(labels: pd.Series) -> float:
    return float(labels.value_counts(normalize=True).iloc[0])


# -- the contract with the pipeline rules ----------------------------------------------------------


def test_parameter_names_and_defaults_match_the_pipeline_rules():
    from services.pipelines import PARAMS

    assert set(trainer.KINDS) == set(PARAMS)
    for kind, defaults in trainer.DEFAULTS.items():
        assert set(defaults) == set(PARAMS[kind]), kind
        for name, value in defaults.items():
            types, check, _ = PARAMS[kind][name]
            if value is not None or type(None) in types:  # None = scikit-learn's own choice
                assert isinstance(value, types) and check(value), (kind, name, value)


# -- learning on real data -------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSIFICATION)
@pytest.mark.parametrize("kind", trainer.KINDS)
def test_every_kind_learns_each_classification_dataset(frames, name, kind):
    frame = frames[name]
    result, reports = train(frame, kind)
    assert result.task == "classification"
    assert result.classes == sorted(frame["target"].unique().tolist())
    assert all(type(label) is int for label in result.classes)
    assert result.n_train + result.n_test == len(frame)
    assert result.dropped == {} and len(result.schema) == frame.shape[1] - 1
    chance = majority_share(frame["target"])
    assert result.metrics["accuracy"] >= chance + (1 - chance) / 2, result.metrics
    assert 0 <= result.metrics["f1"] <= 1
    check_progress(result, reports)


@pytest.mark.parametrize("kind", trainer.KINDS)
def test_every_kind_learns_the_diabetes_regression(frames, kind):
    frame = frames["diabetes"]
    result, reports = train(frame, kind)
    assert result.task == "regression" and result.classes is None
    target = frame["target"].to_numpy()
    assert result.metrics["mae"] < np.abs(target - np.median(target)).mean()  # the best constant guess
    assert result.metrics["loss"] < target.var()
    assert result.metrics["r2"] > 0.1
    check_progress(result, reports)


def test_defaults_report_every_epoch_or_stage(frames):
    totals = {}
    for kind in trainer.KINDS:
        reports: list[int] = []
        result = trainer.train(frames["iris"], target="target", kind=kind,
                               report=lambda step, total, metrics: reports.append(total))
        totals[kind] = result.steps
        assert reports == [result.steps] * result.steps
    assert totals == {"linear": 30, "random_forest": 20, "gradient_boosting": 20, "mlp": 50}


@pytest.mark.parametrize("dataset", ["iris", "diabetes", "gapminder:continent", "gapminder:lifeExp"])
@pytest.mark.parametrize("kind", trainer.KINDS)
def test_a_step_reports_what_a_model_stopped_there_scores(frames, gapminder, kind, dataset):
    """Intermediate metrics are computed apart from the model's own predict; they must agree exactly.

    Every held-out row is evaluated at every step on these sizes (at most 200), so step 3 of 6 must
    score what a model of 3 epochs or trees scores at the end; gapminder goes through the sparse path.
    """
    name, _, target = dataset.partition(":")
    frame = gapminder if name == "gapminder" else frames[name]
    size = "max_iter" if kind in ("linear", "mlp") else "n_estimators"
    _, reports = train(frame, kind, target=target or "target", params={size: 6})
    shorter, _ = train(frame, kind, target=target or "target", params={size: 3})
    assert shorter.n_test <= trainer.EVAL_MIN
    assert reports[2][2] == pytest.approx(shorter.metrics, rel=1e-7, abs=1e-12)
    if name == "gapminder":
        assert sparse.issparse(shorter.model[0].transform(frame.head(2)))
        assert len(shorter.model[0].get_feature_names_out()) < 200  # 142 countries capped at 50 columns


def test_metrics_agree_with_sklearn_metrics(frames):
    from sklearn import metrics

    for name in ("iris", "breast_cancer"):
        frame = frames[name]
        result, _ = train(frame, "mlp")
        proba = result.model.predict_proba(frame.drop(columns="target"))
        truth = frame["target"].to_numpy()
        ours = trainer._classification_metrics(proba, np.searchsorted(result.classes, truth))
        assert ours["loss"] == pytest.approx(metrics.log_loss(truth, proba, labels=result.classes))
        assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(truth, proba.argmax(axis=1)))
        assert ours["f1"] == pytest.approx(metrics.f1_score(truth, proba.argmax(axis=1), average="macro"))
        wrong = np.roll(proba, 1, axis=1)  # a bad model: some classes never predicted
        ours = trainer._classification_metrics(wrong, np.searchsorted(result.classes, truth))
        expected = metrics.f1_score(truth, wrong.argmax(axis=1), average="macro", zero_division=0)
        assert ours["f1"] == pytest.approx(expected)
    frame = frames["diabetes"]
    result, _ = train(frame, "linear")
    predicted = result.model.predict(frame.drop(columns="target"))
    ours = trainer._regression_metrics(predicted, frame["target"].to_numpy(dtype=float))
    assert ours["loss"] == pytest.approx(metrics.mean_squared_error(frame["target"], predicted))
    assert ours["r2"] == pytest.approx(metrics.r2_score(frame["target"], predicted))
    assert ours["mae"] == pytest.approx(metrics.mean_absolute_error(frame["target"], predicted))


def test_training_is_reproducible(frames):
    first, _ = train(frames["wine_data"], "mlp")
    second, _ = train(frames["wine_data"], "mlp")
    assert first.metrics == second.metrics


# -- messy real data -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", trainer.KINDS)
def test_a_messy_file_trains_without_cleaning(tips, kind):
    result, reports = train(tips, kind, target="tip")
    assert result.task == "regression"
    assert set(result.dropped) == {"receipt", "date", "venue", "notes"}
    assert "id" in result.dropped["receipt"] and "date" in result.dropped["date"]
    assert "same value" in result.dropped["venue"] and "missing" in result.dropped["notes"]
    types = {column["name"]: column["type"] for column in result.schema}
    assert types == {"total_bill": "number", "sex": "category", "smoker": "category", "day": "category",
                     "time": "category", "size": "number", "regular": "boolean"}
    assert not any(column["required"] for column in result.schema)  # every kept column has gaps
    assert set(next(c for c in result.schema if c["name"] == "day")["categories"]) == {"Thur", "Fri", "Sat", "Sun"}
    assert result.metrics["mae"] < np.abs(tips["tip"] - tips["tip"].median()).mean()
    check_progress(result, reports)
    rows = instances(tips.head(20), result.schema)
    rows[0] = {"total_bill": 20}  # the optional columns may be left out
    answer = trainer.predict(result.model, result.task, trainer.prepare_instances(result.schema, rows), result.classes)
    assert len(answer["predictions"]) == 20 and all(isinstance(p, float) for p in answer["predictions"])


def test_a_text_target_is_a_classification_with_text_labels(tips):
    result, reports = train(tips, "gradient_boosting", target="day")
    assert result.task == "classification"
    assert result.classes == ["Fri", "Sat", "Sun", "Thur"]
    assert result.n_train + result.n_test == tips["day"].notna().sum()
    assert any("left out" in note for note in result.notes)
    check_progress(result, reports)
    batch = trainer.prepare_instances(result.schema, instances(tips.head(5), result.schema))
    answer = trainer.predict(result.model, result.task, batch, result.classes)
    assert set(answer["predictions"]) <= set(result.classes)


def test_missing_target_rows_are_left_out_with_a_note(frames):
    frame = frames["iris"].copy()
    frame.loc[frame.index[::15], "target"] = np.nan
    result, _ = train(frame, "linear")
    assert result.n_train + result.n_test == 140
    assert result.classes == [0, 1, 2]  # whole floats (NaN made the column float) are labels again
    assert result.notes == ["10 of 150 rows have no value in the target 'target' and were left out"]


def test_the_task_follows_the_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    frame = pd.DataFrame({"x": x, "rating": rng.integers(1, 6, 200), "price": x * 10 + 50,
                          "flag": x > 0, "count": rng.integers(0, 60, 200)})
    assert train(frame, "linear", target="rating")[0].task == "classification"
    assert train(frame, "linear", target="flag")[0].classes == [False, True]
    assert train(frame, "linear", target="price")[0].task == "regression"
    assert train(frame, "linear", target="count")[0].task == "regression"  # 60 values: too many for classes


# -- artifacts and serving -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", trainer.KINDS)
def test_the_artifact_round_trips_through_joblib(frames, tmp_path, kind):
    frame = frames["wine_data"]
    result, _ = train(frame, kind)
    path = tmp_path / "model.joblib"
    joblib.dump(result.model, path)
    loaded = joblib.load(path)
    batch = trainer.prepare_instances(result.schema, instances(frame, result.schema))
    before = trainer.predict(result.model, result.task, batch, result.classes)
    after = trainer.predict(loaded, result.task, batch, result.classes)
    assert after == before
    assert json.loads(json.dumps(after)) == after  # JSON-ready: no numpy types
    probabilities = np.array(after["probabilities"])
    assert probabilities.shape == (len(frame), len(result.classes))
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert np.mean(np.array(after["predictions"]) == frame["target"].to_numpy()) > 0.9


def test_a_regression_artifact_predicts_the_same_in_a_fresh_process(frames, tmp_path):
    frame = frames["diabetes"]
    result, _ = train(frame, "mlp")
    joblib.dump(result.model, tmp_path / "model.joblib")
    rows = instances(frame.head(5), result.schema)
    (tmp_path / "rows.json").write_text(json.dumps({"schema": result.schema, "rows": rows}))
    script = (
        "import json, sys, joblib\n"
        "from ml import trainer\n"
        "spec = json.load(open(sys.argv[1] + '/rows.json'))\n"
        "model = joblib.load(sys.argv[1] + '/model.joblib')\n"
        "frame = trainer.prepare_instances(spec['schema'], spec['rows'])\n"
        "print(json.dumps(trainer.predict(model, 'regression', frame, None)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    expected = trainer.predict(result.model, "regression", trainer.prepare_instances(result.schema, rows), None)
    assert json.loads(done.stdout) == expected


def test_prepare_instances_builds_the_model_input(frames):
    result, _ = train(frames["iris"], "linear")
    schema = result.schema
    assert [c["name"] for c in schema] == [f"feature_{i}" for i in range(4)]
    assert all(c["type"] == "number" and c["required"] for c in schema)
    row = {"feature_3": 0.2, "feature_2": "1.4", "feature_1": 3, "feature_0": 5.1}  # any order, numeric text too
    batch = trainer.prepare_instances(schema, [row])
    assert list(batch.columns) == [c["name"] for c in schema]
    assert batch.dtypes.tolist() == [np.dtype("float64")] * 4
    assert batch.iloc[0].tolist() == [5.1, 3.0, 1.4, 0.2]
    assert trainer.predict(result.model, result.task, batch, result.classes)["predictions"] == [0]


SCHEMA = [
    {"name": "width", "type": "number", "required": True},
    {"name": "grade", "type": "category", "required": True, "categories": ["1.0", "2", "x"]},
    {"name": "member", "type": "boolean", "required": False},
    {"name": "city", "type": "category", "required": False, "categories": ["Oslo"]},
]


def test_prepare_instances_converts_values_to_the_training_types():
    batch = trainer.prepare_instances(SCHEMA, [
        {"width": 1, "grade": 1, "member": True, "city": "Oslo"},
        {"width": "2.5", "grade": 2.0, "member": "false", "city": None},
        {"width": 3.5, "grade": "x"},
        {"width": 0, "grade": True, "member": 1},
    ])
    assert batch["width"].tolist() == [1.0, 2.5, 3.5, 0.0]
    assert batch["grade"].tolist() == ["1.0", "2", "x", "True"]
    assert batch["member"].tolist()[:2] == ["True", "False"] and math.isnan(batch["member"].iloc[2])
    assert batch["member"].iloc[3] == "True"
    assert batch["city"].iloc[0] == "Oslo" and pd.isna(batch["city"].iloc[1])
    assert batch.dtypes.tolist() == [np.dtype("float64"), np.dtype(object), np.dtype(object), np.dtype(object)]


@pytest.mark.parametrize(
    "payload, says, details",
    [
        ({"rows": []}, "a list of 1 to 10000 objects", {"count": None}),
        ([], "a list of 1 to 10000 objects, got 0", {"count": 0}),
        ([{"width": 1, "grade": "x"}] * 10_001, "got 10001", {"count": 10_001}),
        ([{"width": 1, "grade": "x"}, [1, "x"]], "instance 1 is not an object", {"row": 1}),
        ([{"width": 1, "grade": "x", "colour": "red"}], "colour",
         {"row": 0, "column": "colour", "columns": ["colour"]}),
        ([{"width": 1, "grade": "x"}, {"grade": "x"}], "instance 1 lacks the column 'width'",
         {"row": 1, "column": "width"}),
        ([{"width": None, "grade": "x"}], "has null for the column 'width'", {"row": 0, "column": "width"}),
        ([{"width": 1, "grade": "x"}, {"width": "wide", "grade": "x"}], "instance 1: the column 'width' takes a number",
         {"row": 1, "column": "width"}),
        ([{"width": True, "grade": "x"}], "'width' takes a number, not the boolean true",
         {"row": 0, "column": "width"}),
        ([{"width": float("inf"), "grade": "x"}], "finite number", {"row": 0, "column": "width"}),
        ([{"width": 10**400, "grade": "x"}], "finite number", {"row": 0, "column": "width"}),
        ([{"width": "NaN", "grade": "x"}], "finite number", {"row": 0, "column": "width"}),
        ([{"width": 1, "grade": ["x"]}], "'grade' takes text or a number, not a JSON array",
         {"row": 0, "column": "grade"}),
        ([{"width": 1, "grade": "x", "member": "maybe"}], "'member' takes true or false",
         {"row": 0, "column": "member"}),
    ],
)
def test_prepare_instances_names_what_is_wrong(payload, says, details):
    with pytest.raises(InvalidInstances) as caught:
        trainer.prepare_instances(SCHEMA, payload)
    assert says in caught.value.message
    assert caught.value.details == details
    assert caught.value.code == "invalid_instances"


# -- refusals --------------------------------------------------------------------------------------


def test_a_target_with_one_class_is_refused_naming_it(frames):
    setosa = frames["iris"][frames["iris"]["target"] == 0]
    problem = failure(setosa)
    assert problem.code == "one_class"
    assert "(0)" in problem.message and "'target'" in problem.message
    assert problem.details == {"column": "target", "value": 0}


def test_unknown_columns_are_named(frames):
    problem = failure(frames["iris"], target="species")
    assert problem.code == "unknown_column" and "'species'" in problem.message
    assert "feature_0" in problem.message  # the columns there are
    problem = failure(frames["iris"], features=["feature_0", "petal"])
    assert problem.code == "unknown_column" and "'petal'" in problem.message
    assert problem.details["column"] == "petal"


def test_an_unusable_feature_chosen_explicitly_is_refused(frames):
    frame = frames["iris"].assign(constant=1.5, empty=np.nan, serial=[f"s{i}" for i in range(150)])
    reasons = {"constant": "same value (1.5)", "empty": "every value is missing", "serial": "like an id"}
    for column, says in reasons.items():
        problem = failure(frame, features=["feature_0", column])
        assert problem.code == "unusable_column"
        assert f"{column!r}" in problem.message and says in problem.message
        assert problem.details["column"] == column
    assert failure(frame, features=["feature_0", "target"]).code == "unusable_column"
    result, _ = train(frame, "linear")
    assert set(result.dropped) == {"constant", "empty", "serial"}


def test_explicit_features_are_the_only_inputs(frames):
    result, _ = train(frames["iris"], "random_forest", features=["feature_3", "feature_2"])
    assert [column["name"] for column in result.schema] == ["feature_3", "feature_2"]
    assert result.metrics["accuracy"] > 0.8  # the petal measurements alone separate iris well
    with pytest.raises(InvalidInstances):
        trainer.prepare_instances(result.schema, [{"feature_3": 0.2, "feature_2": 1.4, "feature_0": 5.1}])


def test_no_usable_feature_is_refused(frames):
    frame = frames["iris"][["target"]].assign(constant="a", empty=np.nan)
    problem = failure(frame)
    assert problem.code == "no_features"
    assert "'constant'" in problem.message and "'empty'" in problem.message
    assert failure(frames["iris"][["target"]]).code == "no_features"


def test_too_few_rows_are_refused(frames):
    iris = frames["iris"]
    problem = failure(iris.iloc[[0, 1, 2, 50, 51, 52, 100, 101, 102]])
    assert problem.code == "too_few_rows" and "only 9 rows" in problem.message
    problem = failure(iris.iloc[list(range(50)) + [50]])
    assert problem.code == "too_few_rows" and "single row (1)" in problem.message
    assert problem.details["classes"] == [1]
    assert failure(iris.iloc[:0]).code == "too_few_rows"


def test_a_target_without_values_is_refused(frames):
    problem = failure(frames["iris"].assign(target=np.nan))
    assert problem.code == "target_missing" and "'target'" in problem.message


def test_unknown_kind_and_parameters_are_refused(frames):
    with pytest.raises(TrainingFailed) as caught:
        trainer.train(frames["iris"], target="target", kind="svm")
    assert caught.value.code == "unknown_model"
    with pytest.raises(TrainingFailed) as caught:
        trainer.train(frames["iris"], target="target", kind="linear", params={"n_estimators": 5})
    assert caught.value.code == "bad_params" and "n_estimators" in caught.value.message


@pytest.mark.parametrize("kind, params", [("linear", {"eta0": 1e300}), ("mlp", {"learning_rate_init": 1e300})])
def test_a_diverging_model_is_a_readable_failure(frames, kind, params):
    problem = failure(frames["diabetes"], kind=kind, params={**FAST[kind], **params})
    assert problem.code == "diverged" and "smaller learning rate" in problem.message


def test_a_target_too_large_for_squared_errors_is_refused(frames):
    problem = failure(frames["diabetes"].assign(target=frames["diabetes"]["target"] * 1e300))
    assert problem.code == "target_too_large" and "rescale" in problem.message


@pytest.mark.parametrize("kind", trainer.KINDS)
def test_should_stop_cancels_between_steps(frames, kind):
    reports: list[int] = []
    with pytest.raises(TrainingFailed) as caught:
        trainer.train(frames["breast_cancer"], target="target", kind=kind, params=FAST[kind],
                      report=lambda step, total, metrics: reports.append(step), should_stop=lambda: len(reports) >= 3)
    assert caught.value.code == "cancelled"
    assert caught.value.message.startswith("training was cancelled after step 3 of ")
    assert reports == [1, 2, 3]


@pytest.mark.parametrize("kind", ["gradient_boosting", "mlp"])
def test_an_error_in_report_reaches_the_caller_unchanged(frames, kind):
    class SocketGone(Exception):
        pass

    def report(step, total, metrics):
        raise SocketGone(step)

    with pytest.raises(SocketGone):
        trainer.train(frames["iris"], target="target", kind=kind, params=FAST[kind], report=report)


def test_errors_survive_pickling_across_processes():
    problem = pickle.loads(pickle.dumps(TrainingFailed("one_class", "one class", {"column": "y"})))
    assert (problem.code, problem.message, problem.details) == ("one_class", "one class", {"column": "y"})
    assert str(problem) == "one class"
    invalid = pickle.loads(pickle.dumps(InvalidInstances("bad row", {"row": 3})))
    assert (invalid.message, invalid.details) == ("bad row", {"row": 3})


# -- reading files ---------------------------------------------------------------------------------


def test_load_frame_reads_sklearn_layout_and_plain_files(sklearn_data, tmp_path):
    iris = read(sklearn_data / "iris.csv")
    assert list(iris.columns) == ["feature_0", "feature_1", "feature_2", "feature_3", "target"]
    assert len(iris) == 150 and iris["target"].dtype == np.int64
    plain = tmp_path / "plain.csv"
    shutil.copyfile(sklearn_data / "iris.csv", plain)
    assert trainer.load_frame(plain, None).columns[0] == "150"  # no dialect: the first line is the header


def test_load_frame_reuses_the_upload_encoding_fallback(tmp_path):
    path = tmp_path / "cafes.csv"
    path.write_bytes(b"name,price\n" + b"tea,2\n" * 20_000 + "caf\u00e9,3\n".encode("cp1252"))
    frame = trainer.load_frame(path, dataclasses.asdict(ingest.sniff(path)))  # sniffed as UTF-8 (ASCII prefix)
    assert frame["name"].iloc[-1] == "caf\u00e9"


def test_load_frame_failures_are_training_failures(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(TrainingFailed) as caught:
        trainer.load_frame(ragged, None)
    assert caught.value.code == "ragged_rows" and "line 3" in caught.value.message
    with pytest.raises(TrainingFailed) as caught:
        trainer.load_frame(tmp_path / "gone.csv", None)
    assert caught.value.code == "unreadable_file"
    packed = tmp_path / "packed.csv"
    with gzip.open(packed, "wb") as handle:
        handle.write(b"a,b\n1,2\n")
    with pytest.raises(TrainingFailed) as caught:
        trainer.load_frame(packed, dataclasses.asdict(ingest.Dialect()))  # as if sniffed before it was compressed
    assert caught.value.code in {"bad_encoding", "not_csv"}


def test_report_interval_skips_reports_but_not_the_last(frames):
    every: list[int] = []
    trainer.train(frames["breast_cancer"], target="target", kind="linear", params={"max_iter": 40},
                  report=lambda step, total, metrics: every.append(step))
    assert every == list(range(1, 41))
    spaced: list[int] = []
    trainer.train(frames["breast_cancer"], target="target", kind="linear", params={"max_iter": 40},
                  report=lambda step, total, metrics: spaced.append(step), report_interval_s=3600.0)
    assert spaced == [1, 40]  # the first step, then nothing until the final one
