"""Hostile and odd input over real HTTP: names, CSV contents, ids, types, bounds, wide files, cut
bodies, formulas in exports, database failures and orphaned files; on SQLite and PostgreSQL.

Every answer is checked for a database driver's text: whatever fails, a client never reads SQL,
parameters or the server's own error messages.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from events.catalogue import MAX_PAYLOAD_BYTES
from events.serialize import dumps
from storage.errors import StorageUnavailable
from tests.integration.test_api import assert_error, call
from tests.integration.test_data_api import multipart, sklearn_csv, stored_files, upload

# Fragments of what SQLAlchemy, psycopg and sqlite3 say; none may reach a client.
DRIVER_TEXT = (
    "psycopg", "sqlalchemy", "sqlalche.me", "sqlite3", "[SQL", "[parameters", "Background on this error",
    "cannot contain NUL (0x00)", "INSERT INTO", "UPDATE datasets", "SELECT ", "value too long",
    "out of range for type", "OperationalError", "DataError", "IntegrityError", "ProgrammingError",
)
IRIS = sklearn_csv("iris.csv").read_bytes()


def clean(status_body):
    """``status_body`` unchanged, after checking that no driver text is in it."""
    text = json.dumps(status_body[1], ensure_ascii=False)
    leaked = [fragment for fragment in DRIVER_TEXT if fragment.lower() in text.lower()]
    assert not leaked, (leaked, text[:500])
    return status_body


def post(server, path: str, body: bytes, content_type: str) -> tuple[int, dict, dict]:
    """A raw POST: status, JSON body and headers."""
    request = urllib.request.Request(server.url + path, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def events_of(server, kind: str) -> list[dict]:
    return [e.data for e in server.runtime.log.read_after(0, None, limit=10_000) if e.type == kind]


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, make_live_server, settings):
    if request.param == "sqlite":
        return make_live_server(settings)
    url = request.getfixturevalue("postgres_url")
    return make_live_server(dataclasses.replace(settings, database_url=url))


def pipeline_body(dataset: dict, **changes) -> dict:
    return {"name": "p", "dataset_id": dataset["id"], "target": dataset["columns"][-1]["name"],
            "model": "random_forest", "params": {"n_estimators": 5}, **changes}


# -- 1. names and NUL ------------------------------------------------------------------------------


def test_control_characters_in_names_are_refused(server):
    for name in ("bad\x00name", "right\u202etxt.exe", "zero\u200bwidth", "line\nbreak"):
        status, body = clean(upload(server, "iris.csv", IRIS, name=name))
        assert status == 422 and body["error"]["code"] == "validation_failed" and "name" in body["error"]["details"], body

    # A file name is only shown: its unprintable characters go, its length is cut, the upload works.
    status, item = clean(upload(server, "ev\x00il\u202e.csv", IRIS))
    assert status == 201 and item["filename"] == "evil.csv" and item["name"] == "evil", item
    status, named = clean(upload(server, "a\x00b\x1b.csv", IRIS, name="named"))
    assert status == 201 and named["filename"] == "ab.csv", named
    status, long = clean(upload(server, "x" * 400 + ".csv", IRIS, name="long"))
    assert status == 201 and len(long["filename"]) == 255 and long["filename"].endswith(".csv"), long

    for name in ("x\x00y", "\u200b", "tab\there", "y" * 101):
        status, body = clean(call(server, "PATCH", f"/api/v1/datasets/{item['id']}", {"name": name}))
        assert status == 422 and "name" in body["error"]["details"], body
    assert clean(call(server, "PATCH", f"/api/v1/datasets/{item['id']}", {"name": "flowers"}))[0] == 200

    for name in ("p\x00", "p\u202e", {"a": 1}, ["p"], 5):
        status, body = clean(call(server, "POST", "/api/v1/pipelines", pipeline_body(item, name=name)))
        assert status == 422 and "name" in body["error"]["details"], body
    assert clean(call(server, "POST", "/api/v1/pipelines", pipeline_body(item)))[0] == 201
    assert sorted(d["name"] for d in call(server, "GET", "/api/v1/datasets")[1]["items"]) == ["flowers", "long", "named"]


def test_nul_and_control_characters_inside_csv_files(server):
    rows = b"".join(b"%d,%d,x%d\n" % (i, i * 2, i % 7) for i in range(300))
    status, body = clean(upload(server, "nul_header.csv", b"a,b\x00c,d\n" + rows))
    assert status == 422 and body["error"]["code"] == "bad_column_name", body
    assert body["error"]["details"]["column"] == 2 and "column 2" in body["error"]["message"]

    status, body = clean(upload(server, "escape_header.csv", b'a,"b\x1bc",d\n' + rows))
    assert status == 422 and body["error"]["code"] == "bad_column_name" and body["error"]["details"]["column"] == 2, body
    status, body = clean(upload(server, "newline_header.csv", b'a,b,"two\nlines"\n' + rows))
    assert status == 422 and body["error"]["details"]["column"] == 3, body
    status, body = clean(upload(server, "long_header.csv", b"a,b," + b"c" * 300 + b"\n" + rows))
    assert status == 422 and body["error"]["code"] == "bad_column_name" and body["error"]["details"]["column"] == 3, body

    status, body = clean(upload(server, "nul_cell.csv", b"a,b,c\n" + rows + b"1,2,x\x00y\n"))
    assert status == 415 and body["error"]["code"] == "not_csv" and body["error"]["details"]["line"] == 302, body
    assert stored_files(server) == [] and call(server, "GET", "/api/v1/datasets")[1]["items"] == []

    # Other control characters are data: they are stored, profiled and read back on every backend.
    odd = ["x\x01y", "\x1b[31mred", "rtl\u202eltr", "\\u0000", "tab\tin"]
    content = b"a,b,c\n" + rows + "".join(f'{i},{i},"{v}"\n' for i, v in enumerate(odd * 3)).encode()
    status, item = clean(upload(server, "odd_cells.csv", content))
    assert status == 201 and item["rows"] == 315, item
    status, full = clean(call(server, "GET", f"/api/v1/datasets/{item['id']}"))
    top = {t["value"] for t in full["profile"]["c"]["top"]}
    assert status == 200 and {"x\x01y", "\x1b[31mred", "rtl\u202eltr", "\\u0000", "tab\tin"} <= top | set(odd) and top


# -- database errors -------------------------------------------------------------------------------


def test_database_errors_never_reach_the_client(make_live_server, settings, monkeypatch):
    server = make_live_server(settings)
    secret = "SELECT password_hash FROM users WHERE name = 'hunter2'"

    def failing(error):
        def raise_it(*_args, **_kwargs):
            raise error
        return raise_it

    statement_error = DBAPIError(secret, {"name": "hunter2"}, Exception("hunter2: constraint detail"))
    monkeypatch.setattr(server.runtime.datasets, "list", failing(statement_error))
    status, body = clean(call(server, "GET", "/api/v1/datasets"))
    assert_error((status, body), 500, "internal_error")
    assert "hunter2" not in json.dumps(body)

    lost = OperationalError(secret, {}, Exception("server closed the connection unexpectedly"), connection_invalidated=True)
    for error in (lost, OperationalError(None, None, Exception("could not connect to server hunter2")),
                  StorageUnavailable("database postgresql://hunter2@db/x is unreachable")):
        monkeypatch.setattr(server.runtime.datasets, "list", failing(error))
        request = urllib.request.Request(server.url + "/api/v1/datasets")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        body = json.loads(info.value.read())
        assert_error(clean((info.value.code, body)), 503, "storage_unavailable")
        assert info.value.headers["Retry-After"] and "hunter2" not in json.dumps(body)

    # The upload's own catch-all: a failure while storing answers a sentence, the details go to the log.
    monkeypatch.setattr(server.runtime.datasets, "_store", failing(statement_error))
    status, body = clean(upload(server, "iris.csv", IRIS, upload_id="db1"))
    assert status == 500 and body["error"]["code"] == "upload_failed" and "hunter2" not in json.dumps(body)
    assert events_of(server, "upload_error")[-1]["code"] == "upload_failed"
    monkeypatch.setattr(server.runtime.datasets, "_store", failing(lost))
    status, body = clean(upload(server, "iris.csv", IRIS))
    assert status == 503 and body["error"]["code"] == "storage_unavailable"
    assert stored_files(server) == []


def test_an_unreachable_postgresql_answers_503(postgres_url, make_live_server, settings):
    import psycopg

    server = make_live_server(dataclasses.replace(settings, database_url=postgres_url))
    assert upload(server, "iris.csv", IRIS)[0] == 201
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/test", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    for status, body in (call(server, "GET", "/api/v1/datasets"), call(server, "GET", "/api/v1/pipelines"),
                         upload(server, "iris.csv", IRIS, upload_id="gone")):
        assert_error(clean((status, body)), 503, "storage_unavailable")
        assert name not in json.dumps(body)
    assert not list((server.runtime.settings.data_dir / "tmp").glob("*"))


# -- 2 and 4. ids and types in pipeline bodies -----------------------------------------------------


def test_out_of_range_ids_and_wrong_types_are_422(server):
    status, dataset = upload(server, "iris.csv", IRIS)
    base = pipeline_body(dataset)
    assert_error(clean(call(server, "POST", "/api/v1/pipelines", dict(base, dataset_id=2**63))), 422, "number_out_of_range")
    cases = {
        "dataset_id": [2**63 - 1, 2**31, 0, -1, "1", 1.5, True, None, {}, []],
        "model": [{}, [], 1, None, True, "svm"],
        "target": [{}, [], 5, None, "", "nope", "t" * 300],
        "features": ["feature_0", [1], {}, [[]], [], ["nope"], ["feature_0", "feature_0"]],
        "params": [[], "x", 5, None, {"n_estimators": {}}, {"n_estimators": [1]}],
        "name": [{}, [], 5, None, ""],
    }
    for field, values in cases.items():
        for value in values:
            status, body = clean(call(server, "POST", "/api/v1/pipelines", dict(base, **{field: value})))
            assert status == 422 and body["error"]["code"] == "validation_failed", (field, value, body)
            assert any(key.startswith(field) for key in body["error"]["details"]), (field, value, body)
    everything = {"name": {}, "dataset_id": {}, "target": {}, "model": {}, "params": [], "features": {}}
    status, body = clean(call(server, "POST", "/api/v1/pipelines", everything))
    assert status == 422 and set(body["error"]["details"]) == set(everything), body

    status, pipeline = call(server, "POST", "/api/v1/pipelines", base)
    assert status == 201, pipeline
    for change in ({"model": {}}, {"dataset_id": 2**40}, {"target": ["x"]}, {"features": "all"}, {"params": [1]}):
        status, body = clean(call(server, "PATCH", f"/api/v1/pipelines/{pipeline['id']}", change))
        assert status == 422 and set(change) <= {k.split(".")[0] for k in body["error"]["details"]}, (change, body)
    assert call(server, "GET", "/api/v1/pipelines")[1]["items"] == [pipeline]


# -- 5. parameter bounds ---------------------------------------------------------------------------


def test_model_parameters_are_bounded_per_kind(live_server):
    status, dataset = upload(live_server, "iris.csv", IRIS)
    refused = [
        ("random_forest", "n_estimators", 1_000_000_000, "2,000"),
        ("random_forest", "n_estimators", 10.5, "integer"),
        ("random_forest", "max_depth", 101, "100"),
        ("random_forest", "min_samples_leaf", 0, "from 1"),
        ("gradient_boosting", "learning_rate", 0, "> 0"),
        ("gradient_boosting", "learning_rate", 11, "at most 10"),
        ("gradient_boosting", "subsample", 1.5, "at most 1"),
        ("gradient_boosting", "n_estimators", 2001, "2,000"),
        ("mlp", "hidden_layer_sizes", [2048], "1024"),
        ("mlp", "hidden_layer_sizes", [8] * 6, "1 to 5"),
        ("mlp", "hidden_layer_sizes", [], "1 to 5"),
        ("mlp", "hidden_layer_sizes", [True], "1024"),
        ("mlp", "max_iter", 1_000_000, "10,000"),
        ("mlp", "learning_rate_init", 0, "> 0"),
        ("linear", "alpha", 0, "> 0"),
        ("linear", "max_iter", 10_001, "10,000"),
        ("linear", "eta0", 100, "at most 10"),
        ("linear", "random_state", 2**40, "4,294,967,295"),
        ("linear", "random_state", -1, "from 0"),
        ("linear", "test_size", 0.95, "0.5"),
        ("linear", "test_size", 0, "0.05"),
    ]
    for model, param, value, says in refused:
        body = pipeline_body(dataset, name=f"{model}-{param}", model=model, params={param: value})
        status, error = clean(call(live_server, "POST", "/api/v1/pipelines", body))
        assert status == 422 and f"params.{param}" in error["error"]["details"], (model, param, value, error)
        assert says in error["error"]["details"][f"params.{param}"] and says in error["error"]["message"], error
    accepted = [
        ("random_forest", {"n_estimators": 2000, "max_depth": 100, "min_samples_leaf": 1, "random_state": 2**32 - 1}),
        ("gradient_boosting", {"learning_rate": 10, "subsample": 1, "max_depth": None, "test_size": 0.5}),
        ("mlp", {"hidden_layer_sizes": [1024] * 5, "max_iter": 10_000, "alpha": 100}),
        ("linear", {"eta0": 10, "max_iter": 1, "test_size": 0.05, "random_state": None}),
    ]
    for model, params in accepted:
        body = pipeline_body(dataset, name=f"ok-{model}", model=model, params=params)
        assert clean(call(live_server, "POST", "/api/v1/pipelines", body))[0] == 201, (model, params)


# -- 3. wide files ---------------------------------------------------------------------------------


def test_wide_datasets_work_end_to_end_and_wider_are_refused(server):
    width = 2000
    names = [f"measurement_column_number_{i:04d}" for i in range(width)]
    content = (",".join(names) + "\n" + "".join(",".join(str((r * i) % 5) for i in range(width)) + "\n" for r in range(3))).encode()
    status, item = clean(upload(server, "wide.csv", content, name="wide", upload_id="wide1"))
    assert status == 201 and len(item["columns"]) == width, item.get("error")

    created = [e for e in events_of(server, "dataset_created") if e["id"] == item["id"]]
    assert len(created) == 1 and 0 < len(created[0]["columns"]) < width
    assert [c["name"] for c in created[0]["columns"]] == names[: len(created[0]["columns"])]
    assert len(dumps(created[0]).encode()) <= MAX_PAYLOAD_BYTES
    complete = [e for e in events_of(server, "upload_complete") if e["upload_id"] == "wide1"]
    assert len(complete) == 1 and complete[0]["columns"] == width and complete[0]["dataset_id"] == item["id"]

    status, renamed = clean(call(server, "PATCH", f"/api/v1/datasets/{item['id']}", {"name": "wider"}))
    assert status == 200 and len(renamed["columns"]) == width
    assert [e["name"] for e in events_of(server, "dataset_updated")] == ["wider"]
    status, full = call(server, "GET", f"/api/v1/datasets/{item['id']}")
    assert status == 200 and len(full["profile"]) == width

    body = pipeline_body(item, name="all-features", target=names[-1], features=names[:-1])
    status, pipeline = clean(call(server, "POST", "/api/v1/pipelines", body))
    assert status == 201 and pipeline["features"] == names[:-1], pipeline
    announced = [e for e in events_of(server, "pipeline_created") if e["id"] == pipeline["id"]]
    assert len(announced) == 1 and announced[0]["features"] == names[: len(announced[0]["features"])]

    too_wide = (",".join(f"c{i}" for i in range(10_001)) + "\n" + ",".join("1" for _ in range(10_001)) + "\n").encode()
    status, body = clean(upload(server, "too_wide.csv", too_wide, upload_id="wide2"))
    assert status == 422 and body["error"]["code"] == "too_many_columns", body
    assert body["error"]["details"] == {"columns": 10_001, "limit": 10_000}
    assert events_of(server, "upload_error")[-1]["code"] == "too_many_columns"
    assert [d["name"] for d in call(server, "GET", "/api/v1/datasets")[1]["items"]] == ["wider"]
    assert [p.name for p in stored_files(server)] == ["v1.csv"]


def test_publish_failures_after_commit_never_fail_the_request(make_live_server, settings, monkeypatch):
    server = make_live_server(settings)

    def broken(*_args, **_kwargs):
        raise RuntimeError("the event log broke in an unexpected way")

    monkeypatch.setattr(server.runtime.log, "publish", broken)
    status, item = clean(upload(server, "iris.csv", IRIS))
    assert status == 201, item
    assert clean(call(server, "PATCH", f"/api/v1/datasets/{item['id']}", {"name": "flowers"}))[0] == 200
    status, pipeline = clean(call(server, "POST", "/api/v1/pipelines", pipeline_body(item)))
    assert status == 201, pipeline
    assert clean(call(server, "PATCH", f"/api/v1/pipelines/{pipeline['id']}", {"name": "q"}))[0] == 200
    listing = call(server, "GET", "/api/v1/datasets")[1]["items"]
    assert [(d["name"], d["version"]) for d in listing] == [("flowers", 1)]  # stored once: no retry needed
    messages = [a["message"] for a in call(server, "GET", "/api/v1/activity?limit=10")[1]["items"]]
    assert any("renamed to flowers" in m for m in messages)  # the feed's rows are stored all the same


# -- 6. multipart bodies that end early ------------------------------------------------------------


def test_a_multipart_body_without_its_closing_boundary_is_refused(live_server):
    body, content_type = multipart({"name": "cut"}, {"file": ("cut.csv", IRIS)})
    boundary = content_type.split("boundary=")[1].encode()
    closing = body.rindex(b"--" + boundary + b"--")
    variants = {
        "no-closing-boundary": body[:closing],
        "no-closing-boundary-or-newline": body[: closing - 2],
        "cut-inside-the-file": body[: closing - len(IRIS) // 2],
        "a-part-that-never-starts": body[:closing] + b"--" + boundary + b"\r\n",
    }
    for i, (what, cut) in enumerate(variants.items()):
        status, error, _ = post(live_server, f"/api/v1/datasets?upload_id=cut{i}", cut, content_type)
        assert status == 400 and error["error"]["code"] == "upload_aborted", (what, error)
        announced = events_of(live_server, "upload_error")[-1]
        assert (announced["upload_id"], announced["code"]) == (f"cut{i}", "upload_aborted"), what
        assert stored_files(live_server) == [], what
        assert call(live_server, "GET", "/api/v1/datasets")[1]["items"] == [], what
    status, error, _ = post(live_server, "/api/v1/datasets?upload_id=" + "x" * 65, body, content_type)
    assert status == 400 and error["error"]["code"] == "invalid_parameter"
    status, item, _ = post(live_server, "/api/v1/datasets", body, content_type)
    assert status == 201 and item["rows"] == 150 and item["name"] == "cut"


# -- 7. formulas in CSV exports --------------------------------------------------------------------


def test_csv_export_neutralises_formulas_and_keeps_numbers(live_server):
    samples = [("=HYPERLINK(\"http://evil\",\"x\")", "@SUM(A1)"), ("+cmd|' /C calc'!A0", "-2+3"), (-5, "-7"), ("\t=1", 3)]
    for model_id, pipeline_id in samples:
        data = {"model_id": model_id, "pipeline_id": pipeline_id, "count": 3, "total": 9, "interval_s": 1.5,
                "latency_p50_ms": 1.25}
        assert call(live_server, "POST", "/api/v1/events", {"type": "prediction_volume", "data": data})[0] == 201
    request = urllib.request.Request(live_server.url + "/api/v1/charts/prediction_volume.csv")
    with urllib.request.urlopen(request, timeout=10) as response:
        rows = list(csv.DictReader(io.StringIO(response.read().decode())))
    assert [(r["model_id"], r["pipeline_id"]) for r in rows] == [
        ("'=HYPERLINK(\"http://evil\",\"x\")", "'@SUM(A1)"), ("'+cmd|' /C calc'!A0", "'-2+3"), ("-5", "-7"), ("'\t=1", "3"),
    ]
    assert {(r["count"], r["rate"], r["interval_s"], r["latency_p50_ms"]) for r in rows} == {("3", "2.0", "1.5", "1.25")}


# -- 8. dataset files ------------------------------------------------------------------------------


def test_deleted_datasets_leave_no_files_and_orphans_are_swept_at_start(make_live_server, settings):
    server = make_live_server(settings)
    status, first = upload(server, "iris.csv", IRIS, name="gone")
    assert upload(server, "iris.csv", IRIS, name="gone")[1]["version"] == 2
    assert len(stored_files(server)) == 2
    assert call(server, "DELETE", f"/api/v1/datasets/{first['id']}")[0] == 204
    assert stored_files(server) == [] and not (settings.data_dir / "datasets" / str(first["id"])).exists()

    status, kept = upload(server, "iris.csv", IRIS, name="kept")
    server.stop()
    root, tmp = settings.data_dir / "datasets", settings.data_dir / "tmp"
    old = time.time() - 2 * 3600
    orphans = [root / "9999" / "v1.csv", root / str(kept["id"]) / "v7.csv", tmp / "upload-abc.part"]
    fresh = root / str(kept["id"]) / "v8.csv"  # as if another process were storing it right now
    strangers = [root / "notes.txt", root / str(kept["id"]) / "README.md", root / "backup" / "v1.csv"]
    for path in [*orphans, fresh, *strangers]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"a,b\n1,2\n")
    for path in [*orphans, *strangers, root / "9999", root / "backup"]:
        os.utime(path, (old, old))

    again = make_live_server(settings)
    assert [p for p in orphans if p.exists()] == [] and not (root / "9999").exists()
    assert fresh.exists() and (root / str(kept["id"]) / "v1.csv").exists()
    assert all(p.exists() for p in strangers)  # not names the dashboard writes: not its to remove
    status, item = call(again, "GET", f"/api/v1/datasets/{kept['id']}")
    assert status == 200 and Path(item["filename"]).name == "iris.csv"
