"""The baseline for ``bench/serving.py``: one Flask route that answers predictions from a joblib artifact.

No validation, counting, timing, database or events: ``POST /predict`` with ``{"instances": [...]}``
builds ``pd.DataFrame(instances)`` and runs the model. A classifier is asked once for
``predict_proba``, and its predictions are ``classes_[argmax]`` (what scikit-learn's ``predict``
computes, without a second pass through the model), so the model work is the same as the
dashboard's and the difference between the two is the dashboard's own cost.

Run it as ``BENCH_ARTIFACT=<path to vN.joblib> gunicorn bench.bare_flask_app:app`` from the repo root
(the artifact of a regression model unpickles ``ml.trainer.StandardizedTarget``).
"""

from __future__ import annotations

import os

import joblib
import pandas as pd
from flask import Flask, jsonify, request

bundle = joblib.load(os.environ["BENCH_ARTIFACT"])
model = bundle["model"]
classify = bundle["task"] == "classification"

app = Flask(__name__)


@app.get("/api/v1/health")
def health():
    return {"status": "healthy"}


@app.post("/predict")
def predict():
    frame = pd.DataFrame(request.get_json()["instances"])
    if classify:
        proba = model.predict_proba(frame)
        return jsonify({"predictions": model.classes_[proba.argmax(axis=1)].tolist(), "probabilities": proba.tolist()})
    return jsonify({"predictions": model.predict(frame).tolist()})
