"""The security edge over real HTTP and real WebSockets: Host, Origin, CSRF, logins, tokens, share
links, refused start combinations, who did what, headers, and gunicorn workers sharing it all."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from components import ids
from tests.conftest import wait_until
from tests.integration.test_data_api import sklearn_csv
from tests.integration.test_gunicorn import start_gunicorn
from tests.integration.test_role_matrix import basic, bearer, ok, send
from tests.integration.wsclient import Client
from tests.processes import ROOT, free_port
from tests.samples import STATS

ADMIN, ADMIN_PASSWORD = "root-admin", "admin-password-1"
EDITOR, EDITOR_PASSWORD = "eddie-editor", "editor-password-1"
VIEWER, VIEWER_PASSWORD = "vera-viewer", "viewer-password-1"
EVIL = "http://evil.example"
CLOSE_DEADLINE_S = 2.0  # a revoked credential's open socket closes within this (README, OpenAPI)


def health(i: int) -> dict:
    return {"type": "health_change",
            "data": {"component": f"c{i}", "status": "healthy", "message": "", "overall": "healthy"}}


def error_code(response: requests.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def raw_get(server, path: str, headers: dict[str, str]) -> tuple[int, http.client.HTTPMessage, bytes]:
    """A GET with exactly these headers (``Host`` included), every response header kept."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.msg, response.read()
    finally:
        conn.close()


def open_socket(url: str, headers: dict[str, str] | None = None, origin: str | None = None):
    """A real WebSocket to ``url``, after its hello."""
    conn = connect(url, additional_headers=headers, origin=origin, open_timeout=5, close_timeout=2).__enter__()
    hello = json.loads(conn.recv(timeout=5))
    assert hello["kind"] == "hello", hello
    return conn


def closed_within(conn, started: float, deadline_s: float = CLOSE_DEADLINE_S) -> tuple[int | None, float]:
    """Wait until the server closes ``conn`` or ``deadline_s`` after ``started`` passes.

    Returns the close code (None if still open at the deadline) and when it closed, from ``started``."""
    while True:
        remaining = started + deadline_s - time.monotonic()
        if remaining <= 0:
            return None, time.monotonic() - started
        try:
            conn.recv(timeout=remaining)  # frames meanwhile (pings) are fine
        except TimeoutError:
            return None, time.monotonic() - started
        except ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd else None), time.monotonic() - started


@pytest.fixture
def auth_settings(settings):
    return dataclasses.replace(settings, auth="on", admin_user=ADMIN, admin_password=ADMIN_PASSWORD)


@pytest.fixture
def auth_server(make_live_server, auth_settings):
    return make_live_server(auth_settings)


def add_user(server, name: str, password: str, role: str) -> dict:
    return ok(send(server, "POST", "/api/v1/users", basic(ADMIN, ADMIN_PASSWORD),
                   {"name": name, "password": password, "role": role}), 201)


def new_token(server, name: str, password: str) -> dict:
    return ok(send(server, "POST", "/api/v1/tokens", basic(name, password), {"name": "test"}), 201)


def login_form(session: requests.Session, server) -> str:
    page = session.get(server.url + "/login", timeout=30)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def post_login(session: requests.Session, server, name: str, password: str) -> requests.Response:
    csrf = login_form(session, server)
    return session.post(server.url + "/login", data={"username": name, "password": password, "csrf_token": csrf,
                                                      "next": "/"}, allow_redirects=False, timeout=30)


def login(server, name: str, password: str) -> requests.Session:
    """A browser-like session logged in through the form, having loaded the page (its CSRF cookie)."""
    session = requests.Session()
    answer = post_login(session, server, name, password)
    assert answer.status_code == 303, (answer.status_code, answer.text)
    page = session.get(server.url + answer.headers["Location"], timeout=30)
    assert page.status_code == 200 and "_dash-config" in page.text
    return session


def upload_iris(server, headers: dict[str, str]) -> dict:
    iris = sklearn_csv("iris.csv").read_bytes()
    return ok(send(server, "POST", "/api/v1/datasets", headers, files={"file": ("iris.csv", iris, "text/csv")}), 201)


def pipeline_body(dataset: dict, name: str = "iris-rf") -> dict:
    return {"name": name, "dataset_id": dataset["id"], "target": dataset["columns"][-1]["name"], "model": "random_forest"}


# ---- Host and Origin ---------------------------------------------------------------------------------


def test_host_header_must_name_this_machine(live_server):
    port = live_server.port
    for host in ("evil.example", f"evil.example:{port}", "rebind.127.0.0.1.nip.io", "10.0.0.7", f"192.168.1.2:{port}"):
        status, _, body = raw_get(live_server, "/api/v1/health", {"Host": host})
        assert status == 400, (host, status, body)
        assert json.loads(body)["error"]["code"] == "host_not_allowed", body
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", f"LOCALHOST:{port}"):
        status, _, body = raw_get(live_server, "/api/v1/health", {"Host": host})
        assert status == 200, (host, status, body)


def test_host_allow_list_is_the_only_list(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, allowed_hosts=("dash.example.com",)))
    assert raw_get(server, "/api/v1/health", {"Host": "dash.example.com"})[0] == 200
    status, _, body = raw_get(server, "/api/v1/health", {"Host": "evil.example"})
    assert status == 400 and json.loads(body)["error"]["code"] == "host_not_allowed"


def test_websocket_from_another_sites_page_is_refused(live_server):
    with pytest.raises(InvalidStatus) as refused:
        connect(live_server.ws_url, origin=EVIL, open_timeout=5)
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"]["code"] == "cross_site"
    conn = open_socket(live_server.ws_url, origin=f"http://127.0.0.1:{live_server.port}")  # the page's own origin
    conn.close()


def test_cross_site_post_creates_nothing(live_server):
    dataset = upload_iris(live_server, {})  # local mode: a program on this machine needs nothing
    body = pipeline_body(dataset)
    before = ok(send(live_server, "GET", "/api/v1/pipelines"), 200)["items"]
    assert before == []
    for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        refused = send(live_server, "POST", "/api/v1/pipelines", headers, body)
        assert refused.status_code == 403 and error_code(refused) == "cross_site", (headers, refused.text)
    assert ok(send(live_server, "GET", "/api/v1/pipelines"), 200)["items"] == before
    # the very same request without a foreign page behind it is taken
    created = ok(send(live_server, "POST", "/api/v1/pipelines", {}, body), 201)
    assert [p["id"] for p in ok(send(live_server, "GET", "/api/v1/pipelines"), 200)["items"]] == [created["id"]]


# ---- logins, CSRF, tokens ---------------------------------------------------------------------------


def test_a_logged_in_page_must_send_the_csrf_token(auth_server):
    session = login(auth_server, ADMIN, ADMIN_PASSWORD)
    assert session.get(auth_server.url + "/api/v1/me", timeout=30).json()["auth"] == "session"
    csrf = session.cookies.get("_csrf_token")
    assert csrf
    url = auth_server.url + "/api/v1/tokens"
    tokens_before = len(session.get(url, timeout=30).json()["items"])
    for headers in ({}, {"X-CSRFToken": "forged"}):
        refused = session.post(url, json={"name": "from the page"}, headers=headers, timeout=30)
        assert refused.status_code == 403 and error_code(refused) == "csrf_failed", (headers, refused.text)
    # the right token, but from another site's page
    refused = session.post(url, json={"name": "from the page"}, headers={"X-CSRFToken": csrf, "Origin": EVIL}, timeout=30)
    assert refused.status_code == 403 and error_code(refused) == "cross_site", refused.text
    assert len(session.get(url, timeout=30).json()["items"]) == tokens_before
    created = session.post(url, json={"name": "from the page"}, headers={"X-CSRFToken": csrf}, timeout=30)
    assert created.status_code == 201, created.text
    assert len(session.get(url, timeout=30).json()["items"]) == tokens_before + 1


def test_the_login_form_needs_its_csrf_token(auth_server):
    session = requests.Session()
    login_form(session, auth_server)
    answer = session.post(auth_server.url + "/login", data={"username": ADMIN, "password": ADMIN_PASSWORD},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 403
    assert session.get(auth_server.url + "/api/v1/me", timeout=30).status_code == 401


def test_revoked_token_is_refused_at_once_and_its_socket_closes(auth_server):
    with pytest.raises(InvalidStatus) as anonymous:
        connect(auth_server.ws_url, open_timeout=5)
    assert anonymous.value.response.status_code == 401
    token = new_token(auth_server, ADMIN, ADMIN_PASSWORD)
    me = ok(send(auth_server, "GET", "/api/v1/me", bearer(token["token"])), 200)
    assert me["name"] == ADMIN and me["auth"] == "token"
    conn = open_socket(auth_server.ws_url, headers=bearer(token["token"]))
    other = new_token(auth_server, ADMIN, ADMIN_PASSWORD)  # another token of the same user stays open
    other_conn = open_socket(auth_server.ws_url, headers=bearer(other["token"]))

    started = time.monotonic()
    assert send(auth_server, "DELETE", f"/api/v1/tokens/{token['id']}", basic(ADMIN, ADMIN_PASSWORD)).status_code == 204
    refused = send(auth_server, "GET", "/api/v1/me", bearer(token["token"]))
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    code, _ = closed_within(conn, started)
    assert code == 1008, f"the revoked token's socket was not closed with 1008 within {CLOSE_DEADLINE_S} s (code {code})"

    # the other token's socket still gets events; a new socket with the revoked token is refused
    ok(send(auth_server, "POST", "/api/v1/events", bearer(other["token"]), health(1)), 201)
    frame = json.loads(other_conn.recv(timeout=5))
    while frame["kind"] != "events":
        frame = json.loads(other_conn.recv(timeout=5))
    assert frame["events"][0]["type"] == "health_change"
    other_conn.close()
    with pytest.raises(InvalidStatus) as again:
        connect(auth_server.ws_url, additional_headers=bearer(token["token"]), open_timeout=5)
    assert again.value.response.status_code == 401


def test_a_login_ends_when_its_hours_are_over(make_live_server, auth_settings):
    server = make_live_server(dataclasses.replace(auth_settings, session_hours=0.0008))  # 2.9 s
    session = requests.Session()
    answer = post_login(session, server, ADMIN, ADMIN_PASSWORD)
    assert answer.status_code == 303, answer.text
    cookie = session.cookies.get("mlops_session")
    me = session.get(server.url + "/api/v1/me", timeout=30)
    assert me.status_code == 200 and me.json()["auth"] == "session"
    # the browser forgets it, and the server refuses it even when it is sent again after its time
    assert wait_until(lambda: session.get(server.url + "/api/v1/me", timeout=30).status_code == 401, timeout=15)
    assert wait_until(lambda: send(server, "GET", "/api/v1/me", {"Cookie": f"mlops_session={cookie}"}).status_code == 401,
                      timeout=15)


def test_changing_a_password_ends_the_users_logins(auth_server):
    viewer = add_user(auth_server, VIEWER, VIEWER_PASSWORD, "viewer")
    session = login(auth_server, VIEWER, VIEWER_PASSWORD)
    assert session.get(auth_server.url + "/api/v1/me", timeout=30).json()["name"] == VIEWER
    changed = send(auth_server, "PATCH", f"/api/v1/users/{viewer['id']}", basic(ADMIN, ADMIN_PASSWORD),
                   {"password": "a-new-password-2"})
    assert changed.status_code == 200, changed.text
    assert session.get(auth_server.url + "/api/v1/me", timeout=30).status_code == 401
    assert send(auth_server, "GET", "/api/v1/me", basic(VIEWER, VIEWER_PASSWORD)).status_code == 401
    assert send(auth_server, "GET", "/api/v1/me", basic(VIEWER, "a-new-password-2")).status_code == 200


def test_failed_logins_are_limited_on_the_form(make_live_server, auth_settings):
    server = make_live_server(dataclasses.replace(auth_settings, login_attempts=3))
    session = requests.Session()
    for _ in range(3):
        assert post_login(session, server, ADMIN, "wrong-password").status_code == 401
    limited = post_login(session, server, ADMIN, ADMIN_PASSWORD)  # even the right password, now
    assert limited.status_code == 429, limited.status_code
    assert int(limited.headers["Retry-After"]) > 0
    assert session.get(server.url + "/api/v1/me", timeout=30).status_code == 401


def test_failed_logins_are_limited_with_basic_auth(make_live_server, auth_settings):
    server = make_live_server(dataclasses.replace(auth_settings, login_attempts=3))
    for _ in range(3):
        assert send(server, "GET", "/api/v1/me", basic(ADMIN, "wrong-password")).status_code == 401
    limited = send(server, "GET", "/api/v1/me", basic(ADMIN, ADMIN_PASSWORD))
    assert limited.status_code == 429 and error_code(limited) == "too_many_attempts", limited.text
    assert int(limited.headers["Retry-After"]) > 0


# ---- share links ------------------------------------------------------------------------------------


def test_share_link_shows_one_chart_live_and_nothing_else(auth_server):
    add_user(auth_server, EDITOR, EDITOR_PASSWORD, "editor")
    editor = bearer(new_token(auth_server, EDITOR, EDITOR_PASSWORD)["token"])
    admin = basic(ADMIN, ADMIN_PASSWORD)
    upload_iris(auth_server, editor)
    share = ok(send(auth_server, "POST", "/api/v1/charts/cpu/share", editor), 201)
    assert {"url", "expires_at", "id"} <= set(share)
    url = share["url"]
    assert url.startswith(auth_server.url + "/share/") and url.endswith("/embed/cpu")
    base = url.removesuffix("embed/cpu")

    page = requests.get(url, timeout=30)  # nobody logged in
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.status_code
    layout = requests.get(base + "_dash-layout", timeout=30)
    assert layout.status_code == 200 and layout.headers["Content-Type"].startswith("application/json")
    assert requests.get(auth_server.url + "/_dash-layout", timeout=30).status_code == 401  # not without the link
    auth_server.runtime.publish("system_stats", STATS)
    snapshot = {}
    assert wait_until(lambda: snapshot.update(requests.get(base + "api/v1/snapshot", timeout=30).json())
                      or snapshot["samples"], timeout=10)
    assert [set(row) for row in snapshot["samples"]] == [{"seq", "t", "cpu_percent"}], snapshot  # its chart's field only
    assert snapshot["latest_stats"] is None and snapshot["predictions"] == [] and snapshot["health"]["components"] == {}
    for path in ("api/v1/datasets", "api/v1/me", "embed/memory", "datasets"):
        reached = requests.get(base + path, timeout=30)
        assert reached.status_code == 403, (path, reached.status_code, reached.text[:200])
    for path in ("api/v1/pipelines", "api/v1/events", "api/v1/charts/cpu/share", "api/v1/tokens"):
        posted = requests.post(base + path, json={}, timeout=30)
        assert posted.status_code == 403, (path, posted.status_code, posted.text[:200])

    share_ws = base.replace("http://", "ws://", 1) + "ws"
    assert share_ws == url.replace("http://", "ws://", 1).replace("embed/cpu", "ws")
    shared = Client(share_ws)
    everything = open_socket(auth_server.ws_url, headers=admin)
    seqs = [ok(send(auth_server, "POST", "/api/v1/events", admin, health(1)), 201)["seq"]]
    seqs.append(auth_server.runtime.publish("system_stats", STATS).seq)
    seqs.append(ok(send(auth_server, "POST", "/api/v1/events", admin, health(2)), 201)["seq"])
    seqs.append(auth_server.runtime.publish("system_stats", dict(STATS, cpu_percent=77.0)).seq)

    got = shared.until(lambda e: e["seq"] == seqs[3])
    assert {e["type"] for e in got} == {"system_stats"}, got
    got = [e for e in got if e["seq"] > seqs[0]]
    assert [e["seq"] for e in got] == [seqs[1], seqs[3]]
    assert [e["data"] for e in got] == [{"cpu_percent": 12.5, "interval_s": 1.0}, {"cpu_percent": 77.0, "interval_s": 1.0}]
    frames = [f for f in shared.frames if f["kind"] == "events"]
    assert frames and all("upto" in f and f["upto"] >= f["events"][-1]["seq"] for f in frames), frames
    assert frames[-1]["upto"] >= seqs[3]
    seen_by_admin = []
    while len(seen_by_admin) < 4:  # the same stream, unscoped, has all four
        frame = json.loads(everything.recv(timeout=5))
        seen_by_admin += frame.get("events", [])
    assert [e["seq"] for e in seen_by_admin] == seqs
    everything.close()

    started = time.monotonic()
    assert send(auth_server, "DELETE", f"/api/v1/shares/{share['id']}", admin).status_code == 204
    assert requests.get(url, timeout=30).status_code == 404
    assert requests.get(base + "_dash-layout", timeout=30).status_code == 404
    code, _ = closed_within(shared.conn, started)
    assert code == 1008, f"the revoked share's socket was not closed with 1008 within {CLOSE_DEADLINE_S} s (code {code})"


def page_router_call(pathname: str) -> dict:
    """The body the Dash renderer posts to draw a page: the router callback (page, navbar) for ``pathname``."""
    return {
        "output": f"..{ids.PAGE}.children...{ids.NAVBAR}.style..",
        "outputs": [{"id": ids.PAGE, "property": "children"}, {"id": ids.NAVBAR, "property": "style"}],
        "inputs": [{"id": ids.URL, "property": "pathname", "value": pathname},
                   {"id": ids.URL, "property": "search", "value": ""}],
        "changedPropIds": [f"{ids.URL}.pathname"],
        "state": [],
    }


def test_share_link_page_router_draws_its_chart_and_nothing_else(auth_server):
    admin = basic(ADMIN, ADMIN_PASSWORD)
    iris = sklearn_csv("iris.csv").read_bytes()
    ok(send(auth_server, "POST", "/api/v1/datasets", admin, files={"file": ("confidential-salaries.csv", iris, "text/csv")}), 201)
    share = ok(send(auth_server, "POST", "/api/v1/charts/cpu/share", admin), 201)
    base = share["url"].removesuffix("embed/cpu")
    callback = base + "_dash-update-component"

    own = requests.post(callback, json=page_router_call(urlparse(share["url"]).path), timeout=30)  # what its page asks
    assert own.status_code == 200 and ids.GRAPH_CPU in own.text, own.text[:300]
    assert "confidential-salaries" not in own.text
    assert requests.post(callback, json=page_router_call("/embed/memory"), timeout=30).status_code == 403
    # Another page, with a path that merely ends like the shared chart's: the edge lets it through
    # (it ends in /embed/cpu), and the router must not draw the overview (activity, jobs, models) for it.
    for pathname in ("/datasets/embed/cpu", "/anything/embed/cpu"):
        answer = requests.post(callback, json=page_router_call(pathname), timeout=30)
        leaked = answer.status_code == 200 and ("confidential-salaries" in answer.text or ids.GRAPH_MEM in answer.text)
        assert answer.status_code in {200, 403} and not leaked, (
            f"a share link of the cpu chart drew another page for pathname {pathname!r}: {answer.status_code}, "
            f"{len(answer.text)} bytes: the overview, whose activity feed names the uploaded dataset"
        )


def test_share_link_expires(auth_server):
    add_user(auth_server, EDITOR, EDITOR_PASSWORD, "editor")
    editor = basic(EDITOR, EDITOR_PASSWORD)
    share = ok(send(auth_server, "POST", "/api/v1/charts/cpu/share", editor, {"expires_in_days": 0.00003}), 201)  # 2.6 s
    assert requests.get(share["url"], timeout=30).status_code == 200
    assert wait_until(lambda: requests.get(share["url"], timeout=30).status_code == 404, timeout=20)


# ---- refused start combinations ---------------------------------------------------------------------


@pytest.mark.parametrize("env,named", [
    ({"MLOPS_HOST": "0.0.0.0", "MLOPS_AUTH": "local"}, "MLOPS_AUTH=on"),
    ({"MLOPS_HOST": "0.0.0.0", "MLOPS_DEBUG": "true"}, "MLOPS_DEBUG"),
])
def test_unsafe_start_is_refused(tmp_path, env, named):
    environ = dict(os.environ, MLOPS_PORT=str(free_port()), MLOPS_DATA_DIR=str(tmp_path / "data"), **env)
    try:
        done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{env} started a server instead of refusing: {exc.stdout} {exc.stderr}")
    assert done.returncode != 0, done.stderr
    assert named in done.stderr + done.stdout, done.stderr


# ---- who did it -------------------------------------------------------------------------------------


def test_events_and_activity_name_the_actor(auth_server):
    add_user(auth_server, EDITOR, EDITOR_PASSWORD, "editor")
    editor = bearer(new_token(auth_server, EDITOR, EDITOR_PASSWORD)["token"])
    admin = basic(ADMIN, ADMIN_PASSWORD)
    dataset = upload_iris(auth_server, editor)
    pipeline = ok(send(auth_server, "POST", "/api/v1/pipelines", editor, pipeline_body(dataset)), 201)

    events = ok(send(auth_server, "GET", "/api/v1/events?after=0&limit=1000", editor), 200)["events"]
    created = [e for e in events if e["type"] == "pipeline_created" and e["data"]["id"] == pipeline["id"]]
    assert len(created) == 1 and created[0]["data"]["actor"] == EDITOR, created
    news = [e for e in events if e["type"] == "activity_update" and e["data"].get("subject_type") == "pipeline"]
    assert news and all(e["data"]["actor"] == EDITOR for e in news), news
    for kind in ("dataset_created", "upload_complete"):  # the upload is the editor's doing too
        assert [e["data"].get("actor") for e in events if e["type"] == kind] == [EDITOR], (kind, events)
    items = ok(send(auth_server, "GET", "/api/v1/activity", editor), 200)["items"]
    assert items and all(item["actor"] == EDITOR for item in items), items

    posted = ok(send(auth_server, "POST", "/api/v1/events", admin, health(1)), 201)
    assert posted["data"]["posted"] is True and posted["data"]["actor"] == ADMIN, posted
    refused = send(auth_server, "POST", "/api/v1/events", editor, health(2))
    assert refused.status_code == 403 and error_code(refused) == "forbidden"


# ---- headers ----------------------------------------------------------------------------------------


def test_pages_carry_the_security_headers(make_live_server, settings):
    server = make_live_server(dataclasses.replace(settings, embed_origins=("https://intranet.example",)))
    host = {"Host": f"127.0.0.1:{server.port}"}
    status, headers, _ = raw_get(server, "/", host)
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in [d.strip() for d in csp.split(";")], csp
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"]

    status, headers, body = raw_get(server, "/embed/cpu", host)
    assert status == 200, body[:200]
    assert headers.get("X-Frame-Options") is None
    ancestors = [d.strip() for d in headers["Content-Security-Policy"].split(";") if "frame-ancestors" in d]
    assert ancestors == ["frame-ancestors 'self' https://intranet.example"], headers["Content-Security-Policy"]


def test_server_header_names_no_software_version(live_server):
    status, headers, _ = raw_get(live_server, "/", {"Host": f"127.0.0.1:{live_server.port}"})
    assert status == 200
    servers = headers.get_all("Server") or []
    leaking = [s for s in servers if re.search(r"werkzeug|python|\d+\.\d+", s, re.I)]
    assert not leaking, f"the page's Server header(s) {servers} name the server software and its version"


# ---- gunicorn workers -------------------------------------------------------------------------------


class Workers:
    """gunicorn (``start_gunicorn``, the documented deployment) with an access log naming the worker
    pid of each request, so a test can see which workers answered."""

    def __init__(self, tmp_path: Path):
        self.access_log = tmp_path / "access.log"
        self.log = tmp_path / "gunicorn.log"

    @staticmethod
    def env(tmp_path: Path) -> dict[str, str]:
        log = tmp_path / "access.log"
        return {"GUNICORN_CMD_ARGS": f"--access-logfile {log} --access-logformat '%(p)s %(m)s %(U)s?%(q)s %(s)s'"}

    def answers(self, marker: str) -> list[tuple[str, str]]:
        """(worker pid, status) of each logged request whose query carries ``marker``."""
        found = []
        text = self.access_log.read_text() if self.access_log.exists() else ""
        for line in text.splitlines():
            pid, _method, target, status = line.split(" ")
            if f"?{marker}=" in target:
                found.append((pid, status))
        return found

    def trouble(self) -> str:
        lines = self.log.read_text().splitlines()
        return "\n".join(line for line in lines if re.search(r"ERROR|Error|failed|Reason", line))[-3000:]

    def until_all_answered(self, workers: int, marker: str, request) -> list:
        """``request(marker, i)`` 20 at a time at once, each on a new connection (so whichever worker
        is idle takes it), until ``workers`` workers answered; the results in order."""
        results: list = []
        with ThreadPoolExecutor(20) as pool:
            for _ in range(10):
                try:
                    results += pool.map(lambda i: request(marker, i), range(len(results), len(results) + 20))
                except requests.ConnectionError:
                    results = None
                if results is None or "Exception in worker process" in self.log.read_text():
                    pytest.fail(f"a gunicorn worker failed; its log says:\n{self.trouble()}")
                assert wait_until(lambda: len(self.answers(marker)) >= len(results), timeout=10)
                if len({pid for pid, _ in self.answers(marker)}) >= workers:
                    return results
        pytest.fail(f"{len(results)} requests, answered by {len({p for p, _ in self.answers(marker)})} of {workers} "
                    f"workers; gunicorn's log says:\n{self.trouble()}")


def create_user_from_shell(tmp_path: Path, name: str, password: str, role: str) -> None:
    """``python app.py users create`` (README, Accounts), before the dashboard starts."""
    environ = dict(os.environ, MLOPS_DATA_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "app.py", "users", "create", name, "--role", role, "--password-stdin"],
                          cwd=ROOT, env=environ, input=password + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.redis
def test_token_works_on_every_gunicorn_worker_until_revoked(tmp_path, redis_url):
    # The admin is made from the shell first: with MLOPS_ADMIN_USER every worker creates it as it
    # starts, and they collide (test_workers_starting_together_create_the_admin_once).
    create_user_from_shell(tmp_path, ADMIN, ADMIN_PASSWORD, "admin")
    env = {"MLOPS_EVENT_LOG": redis_url, "MLOPS_BACKGROUND": "false", "MLOPS_AUTH": "on", **Workers.env(tmp_path)}
    with start_gunicorn(tmp_path, workers=2, **env) as server:
        workers = Workers(tmp_path)
        token = new_token(server, ADMIN, ADMIN_PASSWORD)  # made on one worker
        auth = bearer(token["token"])
        share = ok(send(server, "POST", "/api/v1/charts/cpu/share", auth), 201)
        snapshot = share["url"].removesuffix("embed/cpu") + "api/v1/snapshot"

        def token_and_share(marker: str, i: int) -> tuple[int, int]:
            me = send(server, "GET", f"/api/v1/me?{marker}={i}", auth).status_code
            return me, requests.get(f"{snapshot}?{marker}={i}", timeout=30).status_code

        served = workers.until_all_answered(2, "probe", token_and_share)
        assert set(served) == {(200, 200)}, served  # the token works on both workers; so does the share link

        admin = basic(ADMIN, ADMIN_PASSWORD)
        assert send(server, "DELETE", f"/api/v1/tokens/{token['id']}", admin).status_code == 204
        assert send(server, "DELETE", f"/api/v1/shares/{share['id']}", admin).status_code == 204
        refused = workers.until_all_answered(2, "gone", token_and_share)
        assert set(refused) == {(401, 404)}, refused  # and fails on both after revocation


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_workers_starting_together_create_the_admin_once(request, tmp_path, database):
    """What every gunicorn worker does as it starts with MLOPS_ADMIN_USER (``security.install`` calls
    ``ensure_admin``), done by 6 workers at the same moment on one database: each must come up, and
    there must be one admin. (Each worker has its own engine, as a process would.)"""
    from services.accounts import Accounts
    from storage.db import Database, default_url

    url = default_url(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_url")
    databases = [Database(url) for _ in range(7)]
    databases[0].upgrade()  # the schema is there before the workers start: not what is raced here
    starting = threading.Barrier(6)

    def worker(db: Database) -> dict:
        accounts = Accounts(db, "a-secret-key-of-enough-length-0123456789")
        starting.wait(timeout=30)
        return accounts.ensure_admin(ADMIN, ADMIN_PASSWORD)

    try:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(worker, db) for db in databases[1:]]
        failures = [repr(f.exception())[:300] for f in futures if f.exception() is not None]
        users = Accounts(databases[0], "a-secret-key-of-enough-length-0123456789").list_users()
    finally:
        for db in databases:
            db.close()
    assert not failures, f"{len(failures)} of 6 workers failed to start:\n" + "\n".join(failures)
    assert [(u["name"], u["role"]) for u in users] == [(ADMIN, "admin")]


def test_health_tells_anonymous_callers_statuses_not_reasons(auth_server):
    """Load balancers may ask without credentials; the reasons (paths, addresses) are for users."""
    anonymous = requests.get(auth_server.url + "/api/v1/health", timeout=10).json()
    assert anonymous["components"] and all(set(c) == {"status"} for c in anonymous["components"].values())
    signed_in = requests.get(auth_server.url + "/api/v1/health", auth=(ADMIN, ADMIN_PASSWORD), timeout=10).json()
    assert set(signed_in["components"]) == set(anonymous["components"])
    assert all("message" in c for c in signed_in["components"].values())
