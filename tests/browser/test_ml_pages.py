"""The ML plane in Chromium: train from the Pipelines page, watch it, deploy it, serve it, see the traffic."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from pathlib import Path

import pytest
import sklearn

from tests.browser.conftest import js, wait_css, wait_js
from tests.browser.test_every_event_visible import graph_traces, navigate, text_of, toast, wait_text
from tests.integration.test_api import call

pytestmark = pytest.mark.browser

IRIS = Path(sklearn.__file__).parent / "datasets" / "data" / "iris.csv"
TRAINING_TIMEOUT = 180  # generous: a slow machine trains slowly, and nothing here depends on speed

# Records, in the page it runs in, every value each job's progress bar shows (by job id).
RECORD_PROGRESS = """
window.__progress = {};
const note = () => document.querySelectorAll('[data-job-id] .progress-bar').forEach((bar) => {
  const id = bar.closest('[data-job-id]').getAttribute('data-job-id');
  const value = Number(bar.getAttribute('aria-valuenow'));
  const seen = (window.__progress[id] = window.__progress[id] || []);
  if (seen[seen.length - 1] !== value) seen.push(value);
});
new MutationObserver(note).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow']});
note();
"""


def upload_csv(base_url: str, path: Path, name: str) -> dict:
    """``POST /api/v1/datasets`` with the file as the multipart field ``file``."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        base_url + "/api/v1/datasets", data=body, method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
        return json.loads(response.read())


def iris_pipeline(server, params: dict) -> dict:
    dataset = upload_csv(server.url, IRIS, "iris")
    status, pipeline = call(server, "POST", "/api/v1/pipelines", {
        "name": "iris-forest", "dataset_id": dataset["id"], "target": "target", "model": "random_forest", "params": params,
    })
    assert status == 201, pipeline
    return pipeline


def predict(server, pipeline_id: int, times: int) -> None:
    row = {"feature_0": 5.1, "feature_1": 3.5, "feature_2": 1.4, "feature_3": 0.2}
    for _ in range(times):
        status, body = call(server, "POST", f"/api/v1/pipelines/{pipeline_id}/predict", {"instances": [row]})
        assert status == 200 and len(body["predictions"]) == 1, body


def number(dash_duo, selector: str) -> int:
    return int(text_of(dash_duo, selector).replace(",", "") or "-1")


@pytest.mark.timeout(600)  # above the sum of its generous waits
def test_train_deploy_and_serve_from_the_pages(dash_duo, second_browser, start_dashboard):
    start_dashboard(dash_duo, background=False)
    server = dash_duo.server
    pipeline = iris_pipeline(server, {"n_estimators": 1500})  # 20 stages of 75 trees: progress to watch

    # A second tab watches the Training page from before the job exists.
    watcher = second_browser
    watcher.get(server.url + "/training")
    wait_css(watcher, "#conn-badge", timeout=15, text="Live")
    wait_css(watcher, "#jobs-table")
    watcher.execute_script(RECORD_PROGRESS)

    navigate(dash_duo, "Pipelines")
    dash_duo.wait_for_element("[data-pipeline='iris-forest'] [data-action='train']", timeout=10).click()
    toast(dash_duo, "iris-forest is queued for training", "primary")
    status, jobs = call(server, "GET", "/api/v1/jobs?limit=5")
    job_id = jobs["items"][0]["id"]

    row = f"[data-job-id='{job_id}']"
    wait_css(watcher, f"{row}[data-status='succeeded']", timeout=TRAINING_TIMEOUT)
    shown = watcher.execute_script(f"return window.__progress['{job_id}']")
    assert shown[-1] == 100, shown
    assert any(a < b < 100 for a, b in zip(shown, shown[1:])), f"the bar never moved before completion: {shown}"
    assert "accuracy" in wait_css(watcher, f"{row} .job-metrics").text
    # The curves grew live in the watching tab: loss on one graph, accuracy and F1 on the other.
    curves = watcher.execute_script(
        "return ['graph-train-loss', 'graph-train-score'].map(id => Object.fromEntries("
        "document.querySelector('#' + id + ' .js-plotly-plot').data.map(t => [t.name, t.y.length])))"
    )
    assert curves[0].get("loss", 0) >= 2 and curves[1].get("accuracy", 0) >= 2, curves
    toast(dash_duo, "iris-forest: accuracy", "success")

    # Deploy from the Models page.
    model_id = call(server, "GET", f"/api/v1/jobs/{job_id}")[1]["model_id"]
    model_row = f"[data-model-id='{model_id}']"
    navigate(dash_duo, "Models")
    dash_duo.wait_for_element(f"{model_row}[data-status='ready'] [data-action='deploy']", timeout=10).click()
    dash_duo.wait_for_element(f"{model_row}[data-status='deployed']", timeout=30)
    badge = f"{model_row} .model-status"
    assert js(dash_duo, f"return getComputedStyle(document.querySelector(\"{badge}\")).animationName") == "mlops-deployed-pulse"
    toast(dash_duo, f"iris-forest v1 now answers at /api/v1/pipelines/{pipeline['id']}/predict", "success")

    # The endpoint panel's curl example is a working request, and Copy puts exactly it on the clipboard.
    wait_js(dash_duo, f"(document.querySelector('#model-curl') || {{}}).textContent.includes('/pipelines/{pipeline['id']}/predict')")
    curl = text_of(dash_duo, "#model-curl")
    url, body = re.fullmatch(r"curl -X POST (\S+) -H 'Content-Type: application/json' -d '(.*)'", curl).groups()
    assert url == f"{server.url}/api/v1/pipelines/{pipeline['id']}/predict"
    status, answer = call(server, "POST", url.removeprefix(server.url), json.loads(body))
    assert status == 200 and len(answer["predictions"]) == 1, answer
    js(dash_duo, "navigator.clipboard.writeText = (text) => { window.__copied = text; return Promise.resolve(); }")
    # The card is redrawn when a model event arrives: click the button that is there now.
    wait_js(dash_duo, "(() => { const b = document.querySelector('.endpoint-card .copy-button'); if (b) b.click(); return window.__copied; })()")
    assert js(dash_duo, "return window.__copied") == curl

    # Traffic: the overview's prediction-volume chart gains points and the KPI rises.
    navigate(dash_duo, "Overview")
    dash_duo.wait_for_element("#graph-predictions .js-plotly-plot", timeout=10)
    wait_text(dash_duo, "#kpi-deployed", "1")
    label = f"model {model_id}"
    before = len(graph_traces(dash_duo, "graph-predictions").get(label, []))
    kpi_before = number(dash_duo, "#kpi-predictions")
    predict(server, pipeline["id"], 20)
    wait_js(dash_duo, f"Number(document.querySelector('#kpi-predictions').textContent.replace(/,/g, '')) >= {kpi_before + 20}",
            timeout=30, message="for the KPI to count the 20 requests")
    wait_js(dash_duo, f"(document.querySelector('#graph-predictions .js-plotly-plot').data.find(t => t.name === '{label}') || {{y: []}}).y.length > {before}",
            timeout=30)
    gained = len(graph_traces(dash_duo, "graph-predictions")[label])
    predict(server, pipeline["id"], 5)
    wait_js(dash_duo, f"document.querySelector('#graph-predictions .js-plotly-plot').data.find(t => t.name === '{label}').y.length > {gained}",
            timeout=30)
    assert max(graph_traces(dash_duo, "graph-predictions")[label]) > 0
    assert [e for e in dash_duo.get_logs() if e["level"] == "SEVERE"] == []


def slow_csv(tmp_path: Path) -> Path:
    """20,000 rows of 20 noisy features: a 2,000-tree forest on it trains far longer than any test."""
    import numpy as np

    rng = np.random.default_rng(7)
    x = rng.normal(size=(20_000, 20)).round(4)
    target = (x[:, 0] + rng.normal(scale=2.0, size=len(x)) > 0).astype(int)
    path = tmp_path / "slow.csv"
    lines = [",".join([f"f{i}" for i in range(20)] + ["target"])]
    lines += [",".join(map(str, row)) + f",{t}" for row, t in zip(x.tolist(), target)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cancel_from_the_training_page(dash_duo, start_dashboard, tmp_path):
    start_dashboard(dash_duo, background=False)
    server = dash_duo.server
    dataset = upload_csv(server.url, slow_csv(tmp_path), "slow")
    status, pipeline = call(server, "POST", "/api/v1/pipelines", {
        "name": "iris-forest", "dataset_id": dataset["id"], "target": "target", "model": "random_forest",
        "params": {"n_estimators": 2000},  # the most a pipeline may ask for: far longer than the test
    })
    assert status == 201, pipeline
    navigate(dash_duo, "Training")
    dash_duo.wait_for_element("#jobs-table", timeout=10)
    status, job = call(server, "POST", f"/api/v1/pipelines/{pipeline['id']}/train")
    assert status == 202, job
    row = f"[data-job-id='{job['id']}']"
    # Running: its row keeps its shape from here (only its cells change) until it ends.
    dash_duo.wait_for_element(f"{row}[data-status='running'] [data-action='cancel']", timeout=60).click()
    dash_duo.wait_for_element(f"{row}[data-status='cancelled']", timeout=60)
    toast(dash_duo, "iris-forest: cancelled by a user", "secondary")
    assert js(dash_duo, f"return document.querySelector(\"{row} [data-action='cancel']\")") is None
    assert call(server, "GET", f"/api/v1/jobs/{job['id']}")[1]["status"] == "cancelled"


def test_train_refused_says_why_in_a_toast(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)
    iris_pipeline(dash_duo.server, {})
    dash_app.mlops.training.stop()  # the server refuses new jobs (503), with a sentence saying why
    navigate(dash_duo, "Pipelines")
    dash_duo.wait_for_element("[data-pipeline='iris-forest'] [data-action='train']", timeout=10).click()
    toast(dash_duo, "training is not running in this process", "danger")
    assert call(dash_duo.server, "GET", "/api/v1/jobs")[1]["items"] == []


def test_prediction_volume_chart_embeds_exports_and_matches_the_notebook_figure(dash_duo, start_dashboard):
    from client import charts
    from components.charts import CHARTS

    dash_app = start_dashboard(dash_duo, background=False)
    server = dash_duo.server
    volume = {"pipeline_id": 7, "interval_s": 1.0, "latency_p50_ms": 1.0, "latency_p95_ms": 2.0}
    for model_id, count, total in ((1, 5, 5), (2, 3, 3), (1, 7, 12)):
        dash_app.mlops.publish("prediction_volume", dict(volume, model_id=model_id, count=count, total=total))

    # Embedded, the chart starts from the page snapshot and is kept live; a new model gets its line.
    dash_duo.server_url = server.url + "/embed/prediction_volume?theme=dark"
    dash_duo.wait_for_element("#graph-predictions .js-plotly-plot", timeout=15)
    wait_js(dash_duo, "window.mlops.state.lastSeq >= 3 && document.querySelector('#conn-badge').textContent === 'Live'", timeout=15)
    assert graph_traces(dash_duo, "graph-predictions") == {"model 1": [5.0, 7.0], "model 2": [3.0]}
    dash_app.mlops.publish("prediction_volume", dict(volume, model_id=3, count=4, total=4, interval_s=2.0))
    wait_js(dash_duo, "document.querySelector('#graph-predictions .js-plotly-plot').data.length === 3")
    assert graph_traces(dash_duo, "graph-predictions")["model 3"] == [2.0]

    # Exported and in a notebook: the same lines, from the event log.
    status, data = call(server, "GET", "/api/v1/charts/prediction_volume/data?last=1h")
    assert status == 200 and [s["rate"] for s in data["samples"]] == [5.0, 3.0, 7.0, 2.0]
    with urllib.request.urlopen(server.url + "/api/v1/charts/prediction_volume.csv", timeout=10) as response:
        lines = response.read().decode().splitlines()
    assert lines[0] == "time," + ",".join(CHARTS["prediction_volume"].fields) and len(lines) == 5
    figure = charts.prediction_volume(server.url, last="1h")
    page = graph_traces(dash_duo, "graph-predictions")
    assert {t.name: list(t.y) for t in figure.data} == page


def test_external_run_shows_like_a_job_and_its_curves_on_click(dash_duo, start_dashboard):
    from client.run import Run

    start_dashboard(dash_duo, background=False)
    server = dash_duo.server
    navigate(dash_duo, "Training")
    dash_duo.wait_for_element("#jobs-table", timeout=10)
    run = Run(server.url, name="resnet-50", total=10)
    for step in range(1, 6):
        run.log(step=step, loss=1.0 / step, acc=0.5 + step / 20)
    wait_js(dash_duo, "window.mlops.ml.jobs.size === 1", timeout=15)
    row = f"[data-job-id='{run.id}']"
    wait_js(dash_duo, f"(document.querySelector(\"{row} .progress-bar\") || {{getAttribute: () => ''}}).getAttribute('aria-valuenow') === '50'",
            timeout=15)
    assert "external" in text_of(dash_duo, row) and "resnet-50" in text_of(dash_duo, row)
    assert js(dash_duo, f"return document.querySelector(\"{row} [data-action='cancel']\")") is None  # its script ends it
    for step in range(6, 11):
        run.log(step=step, loss=1.0 / step, acc=0.5 + step / 20)
    run.finish()
    dash_duo.wait_for_element(f"{row}[data-status='succeeded']", timeout=15)
    toast(dash_duo, "resnet-50", "success")

    # A finished job's curves show on click, from the points this page received (a run's script sends
    # its steps in batches, and each batch is one event with its last step: steps 5 and 10 at least).
    dash_duo.find_element(row).click()
    wait_js(dash_duo, "document.querySelector('#curves-title').textContent.startsWith('resnet-50 · succeeded')")
    wait_js(dash_duo, "(document.querySelector('#graph-train-score .js-plotly-plot').data[0] || {x: []}).x.includes(10)")
    curves = js(dash_duo, "return ['graph-train-loss', 'graph-train-score'].map(id => document.querySelector('#' + id + ' .js-plotly-plot')"
                          ".data.map(t => [t.name, Array.from(t.x), Array.from(t.y)]))")
    (loss_name, steps, losses), = curves[0]
    (acc_name, acc_steps, accs), = curves[1]
    assert (loss_name, acc_name) == ("loss", "acc") and steps == acc_steps and {5, 10} <= set(steps), curves
    assert losses == [1.0 / s for s in steps] and accs == [0.5 + s / 20 for s in steps]


def test_a_finished_jobs_curves_show_on_a_page_opened_later(dash_duo, start_dashboard):
    """The curves of a job that trained before the page opened come from the server's event history."""
    import time

    start_dashboard(dash_duo, background=False)
    server = dash_duo.server
    pipeline = iris_pipeline(server, {"n_estimators": 100})
    status, job = call(server, "POST", f"/api/v1/pipelines/{pipeline['id']}/train")
    assert status == 202
    deadline = time.monotonic() + TRAINING_TIMEOUT
    while call(server, "GET", f"/api/v1/jobs/{job['id']}")[1]["status"] != "succeeded":
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    points = call(server, "GET", f"/api/v1/jobs/{job['id']}/progress")[1]["items"]
    assert len(points) >= 2

    dash_duo.server_url = server.url + "/training"  # opened after the training: nothing arrived live
    wait_js(dash_duo, "document.querySelector('[data-job-id]') !== null", timeout=30)
    loss = wait_js(dash_duo, "(() => { const gd = document.querySelector('#graph-train-loss .js-plotly-plot');"
                             " return gd && gd.data && gd.data.length && gd.data[0].x.length; })()", timeout=30)
    assert loss == len(points)  # every kept point, none twice
    assert "accuracy" in graph_traces(dash_duo, "graph-train-score")
