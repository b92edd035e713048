"""A real server restart under an open page: the badge says so, the page comes back by itself."""

from __future__ import annotations

import pytest

from tests.browser.conftest import js, points, wait_js
from tests.processes import AppProcess, free_port

pytestmark = pytest.mark.browser


def test_page_survives_a_server_restart(dash_br, tmp_path):
    port = free_port()
    env = {"MLOPS_STATS_INTERVAL_S": "0.25", "MLOPS_MIN_FREE_DISK_MB": "0"}
    server = AppProcess(tmp_path, "first", port=port, **env)
    try:
        dash_br.server_url = server.url
        dash_br.wait_for_text_to_equal("#conn-badge", "Live", timeout=15)
        wait_js(dash_br, "window.mlops.counters.handled >= 4")
        first_epoch = js(dash_br, "return window.mlops.state.epoch")
    finally:
        server.stop()
    wait_js(dash_br, "/^(Reconnecting|Offline)/.test(document.querySelector('#conn-badge').textContent)", timeout=15)
    before = points(dash_br, "graph-cpu")

    server = AppProcess(tmp_path, "second", port=port, **env)  # same port, new process: a new epoch
    try:
        dash_br.wait_for_text_to_equal("#conn-badge", "Live", timeout=30)
        wait_js(dash_br, f"window.mlops.state.epoch && window.mlops.state.epoch !== '{first_epoch}'", timeout=15)
        assert js(dash_br, "return window.mlops.counters.resets") >= 1
        # The old points stay and new ones follow: the restart is a pause in the chart, not a blank.
        wait_js(dash_br, f"document.querySelector('#graph-cpu .js-plotly-plot').data[0].x.length > {before + 2}", timeout=15)
        xs = js(dash_br, "return Array.from(document.querySelector('#graph-cpu .js-plotly-plot').data[0].x)")
        assert xs == sorted(xs), "samples out of time order after the restart"
        assert len(xs) == len(set(xs)), "a sample was drawn twice"
        assert dash_br.driver.execute_script("return performance.getEntriesByType('navigation').length") == 1
    finally:
        server.stop()
