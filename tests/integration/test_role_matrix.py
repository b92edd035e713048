"""Who may call what: every documented API operation, for every role, against ``security.policy``.

The operations come from the live server's own OpenAPI document, and the role each one needs from
``security.policy.ROUTES`` through the Flask endpoint the concrete path resolves to, so an operation
documented later is checked without editing this file, and a route or callback added without a rule
fails here.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid

import pytest
import requests
from werkzeug.exceptions import HTTPException

from security import policy
from services.accounts import rank
from tests.integration.test_data_api import sklearn_csv

ADMIN, ADMIN_PASSWORD = "root-admin", "admin-password-1"
USERS = {"viewer": ("vera-viewer", "viewer-password-1"), "editor": ("eddie-editor", "editor-password-1")}
ROLES = ("anonymous", "viewer", "editor", "admin")  # refused roles first: a destructive call runs last
MISSING_ID = 999999
MISSING_JOB = "f" * 32


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def send(server, method: str, path: str, headers: dict[str, str] | None = None, body=None, **kwargs) -> requests.Response:
    return requests.request(method, server.url + path, headers=headers or {}, json=body, timeout=30,
                            allow_redirects=False, **kwargs)


def ok(response: requests.Response, *statuses: int):
    assert response.status_code in statuses, (response.request.method, response.url, response.status_code, response.text)
    return response.json() if response.content else None


class World:
    """A server with auth on, one user and one bearer token per role, and some objects to point at."""

    def __init__(self, server):
        self.server = server
        self.admin_basic = basic(ADMIN, ADMIN_PASSWORD)
        self.users = {"admin": ok(send(server, "GET", "/api/v1/me", self.admin_basic), 200)}
        self.basics = {"admin": self.admin_basic}
        for role, (name, password) in USERS.items():
            self.users[role] = ok(send(server, "POST", "/api/v1/users", self.admin_basic,
                                       {"name": name, "password": password, "role": role}), 201)
            self.basics[role] = basic(name, password)
        self.tokens = {role: ok(send(server, "POST", "/api/v1/tokens", self.basics[role], {"name": f"{role} token"}), 201)["token"]
                       for role in ("viewer", "editor", "admin")}
        editor = bearer(self.tokens["editor"])
        iris = sklearn_csv("iris.csv").read_bytes()
        self.dataset = ok(send(server, "POST", "/api/v1/datasets", editor, files={"file": ("iris.csv", iris, "text/csv")}), 201)
        target = self.dataset["columns"][-1]["name"]
        self.pipeline = ok(send(server, "POST", "/api/v1/pipelines", editor, {
            "name": "iris-rf", "dataset_id": self.dataset["id"], "target": target, "model": "random_forest"}), 201)
        self.run = ok(send(server, "POST", "/api/v1/runs", editor, {"name": "external"}), 201)

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else bearer(self.tokens[role])

    # ---- path parameters --------------------------------------------------------------------------
    def fill(self, template: str, method: str, role: str) -> str:
        """The concrete path for ``template``: existing objects to read, throwaway or missing ones to change."""
        reading = method in {"get", "patch"}  # a PATCH here is sent with {}: it changes nothing
        values = {
            "chart": "cpu",
            "format": "json",
            "dataset_id": self.dataset["id"] if reading else MISSING_ID,
            "pipeline_id": self.pipeline["id"] if reading else MISSING_ID,  # never train or predict for real
            "job_id": self.run["id"] if reading else MISSING_JOB,
            "model_id": MISSING_ID,
            "user_id": self.users["viewer"]["id"],
        }
        if method == "delete":  # what a DELETE may really remove is made for it alone
            throwaway = {"user_id": self.throwaway_user, "share_id": self.throwaway_share,
                         "token_id": lambda: self.throwaway_token("admin" if role == "anonymous" else role)}
            for name, make in throwaway.items():
                if "{" + name + "}" in template:
                    values[name] = make()

        def value(match: re.Match) -> str:
            name = match.group(1)
            assert name in values, f"no value for path parameter {name!r} of {template}: add one to World.fill"
            return str(values[name])

        return re.sub(r"\{(\w+)\}", value, template)

    def throwaway_user(self) -> int:
        name = f"gone-{uuid.uuid4().hex[:8]}"
        return ok(send(self.server, "POST", "/api/v1/users", self.admin_basic,
                       {"name": name, "password": "throwaway-password", "role": "viewer"}), 201)["id"]

    def throwaway_token(self, role: str) -> int:
        return ok(send(self.server, "POST", "/api/v1/tokens", self.basics[role], {"name": "throwaway"}), 201)["id"]

    def throwaway_share(self) -> int:
        return ok(send(self.server, "POST", "/api/v1/charts/cpu/share", self.admin_basic), 201)["id"]


@pytest.fixture
def world(make_live_server, settings) -> World:
    server = make_live_server(dataclasses.replace(settings, auth="on", admin_user=ADMIN, admin_password=ADMIN_PASSWORD))
    return World(server)


def error_shape(response: requests.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return None
    if set(body["error"]) != {"code", "message", "details"}:
        return None
    return body["error"]


def endpoint_of(app, path: str, method: str) -> str:
    try:
        endpoint, _ = app.server.url_map.bind("localhost").match(path, method=method.upper())
    except HTTPException as exc:
        return f"<no route: {exc.code}>"
    return endpoint


def check(role: str, rule: str, response: requests.Response) -> str | None:
    """What is wrong with this answer for this role, or None."""
    status = response.status_code
    if rule == policy.PUBLIC:
        return None if status not in {401, 403} else f"public, yet {status}"
    if role == "anonymous":
        error = error_shape(response)
        if status != 401:
            return f"anonymous needs {rule}: expected 401, got {status}"
        if "WWW-Authenticate" not in response.headers:
            return "401 without WWW-Authenticate"
        if error is None:
            return f"401 body is not the error shape: {response.text[:200]}"
        return None
    if rank(role) < rank(rule):
        error = error_shape(response)
        if status != 403 or error is None or error["code"] != "forbidden":
            return f"{role} is below {rule}: expected 403 forbidden, got {status} {response.text[:200]}"
        if error["details"].get("required_role") != rule:
            return f"403 names {error['details']!r}, not the required role {rule}"
        return None
    if status in {401, 403}:
        return f"{role} has {rule}, yet {status} {response.text[:200]}"
    if status >= 500 and status != 503:
        return f"{role} may call it, and it failed with {status} {response.text[:200]}"
    return None


def test_every_documented_operation_answers_each_role_as_the_policy_says(world):
    server = world.server
    document = ok(send(server, "GET", "/api/v1/openapi.json", bearer(world.tokens["viewer"])), 200)
    base = document["servers"][0]["url"].rstrip("/")
    operations = [(template, method) for template, item in document["paths"].items()
                  for method in item if method in {"get", "post", "put", "patch", "delete"}]
    assert len(operations) >= 40, operations

    problems: list[str] = []
    checked = 0
    for template, method in operations:
        operation = document["paths"][template][method]
        for role in ROLES:
            path = base + world.fill(template, method, role)
            endpoint = endpoint_of(server.app, path, method)
            if endpoint not in policy.ROUTES or endpoint == "api.unknown":
                problems.append(f"{method.upper()} {template}: resolves to {endpoint}, which is no documented route")
                break
            rule = policy.ROUTES[endpoint]
            body = {} if method in {"post", "patch"} and "requestBody" in operation else None
            response = send(server, method.upper(), path, world.headers(role), body)
            checked += 1
            problem = check(role, rule, response)
            if problem:
                problems.append(f"{method.upper()} {path} ({endpoint}, needs {rule}) as {role}: {problem}")
            if rule != policy.PUBLIC and role == "anonymous":
                documented = {"401", "403"} <= set(operation["responses"])
                if not documented:
                    problems.append(f"{method.upper()} {template}: 401/403 not documented")
    assert not problems, f"{len(problems)} of {checked} answers break the policy:\n" + "\n".join(problems)
    # every role was really tried against every operation
    assert checked == len(operations) * len(ROLES)


def test_the_roles_really_differ(world):
    """The matrix means something only if the same call is refused to one role and allowed to the next."""
    path = "/api/v1/users"
    assert send(world.server, "GET", path, world.headers("editor")).status_code == 403
    assert send(world.server, "GET", path, world.headers("admin")).status_code == 200
    pipelines = "/api/v1/pipelines"
    body = {"name": "second", "dataset_id": world.dataset["id"], "target": world.dataset["columns"][-1]["name"],
            "model": "linear"}
    assert send(world.server, "POST", pipelines, world.headers("viewer"), body).status_code == 403
    assert send(world.server, "POST", pipelines, world.headers("editor"), body).status_code == 201


@pytest.mark.parametrize("prefix", ["/", "/mlops/"])
def test_every_flask_endpoint_has_an_access_rule(make_live_server, settings, prefix):
    server = make_live_server(dataclasses.replace(settings, url_prefix=prefix))
    endpoints = {policy.endpoint_name(rule.endpoint, prefix) for rule in server.app.server.url_map.iter_rules()}
    api = {e for e in endpoints if e.startswith("api.")}
    assert len(api) >= 40, api
    missing_api = sorted(api - set(policy.ROUTES))
    missing_other = sorted(endpoints - api - set(policy.ROUTES))
    assert not missing_api, f"API endpoints without a rule in security.policy.ROUTES: {missing_api}"
    assert not missing_other, (
        f"with MLOPS_URL_PREFIX={prefix}, endpoints without a rule in security.policy.ROUTES "
        f"(so refused to everyone with 403 no_rule): {missing_other}"
    )
    stale = sorted(set(policy.ROUTES) - endpoints)
    assert not stale, f"rules for endpoints that do not exist: {stale}"
    # and the page itself answers under the prefix (local mode: the person at this machine may look)
    page = requests.get(server.url + prefix, timeout=30)
    assert page.status_code == 200, (prefix, page.status_code, page.text[:200])


def callback_output_ids(callback_id: str) -> list[str]:
    """The component ids of a ``callback_map`` key: ``id.prop`` or ``..id.prop...id.prop..``, each
    maybe with ``@<hash>`` (allow_duplicate), a pattern-matching id being a dict as JSON."""
    parts = callback_id[2:-2].split("...") if callback_id.startswith("..") else [callback_id]
    found = []
    for part in parts:
        part = re.sub(r"@[0-9a-f]{32,}$", "", part)
        component, _, _prop = part.rpartition(".")
        assert component, f"cannot read the output of {callback_id!r}"
        if component.startswith("{"):
            component = json.loads(component)["type"]
        found.append(component)
    return found


def test_callback_output_ids_are_read_right():
    assert callback_output_ids("a.children") == ["a"]
    assert callback_output_ids("..a.children...b.style..") == ["a", "b"]
    assert callback_output_ids("a.children@" + "0" * 64) == ["a"]
    assert callback_output_ids('..{"chart":["MATCH"],"type":"x"}.is_open...y.data@' + "ab" * 32 + "..") == ["x", "y"]


def test_every_server_callback_has_a_rule_for_each_output(live_server):
    callback_map = live_server.app.callback_map
    server_side = {key: spec for key, spec in callback_map.items() if spec.get("callback") is not None}
    assert len(server_side) >= 3, sorted(callback_map)
    missing = {key: [i for i in callback_output_ids(key) if i not in policy.CALLBACK_OUTPUTS] for key in server_side}
    missing = {key: ids for key, ids in missing.items() if ids}
    assert not missing, f"server callbacks with outputs missing from security.policy.CALLBACK_OUTPUTS: {missing}"
    for key in server_side:
        assert policy.callback_role(callback_output_ids(key)) in {policy.VIEWER, policy.EDITOR, policy.ADMIN}, key
