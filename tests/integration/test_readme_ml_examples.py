"""The README's Python examples for the ML plane run as written against a live dashboard with logins on,
authenticated by an editor's token in ``MLOPS_TOKEN`` as the README says."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import urllib.request

import pytest

from tests.integration.test_api import call
from tests.integration.test_data_api import sklearn_csv
from tests.processes import ROOT


def readme_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return next(block for block in blocks if marker in block)


@pytest.fixture
def secured_server(make_live_server, settings, monkeypatch):
    """A dashboard with MLOPS_AUTH=on, and $MLOPS_TOKEN holding an editor's token."""
    server = make_live_server(dataclasses.replace(settings, auth="on", admin_user="ada", admin_password="a long passphrase"))

    def post(path, body, user, password):
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    post("/api/v1/users", {"name": "eve", "password": "editor-pass", "role": "editor"}, "ada", "a long passphrase")
    monkeypatch.setenv("MLOPS_TOKEN", post("/api/v1/tokens", {"name": "readme"}, "eve", "editor-pass")["token"])
    return server


def test_train_deploy_predict_from_python(secured_server):
    live_server = secured_server
    code = readme_block("/pipelines/{pipeline['id']}/train")
    code = code.replace('"http://127.0.0.1:8050/api/v1"', repr(live_server.url + "/api/v1"))
    code = code.replace('open("iris.csv", "rb")', f"open({str(sklearn_csv('iris.csv'))!r}, 'rb')")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["job"]["status"] == "succeeded"
    assert namespace["answer"]["predictions"] == [0]  # the README's row is a setosa (class 0)
    assert len(namespace["answer"]["probabilities"][0]) == 3
    model = namespace["http"].get(f"{live_server.url}/api/v1/models/{namespace['job']['model_id']}").json()
    assert model["status"] == "deployed"
    assert call(live_server, "GET", "/api/v1/models")[0] == 401  # the token is what let the example in


def test_run_example_reports_a_finished_run(secured_server):
    live_server = secured_server
    code = readme_block("from client.run import Run")
    code = code.replace('"http://127.0.0.1:8050"', repr(live_server.url))
    epochs = iter(range(1, 1000))
    namespace: dict = {"train_one_epoch": lambda: (1.0 / next(epochs), 0.5)}
    exec(compile(code, "README.md", "exec"), namespace)
    run = namespace["run"]
    job = live_server.runtime.training.get_job(run.id)
    assert job["status"] == "succeeded" and job["external"] and job["name"] == "resnet-50"
    assert job["step"] == 90 and job["metrics"]["loss"] == 1.0 / 90
