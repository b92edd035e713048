"""Chart export in every format, the chart data API, the OpenAPI document and notebook figures."""

from __future__ import annotations

import csv
import re
import io
import json
import struct
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from components.charts import CHARTS
from tests.integration.test_api import assert_error, call
from tests.samples import STATS


def get(server, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def stats_server(live_server):
    for i in range(20):
        live_server.runtime.publish("system_stats", dict(STATS, cpu_percent=float(i), net_recv_bps=1000.0 + i))
    return live_server


def png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    assert body[12:16] == b"IHDR"
    return struct.unpack(">II", body[16:24])


def test_png_has_the_requested_size(stats_server):
    status, headers, body = get(stats_server, "/api/v1/charts/cpu.png?width=640&height=300")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert png_size(body) == (640, 300)
    status, headers, body = get(stats_server, "/api/v1/charts/system_stats.png?theme=dark&download=1")
    assert png_size(body) == (1000, 560)
    assert headers["Content-Disposition"] == 'attachment; filename="system_stats.png"'


def test_svg_parses_and_pdf_is_a_pdf(stats_server):
    status, headers, body = get(stats_server, "/api/v1/charts/memory.svg?width=500&height=300")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    root = ET.fromstring(body)
    assert root.tag.endswith("svg") and root.get("width") == "500"
    status, headers, body = get(stats_server, "/api/v1/charts/network.pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")


def test_html_is_self_contained_with_the_data(stats_server):
    status, headers, body = get(stats_server, "/api/v1/charts/cpu.html")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    html = body.decode()
    assert "<script src=\"http" not in html and "src='http" not in html
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js is inline
    figure = json.loads(get(stats_server, "/api/v1/charts/cpu.json")[2])
    assert figure["data"][0]["y"][-5:] == [15.0, 16.0, 17.0, 18.0, 19.0]
    assert json.dumps(figure["data"][0]["y"], separators=(",", ":")) in html  # the very samples, inline


def test_csv_round_trips(stats_server):
    status, headers, body = get(stats_server, "/api/v1/charts/network.csv")
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 20
    assert list(rows[0]) == ["time", "net_recv_bps", "net_sent_bps"]
    assert [float(r["net_recv_bps"]) for r in rows] == [1000.0 + i for i in range(20)]
    assert all(r["time"].endswith("Z") for r in rows)


def test_range_selects_samples(stats_server):
    status, body = call(stats_server, "GET", "/api/v1/charts/cpu/data?last=1h")
    assert status == 200 and len(body["samples"]) == 20 and body["fields"] == ["cpu_percent"]
    stats_server.runtime.publish("system_stats", STATS)
    status, body = call(stats_server, "GET", "/api/v1/charts/cpu/data?last=0.001s")
    assert status == 200 and len(body["samples"]) <= 1


def test_export_errors(stats_server):
    assert_error(call(stats_server, "GET", "/api/v1/charts/gpu.png"), 404, "unknown_chart")
    assert_error(call(stats_server, "GET", "/api/v1/charts/cpu.gif"), 404, "unknown_format")
    assert_error(call(stats_server, "GET", "/api/v1/charts/cpu.png?last=forever"), 400, "invalid_parameter")
    assert_error(call(stats_server, "GET", "/api/v1/charts/cpu.png?width=20"), 400, "invalid_parameter")
    assert_error(call(stats_server, "GET", "/api/v1/charts/cpu.png?theme=neon"), 400, "invalid_parameter")
    assert_error(call(stats_server, "GET", "/api/v1/charts/cpu.png?colour=red"), 400, "invalid_parameter")


def test_chart_list_names_every_chart(stats_server):
    status, body = call(stats_server, "GET", "/api/v1/charts")
    assert {c["name"] for c in body["items"]} == set(CHARTS)


def test_openapi_documents_every_route(live_server):
    status, doc = call(live_server, "GET", "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops if method != "parameters"}
    registered = set()
    for rule in live_server.app.server.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.unknown":
            continue
        path = rule.rule.removeprefix("/api/v1")
        path = path.replace("<chart_name>", "{chart}").replace("<fmt>", "{format}")
        path = re.sub(r"<(?:\w+)(?:\([^)]*\))?:(\w+)>", r"{\1}", path)  # <int(max=..):id>, <string(length=32):id>
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            registered.add((path, method))
    assert documented == registered


def test_notebook_figure_is_the_dashboard_figure(stats_server):
    from client import charts

    fig = charts.cpu(stats_server.url, last="1h")
    assert list(fig.data[0].y) == [float(i) for i in range(20)]
    same = CHARTS["cpu"].figure(json.loads(get(stats_server, "/api/v1/charts/cpu/data?last=1h")[2])["samples"])
    assert fig.to_dict() == same.to_dict()
    with pytest.raises(charts.DashboardError, match="unknown chart|404"):
        charts.fetch_samples(stats_server.url, "gpu")
    with pytest.raises(charts.DashboardError, match="cannot reach"):
        charts.cpu("http://127.0.0.1:9", last="1m")


def test_readme_notebook_example_runs(stats_server):
    import re

    from tests.processes import ROOT

    text = (ROOT / "README.md").read_text()
    example = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "from client import charts" in b)
    namespace: dict = {}
    exec(compile(example.replace("http://127.0.0.1:8050", stats_server.url), "README.md", "exec"), namespace)
    assert namespace["fig"].data and len(namespace["fig"].data) == 7
