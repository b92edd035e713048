"""Embed pages and the Download / Embed controls, in Chromium."""

from __future__ import annotations


import pytest

from tests.browser.conftest import js, points, trace, wait_js

pytestmark = pytest.mark.browser


def test_embed_page_shows_one_chart_and_updates_live(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, stats_interval_s=0.25)
    dash_duo.server_url = dash_duo.server.url + "/embed/network?theme=dark"
    dash_duo.wait_for_element("#graph-net .js-plotly-plot", timeout=15)
    wait_js(dash_duo, "window.mlops.counters.handled > 2")
    assert js(dash_duo, "return document.querySelectorAll('.js-plotly-plot').length") == 1
    assert not dash_duo.find_element("#navbar").is_displayed()
    # theme=dark reached the figure: Plotly's resolved layout carries the dark paper colour.
    assert js(dash_duo, "return document.querySelector('#graph-net .js-plotly-plot')._fullLayout.paper_bgcolor") == "#212529"
    before = points(dash_duo, "graph-net")
    wait_js(dash_duo, f"document.querySelector('#graph-net .js-plotly-plot').data[0].x.length >= {before + 3}", timeout=30)
    # Same protocol as the dashboard: a dropped connection resumes with nothing missing.
    assert dash_app.mlops.hub.disconnect_all() >= 1  # this page's socket (the first page's may still be closing)
    last = dash_app.mlops.publish("health_change", {"component": "x", "status": "healthy", "overall": "healthy"}).seq
    wait_js(dash_duo, f"window.mlops.state.lastSeq >= {last}", timeout=15)
    seqs = trace(dash_duo)
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    assert js(dash_duo, "return window.mlops.counters.reconnects") >= 1


def test_unknown_embed_chart_says_which_exist(dash_duo, start_dashboard):
    start_dashboard(dash_duo, background=False)
    dash_duo.server_url = dash_duo.server.url + "/embed/gpu"
    dash_duo.wait_for_contains_text(".alert", "Unknown chart 'gpu'", timeout=10)
    assert "system_stats" in dash_duo.find_element(".alert").text


def test_download_links_and_embed_snippet(dash_duo, start_dashboard):
    start_dashboard(dash_duo, background=False)
    dash_duo.wait_for_element("#graph-cpu", timeout=15)
    links = js(
        dash_duo,
        "return Array.from(document.querySelectorAll('.chart-card')[0].querySelectorAll('.dropdown-menu a'))"
        ".map(a => a.getAttribute('href'))",
    )
    assert links == [f"/api/v1/charts/cpu.{ext}?download=1" for ext in ("png", "svg", "pdf", "html", "csv")]
    dash_duo.find_element("#graph-cpu").find_element("xpath", "..").find_element("css selector", ".chart-embed").click()
    snippet_id = '{"chart":"cpu","type":"embed-snippet"}'
    wait_js(dash_duo, f"(document.getElementById('{snippet_id}') || {{}}).textContent")
    snippet = js(dash_duo, f"return document.getElementById('{snippet_id}').textContent")
    assert snippet.startswith(f'<iframe src="{dash_duo.server.url}/embed/cpu"')
    assert js(dash_duo, "return fetch('/api/v1/charts/cpu.csv').then(r => r.status)") == 200
