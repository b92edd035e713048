"""Datasets, pipelines and activity through the real HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.integration.test_api import assert_error, call
from tests.integration.wsclient import Client
from tests.processes import free_port

SKLEARN_CSVS = ["iris.csv", "wine_data.csv", "breast_cancer.csv"]


def sklearn_csv(name: str) -> Path:
    import sklearn

    return Path(sklearn.__file__).parent / "datasets" / "data" / name


def plotly_csv(name: str, tmp_path: Path) -> Path:
    import plotly

    source = Path(plotly.__file__).parent / "package_data" / "datasets" / name
    if source.suffix == ".gz":
        target = tmp_path / source.stem
        target.write_bytes(gzip.decompress(source.read_bytes()))
        return target
    return source


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
        )
        out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def upload(server, filename: str, content: bytes, name: str | None = None, upload_id: str | None = None, **extra_files):
    fields = {"name": name} if name else {}
    body, content_type = multipart(fields, {"file": (filename, content), **extra_files})
    path = "/api/v1/datasets" + (f"?upload_id={upload_id}" if upload_id else "")
    request = urllib.request.Request(server.url + path, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(params=["sqlite", "postgresql"])
def data_server(request, make_live_server, settings):
    if request.param == "sqlite":
        return make_live_server(settings)
    url = request.getfixturevalue("postgres_url")
    return make_live_server(dataclasses.replace(settings, database_url=url))


def stored_files(server) -> list[Path]:
    root = server.runtime.settings.data_dir
    return sorted(p for p in (root / "datasets").rglob("*") if p.is_file()) + sorted((root / "tmp").glob("*"))


@pytest.mark.parametrize("filename,rows,features", [("iris.csv", 150, 4), ("wine_data.csv", 178, 13),
                                                    ("breast_cancer.csv", 569, 30)])
def test_sklearn_csvs_upload_with_profile(live_server, filename, rows, features):
    path = sklearn_csv(filename)
    status, item = upload(live_server, filename, path.read_bytes())
    assert status == 201, item
    assert item["name"] == Path(filename).stem and item["version"] == 1 and item["filename"] == filename
    assert item["size_bytes"] == path.stat().st_size
    names = [f"feature_{i}" for i in range(features)] + ["target"]  # the bundled layout has no header line
    assert item["rows"] == rows and [c["name"] for c in item["columns"]] == names
    status, full = call(live_server, "GET", f"/api/v1/datasets/{item['id']}")
    assert status == 200 and set(full["profile"]) == set(names)


@pytest.mark.parametrize("name", ["iris.csv.gz", "tips.csv.gz", "gapminder.csv.gz", "stocks.csv.gz", "wind.csv.gz"])
def test_plotly_csvs_upload(live_server, tmp_path, name):
    import pandas as pd

    try:
        path = plotly_csv(name, tmp_path)
    except FileNotFoundError:
        pytest.fail(f"plotly no longer ships {name}")
    status, item = upload(live_server, path.name, path.read_bytes())
    assert status == 201, item
    oracle = pd.read_csv(path)
    assert item["rows"] == len(oracle)
    assert [c["name"] for c in item["columns"]] == list(oracle.columns)
    assert [c["missing"] for c in item["columns"]] == [int(v) for v in oracle.isna().sum()]


def test_dataset_crud_versions_and_events(data_server):
    client = Client(data_server.ws_url)
    iris = sklearn_csv("iris.csv").read_bytes()
    status, first = upload(data_server, "iris.csv", iris, name="flowers", upload_id="u1")
    assert status == 201 and first["version"] == 1
    status, second = upload(data_server, "iris.csv", iris, name="flowers", upload_id="u2")
    assert status == 201 and second["id"] == first["id"] and second["version"] == 2
    seen = client.until(lambda e: e["type"] == "activity_update" and "version 2" in e["data"]["message"], timeout=15)
    kinds = [e["type"] for e in seen]
    assert "dataset_created" in kinds and "dataset_updated" in kinds and "upload_complete" in kinds
    assert kinds.index("dataset_created") < kinds.index("dataset_updated")
    progress = [e["data"] for e in seen if e["type"] == "upload_progress" and e["data"]["upload_id"] == "u1"]
    assert {p["stage"] for p in progress} == {"receiving", "parsing"}
    assert progress[-1]["rows_parsed"] == first["rows"]
    activity = [e["data"]["message"] for e in seen if e["type"] == "activity_update"]
    assert any("flowers" in m and "version 2" in m for m in activity)
    client.close()

    status, listing = call(data_server, "GET", "/api/v1/datasets")
    assert status == 200 and [d["id"] for d in listing["items"]] == [first["id"]]
    status, renamed = call(data_server, "PATCH", f"/api/v1/datasets/{first['id']}", {"name": "iris"})
    assert status == 200 and renamed["name"] == "iris"
    assert_error(call(data_server, "PATCH", f"/api/v1/datasets/{first['id']}", {"colour": "x"}), 400, "unknown_fields")
    assert_error(call(data_server, "GET", "/api/v1/datasets/999999"), 404, "dataset_not_found")
    status, _ = call(data_server, "DELETE", f"/api/v1/datasets/{first['id']}")
    assert status == 204
    assert stored_files(data_server) == []
    status, activity = call(data_server, "GET", "/api/v1/activity?limit=2")
    assert status == 200 and "deleted" in activity["items"][0]["message"]


MALFORMED = {
    "empty.csv": (b"", 400, "empty_file"),
    "header.csv": (b"a,b,c\n", 400, "header_only"),
    "ragged.csv": (b"a,b\n1,2\n3,4,5,6\n", 400, "ragged_rows"),
    "image.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, 415, "not_csv"),
}


@pytest.mark.parametrize("filename", sorted(MALFORMED))
def test_malformed_uploads_are_refused_and_leave_nothing(live_server, filename):
    content, status_code, code = MALFORMED[filename]
    client = Client(live_server.ws_url)
    status, body = upload(live_server, filename, content, upload_id="bad1")
    assert status == status_code and body["error"]["code"] == code, body
    assert body["error"]["message"]
    error = client.until(lambda e: e["type"] == "upload_error")[-1]
    assert error["data"]["upload_id"] == "bad1" and error["data"]["code"] == code
    assert call(live_server, "GET", "/api/v1/datasets")[1]["items"] == []
    assert stored_files(live_server) == []
    client.close()


def test_upload_errors(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, max_upload_mb=1))
    status, body = upload(server, "big.csv", b"a,b\n" + b"1,2\n" * 400_000)
    assert status == 413 and body["error"]["code"] == "too_large"
    assert_error(call(server, "POST", "/api/v1/datasets", {"file": "x"}), 415, "unsupported_media_type")
    body, content_type = multipart({"name": "x"}, {})
    request = urllib.request.Request(server.url + "/api/v1/datasets", data=body, method="POST", headers={"Content-Type": content_type})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and json.loads(info.value.read())["error"]["code"] == "file_required"
    status, body = upload(server, "a.csv", b"a,b\n1,2\n", other=("b.csv", b"x\n1\n"))
    assert status == 400 and body["error"]["code"] == "unknown_fields"
    assert stored_files(server) == []


def test_aborted_upload_leaves_nothing(live_server):
    head = b"a,b\n" + b"1,2\n" * 1000
    body, content_type = multipart({}, {"file": ("cut.csv", head * 50)})
    with socket.create_connection(("127.0.0.1", live_server.port)) as sock:
        sock.sendall(
            f"POST /api/v1/datasets?upload_id=cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        sock.sendall(body[: len(body) // 3])
    def upload_error():
        events = live_server.runtime.log.read_after(0, None)
        return next((e for e in events if e.type == "upload_error" and e.data["upload_id"] == "cut"), None)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and upload_error() is None:
        time.sleep(0.1)
    error = upload_error()
    assert error is not None and error.data["code"] == "upload_aborted"
    assert stored_files(live_server) == []
    assert call(live_server, "GET", "/api/v1/datasets")[1]["items"] == []


def test_pipeline_crud_and_validation(data_server):
    status, dataset = upload(data_server, "iris.csv", sklearn_csv("iris.csv").read_bytes())
    columns = [c["name"] for c in dataset["columns"]]
    target = columns[-1]
    body = {"name": "iris-rf", "dataset_id": dataset["id"], "target": target, "model": "random_forest",
            "params": {"n_estimators": 50}}
    status, pipeline = call(data_server, "POST", "/api/v1/pipelines", body)
    assert status == 201, pipeline
    assert pipeline["name"] == "iris-rf" and pipeline["features"] is None and pipeline["params"] == {"n_estimators": 50}
    assert set(pipeline) == {"id", "name", "dataset_id", "target", "model", "params", "features", "created_at", "updated_at"}
    assert_error(call(data_server, "POST", "/api/v1/pipelines", body), 409, "name_taken")
    status, error = call(data_server, "POST", "/api/v1/pipelines", dict(body, name="x", target="nope", model="svm"))
    assert status == 422 and {"target", "model"} <= set(error["error"]["details"])
    status, error = call(data_server, "POST", "/api/v1/pipelines", dict(body, name="y", params={"n_estimators": 0, "depth": 3}))
    assert status == 422 and {"params.n_estimators", "params.depth"} <= set(error["error"]["details"])
    status, error = call(data_server, "POST", "/api/v1/pipelines", dict(body, name="z", features=[target]))
    assert status == 422 and "features" in error["error"]["details"]
    status, error = call(data_server, "POST", "/api/v1/pipelines", dict(body, name="w", dataset_id=424242))
    assert status == 422 and "dataset_id" in error["error"]["details"]
    assert_error(call(data_server, "POST", "/api/v1/pipelines", dict(body, colour="red")), 400, "unknown_fields")
    assert_error(call(data_server, "POST", "/api/v1/pipelines", {"name": "q"}), 422, "validation_failed")
    assert_error(call(data_server, "POST", "/api/v1/pipelines", b"[1,"), 400, "invalid_json")

    status, updated = call(data_server, "PATCH", f"/api/v1/pipelines/{pipeline['id']}", {"model": "mlp", "params": {"hidden_layer_sizes": [16, 8]}})
    assert status == 200 and updated["model"] == "mlp" and updated["updated_at"] >= pipeline["updated_at"]
    assert call(data_server, "GET", f"/api/v1/pipelines/{pipeline['id']}")[1]["model"] == "mlp"
    assert_error(call(data_server, "DELETE", f"/api/v1/datasets/{dataset['id']}"), 409, "dataset_in_use")
    status, _ = call(data_server, "DELETE", f"/api/v1/pipelines/{pipeline['id']}")
    assert status == 204
    assert_error(call(data_server, "GET", f"/api/v1/pipelines/{pipeline['id']}"), 404, "pipeline_not_found")
    assert call(data_server, "GET", "/api/v1/pipelines")[1]["items"] == []
    messages = [a["message"] for a in call(data_server, "GET", "/api/v1/activity?limit=10")[1]["items"]]
    assert messages[0] == "Pipeline iris-rf deleted." and any("created" in m for m in messages)


def test_activity_paging_and_persistence(make_live_server, settings):
    server = make_live_server(settings)
    for i in range(5):
        server.runtime.activity.record(f"note {i}", category="test")
    status, page = call(server, "GET", "/api/v1/activity?limit=2")
    assert [a["message"] for a in page["items"]] == ["note 4", "note 3"]
    status, page2 = call(server, "GET", f"/api/v1/activity?limit=2&before={page['items'][-1]['id']}")
    assert [a["message"] for a in page2["items"]] == ["note 2", "note 1"]
    assert_error(call(server, "GET", "/api/v1/activity?limit=0"), 400, "invalid_parameter")
    server.stop()
    again = make_live_server(settings)  # same data dir: the feed survives a restart
    assert call(again, "GET", "/api/v1/activity?limit=1")[1]["items"][0]["message"] == "note 4"


def test_ids_and_ranges_out_of_bounds_are_client_errors(live_server):
    assert_error(call(live_server, "GET", f"/api/v1/datasets/{2**70}"), 404, "not_found")
    assert_error(call(live_server, "GET", f"/api/v1/pipelines/{2**70}"), 404, "not_found")
    assert_error(call(live_server, "GET", f"/api/v1/activity?before={2**70}"), 400, "invalid_parameter")
    assert_error(call(live_server, "GET", "/api/v1/charts/cpu.csv?last=99999999d"), 400, "invalid_parameter")
    assert_error(call(live_server, "POST", "/api/v1/pipelines", {"name": "x" * (2 << 20)}), 413, "too_large")


def test_upload_survives_an_unreachable_event_log(make_live_server, settings, tmp_path):
    """The dataset is stored and the answer is 201 even when no event can be published."""
    port = free_port()  # nothing listens on it
    server = make_live_server(dataclasses.replace(settings, event_log=f"redis://127.0.0.1:{port}/0"))
    status, item = upload(server, "iris.csv", sklearn_csv("iris.csv").read_bytes())
    assert status == 201 and item["rows"] == 150
    assert call(server, "GET", "/api/v1/datasets")[1]["items"][0]["id"] == item["id"]
    assert [p.name for p in stored_files(server)] == ["v1.csv"]
