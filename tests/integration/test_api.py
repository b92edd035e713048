"""The REST API of the live core over real HTTP."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request

from tests.conftest import wait_until
from tests.samples import STATS


def call(server, method: str, path: str, body=None, content_type="application/json"):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(server.url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def assert_error(status_body, status: int, code: str):
    got_status, body = status_body
    assert got_status == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]


def test_health_reports_each_component(live_server):
    status, body = call(live_server, "GET", "/api/v1/health")
    assert status == 200
    assert set(body["components"]) == {"event_log", "stats_sampler", "disk", "storage"}
    assert body["components"]["storage"]["status"] == "healthy"
    assert body["components"]["event_log"]["status"] == "healthy"
    # background=False in tests: no sampler, so the sampler check says so and health is degraded.
    assert body["components"]["stats_sampler"]["status"] == "degraded"
    assert body["status"] == "degraded"
    live_server.runtime.publish("system_stats", STATS)  # reaches live state through the hub's pump thread
    sampler = {}

    def sampled():
        sampler.update(call(live_server, "GET", "/api/v1/health")[1]["components"]["stats_sampler"])
        return sampler["status"] == "healthy"

    assert wait_until(sampled, timeout=10), sampler
    assert sampler["message"].startswith("last sample")


def test_health_is_down_when_disk_is_below_minimum(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, min_free_disk_mb=10**9))
    status, body = call(server, "GET", "/api/v1/health")
    assert status == 503 and body["status"] == "down"
    assert body["components"]["disk"]["status"] == "down" and "minimum" in body["components"]["disk"]["message"]


def test_publish_and_read_events(live_server):
    status, event = call(live_server, "POST", "/api/v1/events", {"type": "system_stats", "data": STATS})
    assert status == 201 and event["seq"] == 1 and event["type"] == "system_stats"
    status, body = call(live_server, "GET", "/api/v1/events?after=0")
    assert status == 200 and [e["seq"] for e in body["events"]] == [1] and body["epoch"] == event["epoch"]
    status, snapshot = call(live_server, "GET", "/api/v1/snapshot")
    assert snapshot["seq"] == 1 and snapshot["samples"][0]["cpu_percent"] == STATS["cpu_percent"]


def test_event_errors_have_one_shape(live_server):
    assert_error(call(live_server, "POST", "/api/v1/events", {"type": "nope", "data": {}}), 422, "invalid_event")
    assert_error(call(live_server, "POST", "/api/v1/events", {"type": "system_stats", "data": {"host": 1}}), 422, "invalid_event")
    assert_error(call(live_server, "POST", "/api/v1/events", {"data": {}}), 422, "invalid_event")
    assert_error(call(live_server, "POST", "/api/v1/events", {"type": "system_stats", "extra": 1}), 400, "unknown_fields")
    assert_error(call(live_server, "POST", "/api/v1/events", b"{not json"), 400, "invalid_json")
    assert_error(call(live_server, "POST", "/api/v1/events", b"x", content_type="text/plain"), 415, "unsupported_media_type")
    assert_error(call(live_server, "GET", "/api/v1/events?after=abc"), 400, "invalid_parameter")
    assert_error(call(live_server, "GET", "/api/v1/events?limit=0"), 400, "invalid_parameter")
    assert_error(call(live_server, "GET", "/api/v1/events?after=0&epoch=old"), 410, "history_gap")
    assert_error(call(live_server, "GET", "/api/v1/nothing-here"), 404, "not_found")
    assert_error(call(live_server, "DELETE", "/api/v1/health"), 405, "method_not_allowed")
    # Nothing invalid reached the log.
    assert live_server.runtime.log.head()[1] == 0
