"""Pipelines page: the create / edit form with validation messages, and the live pipelines table."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids

MODEL_LABELS = {
    "linear": "Linear (SGD)",
    "random_forest": "Random forest",
    "gradient_boosting": "Gradient boosting",
    "mlp": "Neural network (MLP)",
}


def _field(label: str, control, help_text: str = "") -> html.Div:
    return html.Div(
        [dbc.Label(label, className="small fw-semibold mb-1"), control, html.Div(help_text, className="form-text") if help_text else None],
        className="mb-2",
    )


def pipeline_form(datasets: list[dict[str, Any]]) -> dbc.Card:
    dataset_options = [{"label": f"{d['name']} (v{d['version']}, {d['rows']:,} rows)", "value": d["id"]} for d in datasets]
    return dbc.Card(
        [
            dbc.CardHeader("New pipeline", id=ids.PIPELINE_FORM_TITLE),
            dbc.CardBody(
                [
                    dcc.Store(id=ids.PIPELINE_EDITING, data=None),
                    _field("Name", dbc.Input(id=ids.PIPELINE_NAME, maxLength=100, placeholder="e.g. iris-forest")),
                    _field("Dataset", dcc.Dropdown(id=ids.PIPELINE_DATASET, options=dataset_options, placeholder="Choose a dataset")),
                    _field("Target column", dcc.Dropdown(id=ids.PIPELINE_TARGET, options=[], placeholder="Choose the column to predict")),
                    _field(
                        "Model",
                        dcc.Dropdown(
                            id=ids.PIPELINE_MODEL,
                            options=[{"label": label, "value": kind} for kind, label in MODEL_LABELS.items()],
                            value="random_forest",
                            clearable=False,
                        ),
                    ),
                    _field(
                        "Features",
                        dcc.Dropdown(id=ids.PIPELINE_FEATURES, options=[], multi=True, placeholder="All other columns"),
                    ),
                    _field(
                        "Parameters (JSON)",
                        dbc.Textarea(id=ids.PIPELINE_PARAMS, value="{}", rows=3, className="font-monospace small"),
                        'e.g. {"n_estimators": 200, "max_depth": 8}',
                    ),
                    html.Div(id=ids.PIPELINE_FEEDBACK),
                    html.Div(
                        [
                            dbc.Button("Create pipeline", id=ids.PIPELINE_SUBMIT, color="primary", className="me-2"),
                            dbc.Button("Cancel", id=ids.PIPELINE_CANCEL, color="link"),
                        ]
                    ),
                ]
            ),
        ],
        className="shadow-sm mb-3",
    )


def pipelines_page(pipelines: list[dict[str, Any]], datasets: list[dict[str, Any]]) -> dbc.Container:
    return dbc.Container(
        dbc.Row(
            [
                dbc.Col(pipeline_form(datasets), lg=4),
                dbc.Col(
                    dbc.Card(
                        [
                            dbc.CardHeader("Pipelines"),
                            dcc.Store(id=ids.PIPELINES_STORE, data={"items": pipelines}),
                            dcc.Store(id=ids.PIPELINE_PENDING_DELETE, data=None),
                            dcc.ConfirmDialog(id=ids.PIPELINE_CONFIRM, message=""),
                            html.Div(id=ids.PIPELINES_TABLE, className="table-responsive"),
                        ],
                        className="shadow-sm mb-3",
                    ),
                    lg=8,
                ),
            ]
        ),
        fluid=True,
    )
