"""Browser fixtures: a dashboard started by dash.testing's threaded server, driven in Chromium."""

from __future__ import annotations

import time

import pytest

from tests.conftest import need
from tests.processes import free_port


@pytest.fixture
def start_dashboard(request, tmp_path):
    """Start ``create_app(settings)`` under dash_duo; stops its background services afterwards."""
    import shutil

    need(shutil.which("chromedriver") is not None, "chromedriver not on PATH (apt install chromium-driver)")
    from app import create_app
    from config import Settings

    apps = []

    def start(dash_duo, open_page: bool = True, **overrides):
        settings = Settings(data_dir=tmp_path / "data", min_free_disk_mb=0, **overrides)
        dash_app = create_app(settings)
        apps.append(dash_app)
        dash_duo.start_server(dash_app, navigate=False, port=free_port())
        if open_page:  # a dashboard with logins on shows the login page first: the test opens what it needs
            dash_duo.server_url = dash_duo.server.url + settings.url_prefix.rstrip("/")  # opens the page
        return dash_app

    yield start
    for dash_app in apps:
        dash_app.mlops.stop()


def js(dash_duo, script: str):
    return dash_duo.driver.execute_script(script)


def wait_js(dash_duo, script: str, timeout: float = 10.0, message: str = ""):
    """Poll a JS expression until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = js(dash_duo, "return " + script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {script!r} {message} (last value {value!r})")


def points(dash_duo, graph_id: str) -> int:
    return js(
        dash_duo,
        f"const gd = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return gd && gd.data ? gd.data[0].x.length : -1;",
    )


def trace(dash_duo) -> list[int]:
    return js(dash_duo, "return window.mlops.trace.slice()")


@pytest.fixture
def second_browser():
    """Another Chromium, for what one user does and another sees."""
    from selenium import webdriver

    from tests.conftest import pytest_setup_options

    driver = webdriver.Chrome(options=pytest_setup_options())
    yield driver
    driver.quit()


def wait_css(driver, selector: str, timeout: float = 10.0, text: str | None = None):
    """Poll the page of ``driver`` until ``selector`` exists (and contains ``text``)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # live parts of the page are redrawn at any time: an element found may be gone a moment later
            found = driver.find_elements(By.CSS_SELECTOR, selector)
            matching = [f for f in found if text is None or text in f.text]
        except StaleElementReferenceException:
            matching = []
        if matching:
            return matching[0]
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {selector!r}" + (f" containing {text!r}" if text else ""))
