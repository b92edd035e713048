"""The README's Python examples for the ML plane run as written against a live dashboard."""

from __future__ import annotations

import re

from tests.integration.test_api import call
from tests.integration.test_data_api import sklearn_csv
from tests.processes import ROOT


def readme_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return next(block for block in blocks if marker in block)


def test_train_deploy_predict_from_python(live_server):
    code = readme_block("/pipelines/{pipeline['id']}/train")
    code = code.replace('"http://127.0.0.1:8050/api/v1"', repr(live_server.url + "/api/v1"))
    code = code.replace('open("iris.csv", "rb")', f"open({str(sklearn_csv('iris.csv'))!r}, 'rb')")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["job"]["status"] == "succeeded"
    assert namespace["answer"]["predictions"] == [0]  # the README's row is a setosa (class 0)
    assert len(namespace["answer"]["probabilities"][0]) == 3
    model = call(live_server, "GET", f"/api/v1/models/{namespace['job']['model_id']}")[1]
    assert model["status"] == "deployed"


def test_run_example_reports_a_finished_run(live_server):
    code = readme_block("from client.run import Run")
    code = code.replace('"http://127.0.0.1:8050"', repr(live_server.url))
    epochs = iter(range(1, 1000))
    namespace: dict = {"train_one_epoch": lambda: (1.0 / next(epochs), 0.5)}
    exec(compile(code, "README.md", "exec"), namespace)
    run = namespace["run"]
    job = call(live_server, "GET", f"/api/v1/jobs/{run.id}")[1]
    assert job["status"] == "succeeded" and job["external"] and job["name"] == "resnet-50"
    assert job["step"] == 90 and job["metrics"]["loss"] == 1.0 / 90
