"""The ML plane in the documented multi-worker deployment: gunicorn workers, Redis and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.integration.test_api import call
from tests.integration.test_data_api import sklearn_csv
from tests.integration.test_gunicorn import start_gunicorn
from tests.integration.test_ml_api import make_pipeline, rows_of, train, wait_job
from tests.integration.wsclient import Client

pytestmark = pytest.mark.redis
PREDICTIONS = 60


def test_train_deploy_and_count_predictions_across_workers(tmp_path, redis_url, postgres_url):
    with start_gunicorn(tmp_path, MLOPS_EVENT_LOG=redis_url, MLOPS_DATABASE_URL=postgres_url,
                        MLOPS_BACKGROUND="false") as server:
        path = sklearn_csv("iris.csv")
        dataset, pipeline = make_pipeline(server, path, "linear", {"max_iter": 10})
        job = wait_job(server, train(server, pipeline["id"]), "succeeded", "failed")
        assert job["status"] == "succeeded", job
        assert job["worker"] and job["worker"].split(":")[1].isdigit()  # host:pid:nonce
        status, model = call(server, "POST", f"/api/v1/models/{job['model_id']}/deploy")
        assert status == 200 and model["status"] == "deployed"

        client = Client(server.ws_url)
        try:
            instances, _ = rows_of(path, "target", 1, [c["name"] for c in dataset["columns"]])
            for _ in range(PREDICTIONS):  # a new connection each: the requests spread over the workers
                status, body = call(server, "POST", f"/api/v1/pipelines/{pipeline['id']}/predict", {"instances": instances})
                assert status == 200 and body["version"] == 1
            volumes: list[dict] = []

            def all_counted():
                volumes.extend(e["data"] for e in client.until(lambda e: e["type"] == "prediction_volume", timeout=30)
                               if e["type"] == "prediction_volume")
                return sum(v["count"] for v in volumes) >= PREDICTIONS

            assert wait_until(all_counted, timeout=60, interval=0)
        finally:
            client.close()
        assert sum(v["count"] for v in volumes) == PREDICTIONS
        assert max(v["total"] for v in volumes) == PREDICTIONS  # totals add up over every worker
        assert call(server, "GET", f"/api/v1/models/{model['id']}")[1]["predictions"] == PREDICTIONS
        history = call(server, "GET", f"/api/v1/models/{model['id']}/predictions")[1]["items"]
        assert sum(row["count"] for row in history) == PREDICTIONS
