"""What a user sees, in Chromium: live charts, pushed events, reconnection, bursts, local assets."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import js, points, trace, wait_js
from tests.conftest import wait_until
from tests.samples import STATS

pytestmark = pytest.mark.browser


def wait_live(dash_duo):
    dash_duo.wait_for_text_to_equal("#conn-badge", "Live", timeout=15)


def test_live_charts_gain_points(dash_duo, start_dashboard):
    start_dashboard(dash_duo, stats_interval_s=0.25)
    wait_live(dash_duo)
    wait_js(dash_duo, "window.mlops.counters.handled > 0")
    before = {g: points(dash_duo, g) for g in ("graph-cpu", "graph-mem", "graph-disk", "graph-net")}
    after = {}

    def grew():  # samples come every 0.25 s: each chart gains points while we watch
        after.update({g: points(dash_duo, g) for g in before})
        return all(after[g] >= before[g] + 3 for g in before)

    assert wait_until(grew, timeout=30), (before, after)
    # The KPI cards follow the stream too.
    assert dash_duo.find_element("#kpi-cpu").text.endswith("%")
    assert re.fullmatch(r"\d+(\.\d)? [KMGT]?B of \d+(\.\d)? [KMGT]?B", dash_duo.find_element("#kpi-mem-sub").text)
    assert dash_duo.get_logs() == []


def test_page_load_shows_recent_history_at_once(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)
    # Samples published before the page is opened are drawn in the first render.
    for i in range(30):
        dash_app.mlops.publish("system_stats", dict(STATS, cpu_percent=float(i)))
    dash_duo.driver.refresh()
    wait_live(dash_duo)
    wait_js(dash_duo, "document.querySelector('#graph-cpu .js-plotly-plot') !== null")
    assert wait_js(dash_duo, "(document.querySelector('#graph-cpu .js-plotly-plot').data || [{x: []}])[0].x.length") == 30
    ys = js(dash_duo, "return Array.from(document.querySelector('#graph-cpu .js-plotly-plot').data[0].y)")
    assert ys == [float(i) for i in range(30)]
    dash_duo.wait_for_text_to_equal("#kpi-cpu", "29.0%")


def test_event_published_on_server_shows_in_page(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)
    wait_live(dash_duo)
    dash_app.mlops.publish(
        "health_change",
        {"component": "gpu_worker", "status": "down", "message": "<b>ECC</b> errors", "overall": "down"},
    )
    dash_duo.wait_for_element("[data-component='gpu_worker'][data-status='down']", timeout=10)
    row = dash_duo.find_element("[data-component='gpu_worker']")
    assert "<b>ECC</b> errors" in row.text  # user text is shown as text, never as HTML
    dash_duo.wait_for_text_to_equal("#health-badge", "Health: down")


def test_dropped_connection_reconnects_without_missing_seq(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)
    wait_live(dash_duo)
    hub = dash_app.mlops.hub
    first = [dash_app.mlops.publish("training_progress", {"job_id": "a", "step": i, "fraction": 0.0}) for i in range(5)]
    wait_js(dash_duo, f"window.mlops.state.lastSeq >= {first[-1].seq}")
    assert hub.disconnect_all() == 1
    # Published while the browser is away or reconnecting: must arrive by replay.
    during = [dash_app.mlops.publish("training_progress", {"job_id": "a", "step": i, "fraction": 0.5}) for i in range(20)]
    wait_js(dash_duo, f"window.mlops.state.lastSeq >= {during[-1].seq}", timeout=15)
    wait_live(dash_duo)
    states = [c["text"] for c in js(dash_duo, "return window.mlops.connection")]
    reconnecting = [i for i, s in enumerate(states) if s.startswith(("Reconnecting", "Offline"))]
    assert reconnecting, states
    assert "Live" in states[reconnecting[0]:], states
    seqs = trace(dash_duo)
    assert seqs == list(range(seqs[0], during[-1].seq + 1)), "missing or repeated seqs"
    assert js(dash_duo, "return window.mlops.counters.reconnects") >= 1


def test_burst_of_500_events_in_one_second_all_reach_the_dispatcher(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)
    wait_live(dash_duo)
    start_seq = js(dash_duo, "return window.mlops.state.lastSeq")
    began = time.monotonic()
    published = []
    for i in range(500):
        published.append(dash_app.mlops.publish("training_progress", {"job_id": "burst", "step": i, "fraction": i / 500}))
        time.sleep(max(0.0, began + (i + 1) / 500 - time.monotonic()))
    wait_js(dash_duo, f"window.mlops.state.lastSeq >= {published[-1].seq}", timeout=20)
    handled = [s for s in trace(dash_duo) if s > start_seq]
    assert handled == [e.seq for e in published]  # 500 distinct seqs, in order, none twice
    assert js(dash_duo, "return window.mlops.latest.training_progress.data.step") == 499


def test_path_prefix(dash_duo, start_dashboard):
    start_dashboard(dash_duo, url_prefix="/mlops/", stats_interval_s=0.25)
    assert dash_duo.driver.current_url.endswith("/mlops/") or dash_duo.driver.current_url.endswith("/mlops")
    wait_live(dash_duo)
    wait_js(dash_duo, "window.mlops.counters.handled > 2")
    # The API the page uses for snapshots lives under the same prefix.
    snapshot = js(dash_duo, "return fetch(window.mlops.apiUrl('snapshot')).then(r => r.status)")
    assert snapshot == 200


def test_every_asset_is_served_locally(dash_duo, start_dashboard):
    start_dashboard(dash_duo, background=False)
    wait_live(dash_duo)
    urls = js(
        dash_duo,
        "return Array.from(document.querySelectorAll('link[rel=stylesheet], script[src]'))"
        ".map(e => e.href || e.src)",
    )
    assert urls and all(u.startswith(dash_duo.server_url) for u in urls), urls
    # Bootstrap styles are applied: the navbar is dark and the badge is a Bootstrap badge.
    background = js(dash_duo, "return getComputedStyle(document.querySelector('.navbar')).backgroundColor")
    assert background == "rgb(33, 37, 41)"
    assert js(dash_duo, "return getComputedStyle(document.querySelector('#conn-badge')).borderRadius") != "0px"
