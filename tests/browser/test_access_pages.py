"""Logins, the Access page, share links and the delete confirmation, in Chromium."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from storage.models import Model
from tests.browser.conftest import js, wait_css, wait_js
from tests.browser.test_ml_pages import iris_pipeline

pytestmark = pytest.mark.browser

ADMIN = ("ada", "a long passphrase")


def api(base: str, method: str, path: str, body=None, auth=ADMIN):
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + "/api/v1" + path, data=data, method=method,
                                     headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def other_site():
    """Serves a page from another origin (a port of its own); stopped when the test ends."""
    servers = []

    def serve(page: bytes) -> str:
        server, url = _serve(page)
        servers.append(server)
        return url

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _serve(page: bytes):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/wiki"


def log_in(driver, user: str, password: str) -> None:
    field = wait_css(driver, "#login-user")
    field.clear()  # a refused login keeps the name typed
    field.send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "#login-password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login-submit").click()


def test_login_then_tokens_from_the_access_page(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, open_page=False, background=False, auth="on", admin_user=ADMIN[0], admin_password=ADMIN[1])
    base = dash_duo.server.url
    dash_duo.driver.get(base + "/datasets")  # not logged in: to the login page, and back after
    wait_css(dash_duo.driver, "#login-form")
    assert "/login?next=/datasets" in dash_duo.driver.current_url
    log_in(dash_duo.driver, "ada", "wrong password")
    wait_css(dash_duo.driver, "#login-message", text="Wrong user name or password")
    log_in(dash_duo.driver, *ADMIN)
    wait_css(dash_duo.driver, "#upload-zone", timeout=15)
    assert dash_duo.driver.current_url == base + "/datasets"
    wait_css(dash_duo.driver, "#user-menu", text="ada")
    wait_js(dash_duo, "document.getElementById('conn-badge').textContent === 'Live'", timeout=15)

    dash_duo.driver.get(base + "/access")
    wait_css(dash_duo.driver, "#token-name", timeout=15).send_keys("notebook")
    dash_duo.driver.find_element(By.CSS_SELECTOR, "#token-create").click()
    secret = wait_css(dash_duo.driver, "#new-token-secret", timeout=15).text
    assert secret.startswith("mlops_")
    wait_css(dash_duo.driver, ".token-row[data-state='active']", text="notebook")
    me = urllib.request.Request(base + "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(me, timeout=10) as response:
        assert json.loads(response.read())["name"] == "ada"
    # The admin sees the users card and adds a viewer; a viewer cannot create anything.
    wait_css(dash_duo.driver, "#user-name").send_keys("vic")
    dash_duo.driver.find_element(By.CSS_SELECTOR, "#user-password").send_keys("viewer-pass")
    dash_duo.driver.find_element(By.CSS_SELECTOR, "#user-create").click()
    wait_css(dash_duo.driver, ".user-row", text="vic")
    assert {u["name"]: u["role"] for u in dash_app.mlops.accounts.list_users()} == {"ada": "admin", "vic": "viewer"}
    assert api(base, "POST", "/pipelines", {}, auth=("vic", "viewer-pass"))[0] == 403

    dash_duo.find_element(".token-row button").click()  # Revoke
    wait_css(dash_duo.driver, ".token-row[data-state='revoked']", text="notebook")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(me, timeout=10)
    assert refused.value.code == 401

    dash_duo.find_element("#user-menu button").click()  # Log out
    wait_css(dash_duo.driver, "#login-form")
    dash_duo.driver.get(base + "/models")
    wait_css(dash_duo.driver, "#login-form")


def test_a_share_link_shows_its_chart_live_in_a_frame_and_nothing_else(dash_duo, start_dashboard, other_site):
    start_dashboard(dash_duo, open_page=False, stats_interval_s=0.25, auth="on", admin_user=ADMIN[0], admin_password=ADMIN[1])
    base = dash_duo.server.url
    status, share = api(base, "POST", "/charts/cpu/share", {"expires_in_days": 1})
    assert status == 201 and share["url"].endswith("/embed/cpu")
    url = share["url"].replace("http://localhost", "http://127.0.0.1")  # another origin than the test page
    # A wiki page on another origin frames the link: no login, no cookie, and the chart comes alive.
    page = f'<html><body><iframe id="shared" src="{url}" width="800" height="400"></iframe></body></html>'
    wiki = other_site(page.encode())
    dash_duo.driver.get(wiki)
    frame = wait_css(dash_duo.driver, "#shared")
    dash_duo.driver.switch_to.frame(frame)
    try:
        wait_css(dash_duo.driver, "#graph-cpu .js-plotly-plot", timeout=20)
        wait_js(dash_duo, "window.mlops.counters.handled > 3", timeout=20)
        types = js(dash_duo, "return Object.keys(window.mlops.latest)")
        assert types == ["system_stats"], types  # the socket carries this chart's events only
        sample = js(dash_duo, "return window.mlops.latest.system_stats.data")
        assert set(sample) == {"cpu_percent", "interval_s"}
        points = js(dash_duo, "return document.querySelector('#graph-cpu .js-plotly-plot').data[0].x.length")
        wait_js(dash_duo, f"document.querySelector('#graph-cpu .js-plotly-plot').data[0].x.length > {points + 2}", timeout=20)
        assert js(dash_duo, "return window.mlops.counters.resumes") == 0  # skipped seqs are not gaps
        # Nothing else is reachable with the link, even from inside its own page.
        other = js(dash_duo, "return fetch(location.pathname.replace('embed/cpu', 'api/v1/datasets')).then(r => r.status)")
        assert other == 403
    finally:
        dash_duo.driver.switch_to.default_content()
    assert api(base, "DELETE", f"/shares/{share['id']}")[0] == 204
    with pytest.raises(urllib.error.HTTPError) as revoked:
        urllib.request.urlopen(url, timeout=10)
    assert revoked.value.code == 404


def test_deleting_a_pipeline_that_serves_asks_first(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)

    class Server:
        url = dash_duo.server.url

    pipeline = iris_pipeline(Server, {"n_estimators": 5})
    with dash_app.mlops.db.session() as session:  # a deployed version, as the registry leaves one
        session.add(Model(pipeline_id=pipeline["id"], version=1, status="deployed", task="classification"))
    dash_duo.driver.get(dash_duo.server.url + "/pipelines")
    wait_css(dash_duo.driver, "#pipelines-table button.btn-outline-danger", timeout=15).click()
    alert = WebDriverWait(dash_duo.driver, 15).until(expected_conditions.alert_is_present())
    assert "serves predictions" in alert.text
    alert.dismiss()
    wait_js(dash_duo, "document.querySelectorAll('#pipelines-table button.btn-outline-danger').length === 1")
    assert [p["id"] for p in dash_app.mlops.pipelines.list()] == [pipeline["id"]]  # dismissed: still there
    dash_duo.find_element("#pipelines-table button.btn-outline-danger").click()
    WebDriverWait(dash_duo.driver, 15).until(expected_conditions.alert_is_present()).accept()
    wait_css(dash_duo.driver, ".pipeline-error, .alert", text="Pipeline deleted")
    assert dash_app.mlops.pipelines.list() == []
