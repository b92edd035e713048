"""What the API refuses, and how: methods a resource does not have, ids that cannot exist, bodies
that are not objects, query values that are not plain numbers or durations, names with a newline.

Each test is the regression test of a bug the fuzz tests (tests/integration/test_fuzz_api.py) found.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest
import requests

from components.charts import PREDICTION_VOLUME
from security import policy
from services import export
from tests.integration.test_api import assert_error, call
from tests.integration.test_data_api import upload
from tests.integration.test_ml_api import train, wait_job

TOO_BIG = 2**31  # one past MAX_ID


def send(server, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, server.url + path, timeout=10, **kwargs)


def error_code(response: requests.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]["code"]


# -- 1. Allow lists the resource's own methods --------------------------------------------------------

@pytest.mark.parametrize("prefix", ["/", "/mlops/"])
def test_options_and_405_name_the_methods_of_the_resource(make_live_server, settings, prefix):
    server = make_live_server(dataclasses.replace(settings, url_prefix=prefix))
    api = f"{prefix}api/v1"
    resources = {
        "/health": "GET, HEAD, OPTIONS",
        "/datasets/1": "GET, HEAD, PATCH, DELETE, OPTIONS",
        "/runs": "POST, OPTIONS",
        "/events": "GET, HEAD, POST, OPTIONS",
        "/charts/cpu.png": "GET, HEAD, OPTIONS",
    }
    for path, allow in resources.items():
        options = send(server, "OPTIONS", api + path)
        assert (options.status_code, options.headers.get("Allow")) == (200, allow), path
        methods = set(allow.split(", "))
        for method in sorted({"TRACE", "QUERY", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} - methods):
            refused = send(server, method, api + path)
            assert (refused.status_code, refused.headers.get("Allow")) == (405, allow), (method, path)
            if method != "HEAD":
                assert error_code(refused) == "method_not_allowed"
    for method in ("OPTIONS", "TRACE", "GET", "DELETE"):  # no resource: 404 whatever the method
        missing = send(server, method, f"{api}/nothing-here")
        assert missing.status_code == 404 and error_code(missing) == "not_found", method


# -- 2. ids that cannot exist are 404 -----------------------------------------------------------------

def test_ids_past_max_id_or_in_other_digits_are_404_for_every_method(live_server):
    status, document = call(live_server, "GET", "/api/v1/openapi.json")
    assert status == 200
    checked = 0
    for template, operations in document["paths"].items():
        if not re.search(r"\{\w+_id\}", template) or "{job_id}" in template:
            continue
        for method in [m for m in operations if m != "parameters"]:
            for bad_id in (str(TOO_BIG), "9" * 30, "\u0661", "\uff11"):  # Arabic-Indic and fullwidth "1"
                path = "/api/v1" + re.sub(r"\{\w+_id\}", bad_id, template)
                response = send(live_server, method.upper(), path, json={} if method in {"post", "patch"} else None)
                assert response.status_code == 404, (method, path, response.status_code, response.text[:200])
                assert error_code(response) in {"not_found"}, (method, path)
                checked += 1
    assert checked > 40


# -- 3. a JSON body is an object ----------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"null", b"[]", b'"x"', b"0", b"true"])
def test_an_optional_body_that_is_sent_must_be_an_object(live_server, raw):
    json_headers = {"Content-Type": "application/json"}
    assert_error(call(live_server, "POST", "/api/v1/charts/cpu/share", raw), 400, "invalid_json")
    status, run = call(live_server, "POST", "/api/v1/runs", {"name": "outside"})
    assert status == 201, run
    assert_error(call(live_server, "POST", f"/api/v1/runs/{run['id']}/finish", raw), 400, "invalid_json")
    assert call(live_server, "GET", f"/api/v1/jobs/{run['id']}")[1]["status"] == "running"  # nothing was finished
    # no body at all, or an object, is still fine
    assert send(live_server, "POST", "/api/v1/charts/cpu/share").status_code == 201
    assert send(live_server, "POST", "/api/v1/charts/cpu/share", data=b"{}", headers=json_headers).status_code == 201
    assert send(live_server, "POST", f"/api/v1/runs/{run['id']}/finish").status_code == 200


# -- 4, 5. query integers: ASCII digits, given once, never empty ----------------------------------------

NOT_PLAIN_NUMBERS = ["", "+5", "-5", "1_0", " 5", "5 ", "5\n", "0x10", "1e2", "5.0", "\u0665", "\u00b2", "\uff15", "true"]
INTEGER_PARAMETERS = ["/api/v1/events?after={}", "/api/v1/events?limit={}", "/api/v1/activity?limit={}",
                      "/api/v1/activity?before={}", "/api/v1/jobs?limit={}", "/api/v1/jobs?pipeline_id={}",
                      "/api/v1/models?pipeline_id={}", "/api/v1/charts/cpu.csv?width={}", "/api/v1/charts/cpu/data?height={}"]


def test_query_integers_are_plain_ascii_digits_given_once(live_server):
    for template in INTEGER_PARAMETERS:
        name = template.split("?")[1].split("=")[0]
        for value in NOT_PLAIN_NUMBERS:
            response = send(live_server, "GET", template.format(requests.utils.quote(value, safe="")))
            assert response.status_code == 400, (template, value, response.status_code)
            assert response.json()["error"] == {"code": "invalid_parameter", "message": response.json()["error"]["message"],
                                                "details": {"parameter": name}}, (template, value)
        good = "00" if name == "after" else "0500" if "charts" in template else "05"  # leading zeros are still digits
        assert send(live_server, "GET", template.format(good)).status_code == 200, template
        twice = send(live_server, "GET", template.format(good) + f"&{name}={good}")
        assert twice.status_code == 400 and error_code(twice) == "invalid_parameter", template
    repeated = send(live_server, "GET", "/api/v1/models?pipeline_id=&pipeline_id=false")
    assert repeated.status_code == 400 and error_code(repeated) == "invalid_parameter"


def test_other_query_values_are_given_once(live_server):
    for path in ("/api/v1/events?epoch=a&epoch=b", "/api/v1/jobs?status=failed&status=running",
                 "/api/v1/charts/cpu.csv?theme=dark&theme=light", "/api/v1/charts/cpu.csv?download=1&download=1",
                 "/api/v1/charts/cpu/data?last=1m&last=2m"):
        response = send(live_server, "GET", path)
        assert response.status_code == 400 and error_code(response) == "invalid_parameter", path


# -- 6. "last": the documented format only ------------------------------------------------------------

@pytest.mark.parametrize("last", [" 15m", "15m ", "15m\n", "\u0661\u0665m", "\uff11m", "15 m", "+15m", "15M"])
def test_last_is_a_number_and_a_unit_and_nothing_else(live_server, last):
    with pytest.raises(export.ExportError):
        export.parse_duration(last)
    response = send(live_server, "GET", "/api/v1/charts/cpu/data", params={"last": last})
    assert response.status_code == 400 and error_code(response) == "invalid_parameter"


def test_last_still_takes_the_documented_durations(live_server):
    for last, seconds in {"90s": 90, "15m": 900, "1.5h": 5400, "366d": 366 * 86400, "": None}.items():
        if seconds is not None:
            assert export.parse_duration(last) == seconds
        assert send(live_server, "GET", "/api/v1/charts/cpu/data", params={"last": last}).status_code == 200, last


# -- 7. absurd report intervals cannot break a chart --------------------------------------------------

@pytest.mark.parametrize("intervals", [(0.001, 1e300), (1e300, 0.001), (1.0, 1e-300), (1e-300, 5e-324), (1.0, float("inf"))])
def test_a_prediction_volume_chart_renders_whatever_intervals_it_was_sent(intervals):
    rows = []
    for seq, (second, interval) in enumerate(zip((1, 30), intervals), 1):
        data = {"model_id": 7, "pipeline_id": 3, "count": 10, "interval_s": interval, "total": 10 * seq,
                "latency_p50_ms": 1.0, "latency_p95_ms": 2.0}
        rows.append({"t": f"2026-01-01T00:00:{second:02d}.000000Z", "seq": seq, **PREDICTION_VOLUME.row(data)})
    for fmt in ("json", "html", "csv"):
        export.render(PREDICTION_VOLUME, rows, fmt, width=800, height=400, theme="light")
    figure = json.loads(export.render(PREDICTION_VOLUME, rows, "json", width=800, height=400, theme="light"))
    ys = [y for trace in figure["data"] for y in trace["y"]]
    assert all(isinstance(y, (int, float)) and y == y and abs(y) < 1e300 for y in ys), ys  # finite rates
    assert all(isinstance(row["rate"], float) and row["rate"] < 1e300 for row in rows)


def test_absurd_intervals_in_the_log_do_not_break_the_export_for_everyone(live_server):
    """Events a log holds from before the catalogue bounded ``interval_s`` (Redis keeps them) still chart."""
    for interval in (0.001, 1e300):
        data = {"model_id": 1, "pipeline_id": 1, "count": 5, "interval_s": interval, "total": 5,
                "latency_p50_ms": 1.0, "latency_p95_ms": 1.0}
        live_server.runtime.log._append("prediction_volume", data)  # past today's validation, as an old event is
        time.sleep(0.05)  # an idle gap after the 1 ms report: the chart draws it down to zero
    for fmt in ("json", "html", "csv"):
        assert send(live_server, "GET", f"/api/v1/charts/prediction_volume.{fmt}").status_code == 200, fmt
    assert send(live_server, "GET", "/api/v1/charts/prediction_volume/data").status_code == 200


# -- 8. user names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bob\n", "bob\r\n", "\nbob", "bob ", "b\u00f6b", "b\u0661"])
def test_a_user_name_is_the_documented_characters_only(live_server, name):
    body = {"name": name, "password": "a-long-password", "role": "viewer"}
    assert_error(call(live_server, "POST", "/api/v1/users", body), 422, "validation_failed")
    assert call(live_server, "GET", "/api/v1/users")[1]["items"] == []
    assert call(live_server, "POST", "/api/v1/users", body | {"name": "bob"})[0] == 201


# -- 9. undeploy --------------------------------------------------------------------------------------

def test_undeploy_retires_the_deployed_version(live_server):
    assert policy.ROUTES["api.undeploy_model"] == policy.EDITOR
    assert_error(call(live_server, "POST", "/api/v1/models/999/undeploy"), 404, "model_not_found")
    rows = "".join(f"{'yes' if i % 2 else 'no'},{i % 7},{(i * 13) % 10}\n" for i in range(40))
    status, dataset = upload(live_server, "small.csv", f"label,a,b\n{rows}".encode())
    assert status == 201, dataset
    body = {"name": "small", "dataset_id": dataset["id"], "target": "label", "model": "linear"}
    status, pipeline = call(live_server, "POST", "/api/v1/pipelines", body)
    assert status == 201, pipeline
    job = wait_job(live_server, train(live_server, pipeline["id"]), "succeeded", "failed")
    assert job["status"] == "succeeded", job
    model_path = f"/api/v1/models/{job['model_id']}"
    assert_error(call(live_server, "POST", f"{model_path}/undeploy"), 409, "not_deployed")  # ready, not deployed
    assert call(live_server, "POST", f"{model_path}/deploy")[0] == 200
    instance = {"instances": [{"a": 1, "b": 2}]}
    assert call(live_server, "POST", f"/api/v1/pipelines/{pipeline['id']}/predict", instance)[0] == 200
    status, model = call(live_server, "POST", f"{model_path}/undeploy")
    assert status == 200 and model["id"] == job["model_id"] and model["status"] == "retired", model
    assert call(live_server, "POST", f"/api/v1/pipelines/{pipeline['id']}/predict", instance)[0] == 409
    assert_error(call(live_server, "POST", f"{model_path}/undeploy"), 409, "not_deployed")


# -- the document says what POST /events does with a claimed actor ------------------------------------

def test_a_posted_events_actor_is_the_caller_whatever_the_body_claims(live_server):
    document = call(live_server, "GET", "/api/v1/openapi.json")[1]
    assert "ignored" in document["components"]["schemas"]["EventData_model_deployed"]["properties"]["actor"]["description"]
    body = {"type": "model_deployed", "data": {"model_id": 1, "pipeline_id": 1, "actor": {"not": "a name"}}}
    status, event = call(live_server, "POST", "/api/v1/events", body)
    assert status == 201 and event["data"]["actor"] == "local" and event["data"]["posted"] is True, event
