"""Every one of the 17 event types, published through the REST API, changes what the page shows."""

from __future__ import annotations

import json
import urllib.request

import pytest

from events.catalogue import EventType
from tests.browser.conftest import js, wait_css, wait_js
from tests.samples import PIPELINE, SAMPLE_PAYLOADS

pytestmark = pytest.mark.browser


class Publisher:
    """Publishes events through ``POST /api/v1/events``, as any program outside the dashboard would."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.types: set[str] = set()

    def __call__(self, kind: EventType, data: dict | None = None) -> dict:
        body = json.dumps({"type": kind.value, "data": SAMPLE_PAYLOADS[kind] if data is None else data}).encode()
        request = urllib.request.Request(
            self.base_url + "/api/v1/events", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            self.types.add(kind.value)
            return json.loads(response.read())


def navigate(dash_duo, label: str, timeout: float = 15.0) -> None:
    """Follow a navbar link: the page changes in place, the WebSocket and the browser's state stay."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(dash_duo.driver, timeout).until(expected_conditions.element_to_be_clickable((By.LINK_TEXT, label))).click()


def text_of(dash_duo, selector: str) -> str:
    return js(dash_duo, f"const el = document.querySelector({json.dumps(selector)}); return el ? el.textContent : null") or ""


def wait_text(dash_duo, selector: str, text: str, timeout: float = 10.0) -> None:
    wait_js(dash_duo, f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent === {json.dumps(text)}",
            timeout=timeout, message=f"for {selector} to read {text!r}")


def wait_gone(dash_duo, selector: str, timeout: float = 10.0) -> None:
    wait_js(dash_duo, f"document.querySelector({json.dumps(selector)}) === null", timeout=timeout)


def toast(dash_duo, text: str, kind: str | None = None) -> None:
    """A toast containing ``text`` is shown (``kind``: its colour, e.g. success, danger, secondary)."""
    wait_css(dash_duo.driver, ".mlops-toast" + (f".mlops-toast-{kind}" if kind else ""), text=text)


def graph_traces(dash_duo, graph_id: str) -> dict[str, list]:
    return js(
        dash_duo,
        f"const gd = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return gd && gd.data ? Object.fromEntries(gd.data.map(t => [t.name, Array.from(t.y)])) : {};",
    )


def test_every_event_type_has_a_visible_effect(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)
    publish = Publisher(dash_duo.server.url)
    dash_duo.wait_for_text_to_equal("#conn-badge", "Live", timeout=15)

    # -- Training page: jobs table, progress bar, live curve, toasts ------------------------------
    navigate(dash_duo, "Training")
    dash_duo.wait_for_element("#jobs-table", timeout=10)
    publish(EventType.TRAINING_PROGRESS)  # job j1, step 3 of 10, loss 0.5
    dash_duo.wait_for_element("[data-job-id='j1'][data-status='running']", timeout=10)
    wait_js(dash_duo, "document.querySelector(\"[data-job-id='j1'] .progress-bar\").getAttribute('aria-valuenow') === '30'")
    assert text_of(dash_duo, "[data-job-id='j1'] .job-percent") == "30%"
    assert "progress-bar-animated" in js(dash_duo, "return document.querySelector(\"[data-job-id='j1'] .progress-bar\").className")
    assert "loss 0.5" in text_of(dash_duo, "[data-job-id='j1'] .job-metrics")
    assert "external" in text_of(dash_duo, "[data-job-id='j1']")  # no pipeline: a run reported from outside
    wait_js(dash_duo, "(document.querySelector('#graph-train-loss .js-plotly-plot').data || []).length === 1")
    assert graph_traces(dash_duo, "graph-train-loss") == {"loss": [0.5]}
    assert "step 3 of 10" in text_of(dash_duo, "#curves-title")

    publish(EventType.TRAINING_COMPLETE)  # j1 done, accuracy 0.9, model 1
    dash_duo.wait_for_element("[data-job-id='j1'][data-status='succeeded']", timeout=10)
    assert text_of(dash_duo, "[data-job-id='j1'] .job-percent") == "100%"
    assert text_of(dash_duo, "[data-job-id='j1'] .job-status") == "succeeded"
    toast(dash_duo, "accuracy 0.9", "success")

    publish(EventType.TRAINING_ERROR)  # j2 failed: one class
    dash_duo.wait_for_element("[data-job-id='j2'][data-status='failed']", timeout=10)
    assert "the target has one class" in text_of(dash_duo, "[data-job-id='j2'] .job-error")
    toast(dash_duo, "the target has one class", "danger")

    # -- Models page: registry row with its status badge, deployment animation and toast ----------
    navigate(dash_duo, "Models")
    dash_duo.wait_for_element("#models-table", timeout=10)
    publish(EventType.MODEL_STATUS)  # model 1 of pipeline 7, v1, ready
    dash_duo.wait_for_element("[data-model-id='1'][data-status='ready']", timeout=10)
    assert text_of(dash_duo, "[data-model-id='1'] .model-status") == "ready"
    assert js(dash_duo, "return !!document.querySelector(\"[data-model-id='1'] [data-action='deploy']\")")

    publish(EventType.MODEL_DEPLOYED)
    dash_duo.wait_for_element("[data-model-id='1'][data-status='deployed']", timeout=10)
    animation = js(dash_duo, "return getComputedStyle(document.querySelector(\"[data-model-id='1'] .model-status\")).animationName")
    assert animation == "mlops-deployed-pulse"
    toast(dash_duo, "now answers at /api/v1/pipelines/7/predict", "success")
    wait_js(dash_duo, "(document.querySelector('#model-curl') || {}).textContent")
    assert f"{dash_duo.server.url}/api/v1/pipelines/7/predict" in text_of(dash_duo, "#model-curl")

    # -- Overview: system stats, health, activity, prediction volume ------------------------------
    navigate(dash_duo, "Overview")
    dash_duo.wait_for_element("#kpi-cpu", timeout=10)
    wait_text(dash_duo, "#kpi-deployed", "1")  # the deployment above, counted on the overview
    publish(EventType.SYSTEM_STATS)
    wait_text(dash_duo, "#kpi-cpu", "12.5%")
    publish(EventType.HEALTH_CHANGE)  # disk degraded
    dash_duo.wait_for_element("[data-component='disk'][data-status='degraded']", timeout=10)
    dash_duo.wait_for_text_to_equal("#health-badge", "Health: degraded")
    publish(EventType.ACTIVITY_UPDATE)
    dash_duo.wait_for_contains_text("#activity-list", "Dataset iris uploaded", timeout=10)
    publish(EventType.PREDICTION_VOLUME)  # model 1: 5 requests in 1 s, 50 in all
    wait_js(dash_duo, "(document.querySelector('#graph-predictions .js-plotly-plot').data || []).length === 1")
    assert graph_traces(dash_duo, "graph-predictions") == {"model 1": [5.0]}
    wait_text(dash_duo, "#kpi-predictions", "5")

    # The models table counted those predictions too.
    navigate(dash_duo, "Models")
    wait_text(dash_duo, "[data-model-id='1'] .model-predictions", "50")

    # -- Datasets page: uploads from elsewhere, their toasts, the datasets table -------------------
    navigate(dash_duo, "Datasets")
    dash_duo.wait_for_element("#datasets-table", timeout=10)
    publish(EventType.UPLOAD_PROGRESS)  # u1, iris.csv, 10 of 100 bytes
    dash_duo.wait_for_element("[data-upload-id='u1']", timeout=10)
    assert "iris.csv" in text_of(dash_duo, "[data-upload-id='u1']")
    assert "receiving 10%" in text_of(dash_duo, "[data-upload-id='u1']")
    publish(EventType.UPLOAD_COMPLETE)
    wait_gone(dash_duo, "[data-upload-id='u1']")
    toast(dash_duo, "150 rows", "success")
    publish(EventType.UPLOAD_ERROR)
    toast(dash_duo, "bad.csv: the file is empty", "danger")
    publish(EventType.DATASET_CREATED)
    dash_duo.wait_for_element("[data-dataset='iris']", timeout=10)
    assert "v1" in text_of(dash_duo, "[data-dataset='iris']")
    publish(EventType.DATASET_UPDATED)
    wait_js(dash_duo, "(document.querySelector(\"[data-dataset='iris']\") || {}).textContent.includes('v2')")

    # -- Pipelines page: the table and toasts -----------------------------------------------------
    navigate(dash_duo, "Pipelines")
    dash_duo.wait_for_element("#pipelines-table", timeout=10)
    publish(EventType.PIPELINE_CREATED)
    dash_duo.wait_for_element("[data-pipeline='iris-rf']", timeout=10)
    toast(dash_duo, "iris-rf was created")
    publish(EventType.PIPELINE_UPDATED, dict(PIPELINE, model="gradient_boosting"))
    wait_js(dash_duo, "(document.querySelector(\"[data-pipeline='iris-rf']\") || {}).textContent.includes('gradient_boosting')")
    toast(dash_duo, "iris-rf was updated")
    publish(EventType.PIPELINE_DELETED)
    wait_gone(dash_duo, "[data-pipeline='iris-rf']")
    toast(dash_duo, "iris-rf was deleted", "warning")

    assert publish.types == {t.value for t in EventType}, "a type without a visible check"
    # Each event reached the dispatcher once and in order (the page state above came from them).
    seqs = js(dash_duo, "return window.mlops.trace.slice()")
    assert seqs == list(range(seqs[0], seqs[-1] + 1))  # every seq once, in order, none skipped
    assert js(dash_duo, "return window.mlops.counters.resets") == 0
    assert dash_app.mlops.hub.position()[1] == seqs[-1]
    # The page asks the registry for model 1's full row; it exists only in these hand-published events.
    errors = [e for e in dash_duo.get_logs() if e["level"] == "SEVERE" and "/api/v1/models/1 " not in e["message"]]
    assert errors == []
