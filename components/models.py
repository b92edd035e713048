"""Models page: the registry (status per version, Deploy), and the selected model's endpoint with a curl example.

Both are drawn in the browser from the models store (assets/mlops_live_ml.js): the curl example needs
the page's own address, and the table follows ``model_status``, ``model_deployed`` and
``prediction_volume`` as they arrive.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids


def models_page(models: list[dict[str, Any]]) -> dbc.Container:
    return dbc.Container(
        dbc.Row(
            [
                dbc.Col(
                    dbc.Card(
                        [
                            dbc.CardHeader("Model registry"),
                            dcc.Store(id=ids.MODELS_STORE, data={"items": models}),
                            html.Div(id=ids.MODELS_TABLE, className="table-responsive"),
                        ],
                        className="shadow-sm mb-3",
                    ),
                    lg=8,
                ),
                dbc.Col(dbc.Card(html.Div(id=ids.MODEL_ENDPOINT), className="shadow-sm mb-3 endpoint-card"), lg=4),
            ]
        ),
        fluid=True,
    )
