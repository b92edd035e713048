"""Another site's page attacks the dashboard through the victim's own Chromium; the dashboard's pages keep their CSP.

The attacker's page is served from a second origin (``http://127.0.0.1:<other port>``) to the browser that
has the dashboard open at ``http://localhost:<port>``. Everything it tries (no-cors fetches, form posts,
a WebSocket, a frame) must reach the server and change nothing; the very same requests from the
dashboard's own page, with its CSRF token, must work (so the checks do not simply refuse everything).
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import urllib.request

import pytest

from tests.browser.conftest import js, wait_js
from tests.browser.test_ml_pages import IRIS, upload_csv
from tests.conftest import wait_until
from tests.integration.test_api import call
from tests.processes import free_port

pytestmark = pytest.mark.browser

TRAINING_TIMEOUT = 120  # a real training process on a shared machine: a bound, not a threshold
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
EVIL_CSV = "a,b,label\n1,2,x\n3,4,y\n5,6,x\n"


class Recorder:
    """WSGI wrapper: every request the dashboard receives, with where the browser said it came from."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.seen: list[dict] = []

    def __call__(self, environ, start_response):
        entry = {
            "method": environ["REQUEST_METHOD"], "path": environ.get("PATH_INFO", ""),
            "origin": environ.get("HTTP_ORIGIN"), "site": environ.get("HTTP_SEC_FETCH_SITE"),
            "dest": environ.get("HTTP_SEC_FETCH_DEST"), "status": None,
        }
        with self.lock:
            self.seen.append(entry)

        def recording(status, headers, exc_info=None):
            entry["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        body = self.app(environ, recording)
        if entry["status"] != 403:
            return body
        try:  # a refusal is a small JSON error: keep its code
            content = b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        try:
            entry["code"] = json.loads(content)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            entry["code"] = None
        return [content]

    def mark(self) -> int:
        with self.lock:
            return len(self.seen)

    def from_origin(self, origin: str | None, since: int = 0) -> list[dict]:
        with self.lock:
            return [dict(e) for e in self.seen[since:] if e["origin"] == origin]


class AttackerSite:
    """A page on another origin, served by a tiny http.server in a thread."""

    def __init__(self, html: str):
        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


ATTACK_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>You won a prize</title></head><body>
<h1>You won a prize</h1>
<script>window.framed = [];</script>
<iframe id="victim-frame" src="__TARGET__/pipelines" width="600" height="300" onload="framed.push(this.id)"></iframe>
<iframe id="control-frame" src="__TARGET__/embed/cpu" width="600" height="300" onload="framed.push(this.id)"></iframe>
<script>
const T = "__TARGET__";
const IDS = __IDS__;
const CSV = __CSV__;
const R = window.attack = {fetch: {}, forms: {}, ws: {opened: false, messages: 0, error: false, closed: null}, done: false};
const pending = [];

function attempt(name, path, init) {
  pending.push(fetch(T + path, Object.assign({mode: "no-cors", credentials: "include"}, init)).then(
    (r) => { R.fetch[name] = {type: r.type, status: r.status}; },
    (e) => { R.fetch[name] = {error: String(e)}; }));
}
const upload = new FormData();
upload.append("name", "stolen-fetch");
upload.append("file", new Blob([CSV], {type: "text/csv"}), "stolen.csv");
attempt("upload", "/api/v1/datasets", {method: "POST", body: upload});
attempt("train", "/api/v1/pipelines/" + IDS.pipeline + "/train", {method: "POST"});
attempt("deploy", "/api/v1/models/" + IDS.model + "/deploy", {method: "POST"});
attempt("cancel", "/api/v1/jobs/" + IDS.job + "/cancel", {method: "POST"});
attempt("create", "/api/v1/pipelines", {method: "POST", headers: {"Content-Type": "text/plain"},
  body: JSON.stringify({name: "evil-fetch", dataset_id: IDS.dataset, target: "target", model: "linear", params: {}})});
// DELETE is not a no-cors method: the browser asks first (a CORS preflight) and must be told no.
attempt("delete", "/api/v1/pipelines/" + IDS.pipeline, {method: "DELETE", mode: "cors"});

// Plain form posts, each into a frame of its own so that this page stays.
function form(name, path, enctype, fill) {
  const sink = document.createElement("iframe");
  sink.name = "sink-" + name;
  document.body.appendChild(sink);
  const f = document.createElement("form");
  f.method = "POST"; f.action = T + path; f.enctype = enctype; f.target = sink.name;
  fill(f);
  document.body.appendChild(f);
  pending.push(new Promise((resolve) => sink.addEventListener("load", () => { R.forms[name] = "loaded"; resolve(); })));
  f.submit();
}
const field = (f, name, value) => { const i = document.createElement("input"); i.type = "hidden"; i.name = name; i.value = value; f.appendChild(i); };
form("upload", "/api/v1/datasets", "multipart/form-data", (f) => {
  field(f, "name", "stolen-form");
  const file = document.createElement("input");
  file.type = "file"; file.name = "file";
  const dt = new DataTransfer();
  dt.items.add(new File([CSV], "stolen.csv", {type: "text/csv"}));
  file.files = dt.files;
  f.appendChild(file);
});
form("train", "/api/v1/pipelines/" + IDS.pipeline + "/train", "application/x-www-form-urlencoded", () => {});
form("deploy", "/api/v1/models/" + IDS.model + "/deploy", "application/x-www-form-urlencoded", () => {});
form("cancel", "/api/v1/jobs/" + IDS.job + "/cancel", "application/x-www-form-urlencoded", () => {});
// text/plain form: the body reads {"name": "evil-form", ..., "pad": "="}
form("create", "/api/v1/pipelines", "text/plain", (f) => field(f,
  JSON.stringify({name: "evil-form", dataset_id: IDS.dataset, target: "target", model: "linear", params: {}}).slice(0, -1) + ', "pad": "',
  '"}'));

const ws = new WebSocket(T.replace(/^http/, "ws") + "/ws");
ws.onopen = () => { R.ws.opened = true; };
ws.onmessage = () => { R.ws.messages += 1; ws.close(); };  // one is enough to know it got through
ws.onerror = () => { R.ws.error = true; };
pending.push(new Promise((resolve) => { ws.onclose = (e) => { R.ws.closed = e.code; resolve(); }; }));

Promise.all(pending).then(() => { R.done = true; });
</script></body></html>
"""


def state(server) -> dict:
    """Everything the attack could have changed, as the API lists it."""
    lists = {}
    for name, path in (("datasets", "/api/v1/datasets"), ("pipelines", "/api/v1/pipelines"),
                       ("jobs", "/api/v1/jobs?limit=500"), ("models", "/api/v1/models"),
                       ("activity", "/api/v1/activity?limit=500")):
        status, body = call(server, "GET", path)
        assert status == 200, body
        lists[name] = body["items"]
    return lists


def wait_job(server, job_id: str, *statuses: str) -> dict:
    seen = {}

    def done():
        seen["job"] = call(server, "GET", f"/api/v1/jobs/{job_id}")[1]
        return seen["job"]["status"] in statuses

    assert wait_until(done, timeout=TRAINING_TIMEOUT, interval=0.1), seen
    return seen["job"]


def in_frame(driver, frame_id: str, script: str):
    """Run ``script`` inside the frame ``frame_id`` of the open page (WebDriver may enter any origin's frame)."""
    driver.switch_to.frame(driver.find_element("id", frame_id))
    try:
        return driver.execute_script(script)
    finally:
        driver.switch_to.default_content()


FRAME_PROBE = """
let cookie;
try { cookie = typeof document.cookie; } catch (e) { cookie = e.name; }
return {href: location.href, cookie: cookie, dash: !!document.querySelector('#react-entry-point')};
"""


# The dashboard's own page does what the attacker tried, with the token Dash reads from the cookie.
OWN_PAGE = """
return (async () => {
  const IDS = %s, CSV = %s;
  const token = decodeURIComponent((document.cookie.match(/(?:^|; )_csrf_token=([^;]*)/) || [])[1] || "");
  const send = async (method, path, body, headers) => {
    const r = await fetch(path, {method, body, headers: headers || {}});
    const text = await r.text();
    return [r.status, text ? JSON.parse(text) : null];
  };
  const withToken = {"X-CSRFToken": token};
  const out = {token_length: token.length};
  out.train_without_token = await send("POST", "/api/v1/pipelines/" + IDS.pipeline + "/train");
  out.train_wrong_token = await send("POST", "/api/v1/pipelines/" + IDS.pipeline + "/train", undefined, {"X-CSRFToken": "x" + token});
  out.cancel = await send("POST", "/api/v1/jobs/" + IDS.job + "/cancel", undefined, withToken);
  out.deploy = await send("POST", "/api/v1/models/" + IDS.model + "/deploy", undefined, withToken);
  out.train = await send("POST", "/api/v1/pipelines/" + IDS.pipeline + "/train", undefined, withToken);
  const upload = new FormData();
  upload.append("name", "own-page");
  upload.append("file", new Blob([CSV], {type: "text/csv"}), "own.csv");
  out.upload = await send("POST", "/api/v1/datasets", upload, withToken);
  out.create = await send("POST", "/api/v1/pipelines", JSON.stringify(
    {name: "own-page", dataset_id: IDS.dataset, target: "target", model: "linear", params: {}}),
    Object.assign({"Content-Type": "application/json"}, withToken));
  out.delete = await send("DELETE", "/api/v1/pipelines/" + out.create[1].id, undefined, withToken);
  out.ws = await new Promise((resolve) => {
    const seen = {opened: false, first: null};
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
    ws.onopen = () => { seen.opened = true; };
    ws.onmessage = (m) => { seen.first = JSON.parse(m.data).kind; ws.close(); resolve(seen); };
    ws.onclose = () => resolve(seen);
  });
  out.frame = await new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.src = "/pipelines";
    frame.onload = () => {
      const doc = frame.contentDocument;
      resolve(doc ? {path: doc.location.pathname, dash: !!doc.querySelector("#react-entry-point")} : null);
    };
    document.body.appendChild(frame);
  });
  return out;
})();
"""


@pytest.mark.timeout(120)
def test_another_sites_page_changes_nothing_and_the_dashboards_own_page_can(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False, training_workers=1)
    server = dash_duo.server
    target = server.url  # http://localhost:<port>
    recorder = Recorder(dash_app.server.wsgi_app)
    dash_app.server.wsgi_app = recorder
    training = dash_app.mlops.training
    gate = threading.Event()
    attacker = None
    try:
        # Real state, made from Python (no Origin, no cookie: a program on this machine).
        dataset = upload_csv(server.url, IRIS, "iris")
        status, pipeline = call(server, "POST", "/api/v1/pipelines", {
            "name": "iris-linear", "dataset_id": dataset["id"], "target": "target", "model": "linear",
            "params": {"max_iter": 5},
        })
        assert status == 201, pipeline
        status, first = call(server, "POST", f"/api/v1/pipelines/{pipeline['id']}/train")
        assert status == 202, first
        trained = wait_job(server, first["id"], "succeeded", "failed")
        assert trained["status"] == "succeeded", trained
        model_id = trained["model_id"]
        assert call(server, "GET", f"/api/v1/models/{model_id}")[1]["status"] == "ready"
        # A job that stays queued (its one worker thread waits on the gate), so that cancelling it shows.
        training._pool.submit(gate.wait, TRAINING_TIMEOUT)
        status, queued = call(server, "POST", f"/api/v1/pipelines/{pipeline['id']}/train")
        assert status == 202 and queued["status"] == "queued", queued
        ids = {"dataset": dataset["id"], "pipeline": pipeline["id"], "model": model_id, "job": queued["id"]}

        # The victim has the dashboard open (it got its cookies), then visits the attacker's page.
        dash_duo.wait_for_element("#graph-cpu", timeout=15)
        assert dash_duo.driver.get_cookie("_csrf_token")
        before = state(server)
        attacker = AttackerSite(
            ATTACK_PAGE.replace("__TARGET__", target).replace("__IDS__", json.dumps(ids)).replace("__CSV__", json.dumps(EVIL_CSV))
        )
        assert attacker.origin.split("//")[1] != target.split("//")[1]
        start = recorder.mark()
        dash_duo.driver.get(attacker.origin + "/")
        results = wait_js(dash_duo, "window.attack && window.attack.done && window.attack", timeout=30,
                          message="for the attacker's page to finish")

        # Every attack reached the server and was refused there.
        seen = recorder.from_origin(attacker.origin)
        wanted = [("POST", "/api/v1/datasets"), ("POST", f"/api/v1/pipelines/{ids['pipeline']}/train"),
                  ("POST", f"/api/v1/models/{ids['model']}/deploy"), ("POST", f"/api/v1/jobs/{ids['job']}/cancel"),
                  ("POST", "/api/v1/pipelines")]
        for method, path in wanted:
            hits = [e for e in seen if (e["method"], e["path"]) == (method, path)]
            assert len(hits) == 2 and all(e["status"] == 403 for e in hits), (method, path, hits)  # fetch and form
        assert all((e["status"], e["code"]) == (403, "cross_site") for e in seen if e["method"] in UNSAFE), seen
        assert [(e["status"], e["code"]) for e in seen if e["path"] == "/ws"] == [(403, "cross_site")], seen
        # The DELETE never left the browser: its preflight got no CORS permission.
        assert not [e for e in seen if e["method"] == "DELETE"], seen
        assert [e["method"] for e in seen if e["path"] == f"/api/v1/pipelines/{ids['pipeline']}"] == ["OPTIONS"], seen
        assert "error" in results["fetch"]["delete"], results
        assert all(results["fetch"][name] == {"type": "opaque", "status": 0}
                   for name in ("upload", "train", "deploy", "cancel", "create")), results
        # The WebSocket was refused: never open, nothing received.
        assert results["ws"]["opened"] is False and results["ws"]["messages"] == 0, results["ws"]
        assert results["ws"]["error"] is True and results["ws"]["closed"] == 1006, results["ws"]

        # Nothing changed on the server.
        after = state(server)
        for name in before:
            assert after[name] == before[name], name
        assert call(server, "GET", f"/api/v1/jobs/{ids['job']}")[1]["status"] == "queued"
        assert call(server, "GET", f"/api/v1/models/{model_id}")[1]["status"] == "ready"

        # The dashboard page was not shown in the attacker's frame: Chromium put its error page there
        # (an opaque origin). An embed page of the same server, which may be framed, did load in the
        # other frame: framing itself works, only the headers of /pipelines refuse it.
        wait_js(dash_duo, "window.framed && window.framed.length === 2", message="for both frames to load")
        victim = in_frame(dash_duo.driver, "victim-frame", FRAME_PROBE)
        assert victim == {"href": "chrome-error://chromewebdata/", "cookie": "SecurityError", "dash": False}, victim
        control = in_frame(dash_duo.driver, "control-frame", FRAME_PROBE)
        assert control == {"href": f"{target}/embed/cpu", "cookie": "string", "dash": True}, control
        refusals = [e["message"] for e in dash_duo.driver.get_log("browser") if e["source"] == "security"]
        assert any(f"'{target}/'" in m and "frame-ancestors 'self'" in m for m in refusals), refusals
        # The page in the control frame ran its scripts (it asked for its layout).
        assert wait_until(lambda: any(e["path"] == "/_dash-layout" for e in recorder.from_origin(None, start)), timeout=15)

        # The same requests from the dashboard's own page, with its CSRF token, work.
        dash_duo.driver.get(target + "/pipelines")
        dash_duo.wait_for_element("#pipelines-table", timeout=15)
        own = js(dash_duo, OWN_PAGE % (json.dumps(ids), json.dumps(EVIL_CSV)))
        assert own["token_length"] > 20, own
        assert own["train_without_token"][0] == 403 and own["train_without_token"][1]["error"]["code"] == "csrf_failed", own
        assert own["train_wrong_token"][0] == 403 and own["train_wrong_token"][1]["error"]["code"] == "csrf_failed", own
        assert own["cancel"][0] == 200 and own["cancel"][1]["status"] == "cancelled", own
        assert own["deploy"][0] == 200 and own["deploy"][1]["status"] == "deployed", own
        assert own["train"][0] == 202, own
        assert own["upload"][0] == 201 and own["upload"][1]["name"] == "own-page", own
        assert own["create"][0] == 201 and own["delete"][0] == 204, own
        assert own["ws"] == {"opened": True, "first": "hello"}, own
        assert own["frame"] == {"path": "/pipelines", "dash": True}, own
        changed = state(server)
        assert len(changed["jobs"]) == len(before["jobs"]) + 1 and len(changed["datasets"]) == len(before["datasets"]) + 1
    finally:
        gate.set()
        if attacker is not None:
            attacker.stop()


def wait_in_frame(driver, frame_id: str, expression: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = in_frame(driver, frame_id, "return " + expression)
        if value:
            return value
        time.sleep(0.1)
    return value


@pytest.mark.parametrize("auth", ["local", "on"])
def test_an_embed_page_framed_by_another_site_shows_its_chart(dash_duo, start_dashboard, auth, request, tmp_path):
    """README: the Embed snippet goes into a wiki or report page (MLOPS_EMBED_ORIGINS is * by default);
    with logins on, a share link "works in an iframe with no login". The framing site is another origin."""
    if auth == "on":  # the fixture would open the dashboard, which is the login page here: start it bare
        from app import create_app
        from config import Settings

        dash_app = create_app(Settings(data_dir=tmp_path / "data", min_free_disk_mb=0, stats_interval_s=0.25, auth="on",
                                       admin_user="ada", admin_password="a long passphrase"))
        request.addfinalizer(dash_app.mlops.stop)
        dash_duo.start_server(dash_app, navigate=False, port=free_port())
    else:
        dash_app = start_dashboard(dash_duo, stats_interval_s=0.25)
    target = dash_duo.server.url
    src = f"{target}/embed/cpu"
    if auth == "on":
        share = urllib.request.Request(target + "/api/v1/charts/cpu/share", data=b"{}", method="POST", headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(b"ada:a long passphrase").decode(),
        })
        with urllib.request.urlopen(share, timeout=10) as response:
            src = json.loads(response.read())["url"]
    recorder = Recorder(dash_app.server.wsgi_app)
    dash_app.server.wsgi_app = recorder
    site = AttackerSite(f'<!DOCTYPE html><title>Team wiki</title><script>window.framed = [];</script>'
                        f'<iframe id="chart" src="{src}" width="700" height="340" onload="framed.push(this.id)"></iframe>')
    try:
        dash_duo.driver.get(site.origin + "/")
        wait_js(dash_duo, "window.framed.length === 1")
        assert in_frame(dash_duo.driver, "chart", "return location.href") == src  # the frame was allowed
        shown = wait_in_frame(dash_duo.driver, "chart", "!!document.querySelector('#graph-cpu .js-plotly-plot')")
        with recorder.lock:
            refused = [(e["method"], e["path"], e.get("code")) for e in recorder.seen if e["status"] == 403]
        assert shown, f"the framed embed page never drew its chart; refused requests: {refused}"
        handled = in_frame(dash_duo.driver, "chart", "return window.mlops.counters.handled")
        assert wait_in_frame(dash_duo.driver, "chart", f"window.mlops.counters.handled > {handled}")
    finally:
        site.stop()


PAGES = (("/", "#graph-cpu"), ("/datasets", "#datasets-table"), ("/pipelines", "#pipelines-table"),
         ("/training", "#jobs-table"), ("/models", "#models-table"), ("/embed/cpu", "#graph-cpu"))

# Installed before any script of each page runs (DevTools injects it, so the page's CSP does not apply to it).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));
"""


def csp_refusals(entries: list[dict]) -> list[str]:
    return [e["message"] for e in entries if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


@pytest.mark.timeout(120)
def test_every_page_runs_under_its_content_security_policy(dash_duo, start_dashboard):
    from selenium.common.exceptions import TimeoutException

    start_dashboard(dash_duo, stats_interval_s=0.25)
    server = dash_duo.server
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    dash_duo.driver.get_log("browser")  # drops what the page the fixture opened logged: it is loaded again below
    for path, ready in PAGES:
        with urllib.request.urlopen(server.url + path, timeout=10) as response:
            policy = response.headers["Content-Security-Policy"]
            frame_options = response.headers.get("X-Frame-Options")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "same-origin"
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"].startswith("'self' 'sha256-"), policy
        assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
        assert directives["object-src"] == "'none'" and directives["connect-src"] == "'self'"
        if path.startswith("/embed/"):
            assert directives["frame-ancestors"] == "*" and frame_options is None, (path, policy)
        else:
            assert directives["frame-ancestors"] == "'self'" and frame_options == "SAMEORIGIN", (path, policy)

        dash_duo.driver.get(server.url + path)
        try:
            dash_duo.wait_for_element(ready, timeout=15)
        except TimeoutException:
            violations = js(dash_duo, "return window.__csp")
            raise AssertionError(f"{path} never showed {ready}; CSP violations {violations}, "
                                 f"browser log {csp_refusals(dash_duo.driver.get_log('browser'))}") from None
        wait_js(dash_duo, "document.querySelector('#conn-badge').textContent === 'Live'", timeout=15)
        handled = js(dash_duo, "return window.mlops.counters.handled")
        wait_js(dash_duo, f"window.mlops.counters.handled > {handled}", timeout=15, message=f"on {path}")
        if ready == "#graph-cpu":
            dash_duo.wait_for_element("#graph-cpu .js-plotly-plot", timeout=15)
            wait_js(dash_duo, "document.querySelector('#graph-cpu .js-plotly-plot').data[0].x.length > 0", timeout=15)
        assert js(dash_duo, "return window.__csp") == [], path
        assert csp_refusals(dash_duo.driver.get_log("browser")) == [], path

    # The probes see a violation when there is one: an inline script added now is refused, and said so.
    js(dash_duo, "const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
                 " document.head.appendChild(s);")
    wait_js(dash_duo, "window.__csp.length > 0")
    assert js(dash_duo, "return window.__inline") is None
    assert csp_refusals(dash_duo.driver.get_log("browser")), "the browser log did not show a refused inline script"
