"""Datasets and pipelines pages in Chromium: upload with progress, live tables across browsers."""

from __future__ import annotations

import pytest

from tests.browser.conftest import js, wait_css, wait_js

pytestmark = pytest.mark.browser


def write_csv(path, rows: int) -> None:
    with open(path, "w") as f:
        f.write("id,feature_a,feature_b,label\n")
        for i in range(rows):
            f.write(f"{i},{i * 0.5},{(i * 7) % 13},{'yes' if i % 3 else 'no'}\n")


def choose(dash_duo, selector: str, label: str, timeout: float = 10.0) -> None:
    """Pick ``label`` in a dcc.Dropdown once its options have arrived (they come from a callback)."""
    import time

    from selenium.webdriver.common.keys import Keys

    deadline = time.monotonic() + timeout
    while label not in dash_duo.find_element(selector).text:
        if time.monotonic() > deadline:
            raise AssertionError(f"{label!r} never became selectable in {selector}")
        dash_duo.select_dcc_dropdown(selector, value=label)
        if label not in dash_duo.find_element(selector).text:
            dash_duo.find_element("body").send_keys(Keys.ESCAPE)
            time.sleep(0.2)


def open_page(dash_duo, path: str) -> None:
    dash_duo.server_url = dash_duo.server.url + path


def test_upload_through_the_page_shows_progress_and_the_dataset(dash_duo, start_dashboard, tmp_path):
    start_dashboard(dash_duo, background=False)
    open_page(dash_duo, "/datasets")
    dash_duo.wait_for_text_to_equal("#conn-badge", "Live", timeout=15)
    dash_duo.wait_for_element("#upload-zone", timeout=10)
    csv_path = tmp_path / "sensor_readings.csv"
    write_csv(csv_path, 400_000)  # ~10 MB: long enough to watch both stages
    js(dash_duo, "window.mlops.upload.fileInput().classList.remove('d-none')")
    dash_duo.find_element("#upload-input").send_keys(str(csv_path))
    dash_duo.wait_for_contains_text("#upload-status", "Stored sensor_readings", timeout=60)
    labels = js(dash_duo, "return window.mlops.upload.labels")
    assert any(label.startswith("Uploading") for label in labels), labels
    assert any(label.startswith("Parsing") for label in labels), labels
    assert labels[-1] == "Done"
    dash_duo.wait_for_element("[data-dataset='sensor_readings']", timeout=10)
    assert "400,000" in dash_duo.find_element("[data-dataset='sensor_readings']").text
    dash_duo.wait_for_contains_text(".mlops-toast", "Upload complete", timeout=10)
    # The profile view: types and summaries per column.
    dash_duo.find_element("[data-dataset='sensor_readings'] button").click()
    dash_duo.wait_for_contains_text(".dataset-profile", "feature_a", timeout=10)
    assert "float64" in dash_duo.find_element(".dataset-profile").text


def test_bad_upload_through_the_page_says_why(dash_duo, start_dashboard, tmp_path):
    start_dashboard(dash_duo, background=False)
    open_page(dash_duo, "/datasets")
    dash_duo.wait_for_element("#upload-zone", timeout=10)
    bad = tmp_path / "empty.csv"
    bad.write_bytes(b"")
    js(dash_duo, "window.mlops.upload.fileInput().classList.remove('d-none')")
    dash_duo.find_element("#upload-input").send_keys(str(bad))
    dash_duo.wait_for_contains_text("#upload-status", "Upload failed: the file is empty", timeout=20)
    dash_duo.wait_for_contains_text(".mlops-toast", "Upload failed", timeout=10)


def test_pipeline_created_in_one_browser_appears_in_another(dash_duo, second_browser, start_dashboard, tmp_path):
    dash_app = start_dashboard(dash_duo, background=False)
    csv_path = tmp_path / "churn.csv"
    write_csv(csv_path, 200)
    with open(csv_path, "rb") as f:
        upload = dash_app.mlops.datasets.start_upload("seed", None)
        stream = upload.open_file("churn.csv")
        stream.write(f.read())
        stream.close()
    dataset, _ = dash_app.mlops.datasets.finish_upload(upload, None)

    other = second_browser  # a second user watches the pipelines table
    other.get(dash_duo.server.url + "/pipelines")
    wait_css(other, "#conn-badge", timeout=15, text="Live")
    open_page(dash_duo, "/pipelines")
    dash_duo.wait_for_text_to_equal("#conn-badge", "Live", timeout=15)

    dash_duo.find_element("#pipeline-name").send_keys("churn-forest")
    choose(dash_duo, "#pipeline-dataset", "churn (v1, 200 rows)")
    choose(dash_duo, "#pipeline-target", "label")
    dash_duo.find_element("#pipeline-submit").click()
    dash_duo.wait_for_contains_text("#pipeline-feedback", "Pipeline churn-forest created.", timeout=10)

    row = wait_css(other, "[data-pipeline='churn-forest']")
    assert "random_forest" in row.text
    wait_css(other, ".mlops-toast", text="churn-forest was created")

    # Validation messages for a bad submission.
    dash_duo.find_element("#pipeline-name").send_keys("churn-forest")
    choose(dash_duo, "#pipeline-dataset", "churn (v1, 200 rows)")
    dash_duo.find_element("#pipeline-submit").click()
    dash_duo.wait_for_element(".pipeline-error", timeout=10)
    assert "target" in dash_duo.find_element(".pipeline-error").text

    # Delete from the second browser; the first sees it go.
    wait_css(other, "[data-pipeline='churn-forest'] .btn-outline-danger").click()
    wait_js(dash_duo, "document.querySelector(\"[data-pipeline='churn-forest']\") === null", timeout=10)
    assert dataset["name"] == "churn"


def test_activity_feed_shows_user_text_as_text(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)
    dash_duo.wait_for_element("#activity-list", timeout=15)
    dash_duo.wait_for_text_to_equal("#conn-badge", "Live", timeout=15)
    dash_app.mlops.activity.record("Dataset <img src=x onerror=alert(1)> uploaded", category="dataset", level="success")
    dash_duo.wait_for_contains_text("#activity-list", "<img src=x onerror=alert(1)>", timeout=10)
    assert js(dash_duo, "return document.querySelectorAll('#activity-list img').length") == 0


def test_health_badge_on_every_page(dash_duo, start_dashboard):
    dash_app = start_dashboard(dash_duo, background=False)
    open_page(dash_duo, "/pipelines")
    dash_duo.wait_for_text_to_equal("#conn-badge", "Live", timeout=15)
    dash_app.mlops.publish("health_change", {"component": "gpu", "status": "degraded", "overall": "degraded"})
    dash_duo.wait_for_text_to_equal("#health-badge", "Health: degraded", timeout=10)
