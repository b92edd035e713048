"""Training page: the live jobs table and the selected job's loss and score curves.

Rows are drawn in the browser from the jobs store (assets/mlops_live_ml.js); the curves are extended
there with ``Plotly.extendTraces`` as ``training_progress`` arrives, one line per metric: metrics that
shrink as the model learns (loss, error, MAE, MSE) on the loss graph, the others (accuracy, F1, R²)
on the score graph.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from components import ids
from components.figures import lines
from components.system import GRAPH_CONFIG


def curves_figure(y_title: str) -> go.Figure:
    """An empty curve graph; the browser adds one line per metric of the selected job."""
    return lines([], title=None, y_title=y_title, x_type="linear", x_title="step")


def training_page(jobs: list[dict[str, Any]]) -> dbc.Container:
    curves = [
        (ids.GRAPH_TRAIN_LOSS, "Loss"),
        (ids.GRAPH_TRAIN_SCORE, "Accuracy / R²"),
    ]
    return dbc.Container(
        [
            dbc.Card(
                [
                    dbc.CardHeader("Training jobs"),
                    dcc.Store(id=ids.JOBS_STORE, data={"items": jobs}),
                    html.Div(id=ids.JOBS_TABLE, className="table-responsive"),
                ],
                className="shadow-sm mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader(html.Span("No job selected", id=ids.CURVES_TITLE), className="fw-semibold"),
                    dbc.CardBody(
                        dbc.Row(
                            [
                                dbc.Col(
                                    [
                                        html.Div(title, className="small text-muted text-uppercase"),
                                        dcc.Graph(id=graph_id, figure=curves_figure(title), config=GRAPH_CONFIG,
                                                  className="live-graph"),
                                    ],
                                    lg=6,
                                )
                                for graph_id, title in curves
                            ]
                        )
                    ),
                ],
                className="shadow-sm mb-3 curves-card",
            ),
        ],
        fluid=True,
    )
