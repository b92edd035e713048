"""Datasets page: drag-and-drop upload with a progress bar, the live datasets table, a profile view."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids


def upload_card() -> dbc.Card:
    # The browser sends the file to the REST endpoint itself (assets/mlops_live_data.js): bytes never pass
    # through a Dash callback, and the progress bar follows the real transfer, then the parsing.
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.Div("Drop a CSV file here, or click to choose one", className="fw-semibold"),
                        html.Div("comma, semicolon or tab separated; UTF-8 or Latin-1", className="small text-muted"),
                    ],
                    id=ids.UPLOAD_ZONE,
                    className="upload-zone text-center p-4 mb-3",
                    tabIndex="0",
                ),
                dbc.Input(id=ids.UPLOAD_NAME, placeholder="Dataset name (default: the file name)", className="mb-2"),
                dbc.Progress(id=ids.UPLOAD_PROGRESS, value=0, label="", className="mb-2 upload-progress", style={"height": "1.4rem"}),
                html.Div(id=ids.UPLOAD_STATUS, className="small upload-status"),
                html.Div(id=ids.UPLOADS_LIST, className="uploads-list"),  # uploads from other tabs and scripts
            ]
        ),
        className="shadow-sm mb-3",
    )


def datasets_page(items: list[dict[str, Any]]) -> dbc.Container:
    return dbc.Container(
        [
            dbc.Row(
                [
                    dbc.Col(upload_card(), lg=4),
                    dbc.Col(
                        dbc.Card(
                            [
                                dbc.CardHeader("Datasets"),
                                dcc.Store(id=ids.DATASETS_STORE, data={"items": items}),
                                html.Div(id=ids.DATASETS_TABLE, className="table-responsive"),
                            ],
                            className="shadow-sm mb-3",
                        ),
                        lg=8,
                    ),
                ]
            ),
            html.Div(id=ids.DATASET_PROFILE),
        ],
        fluid=True,
    )


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def profile_view(dataset: dict[str, Any]) -> dbc.Card:
    """Per-column types, missing values and summaries of one dataset version."""
    profile = dataset.get("profile") or {}
    rows = []
    for column in dataset["columns"]:
        stats = profile.get(column["name"], {}) if isinstance(profile, dict) else {}
        if "mean" in stats:
            summary = " · ".join(f"{k} {_number(stats.get(k))}" for k in ("mean", "std", "min", "max"))
        elif stats.get("top"):
            summary = "top: " + ", ".join(f"{t['value']} ({t['count']})" for t in stats["top"][:5])
        else:
            summary = ""
        rows.append(html.Tr([html.Td(column["name"]), html.Td(column["dtype"]), html.Td(_number(column["missing"])), html.Td(summary)]))
    return dbc.Card(
        [
            dbc.CardHeader(f"{dataset['name']} · version {dataset['version']} · {dataset['rows']:,} rows · {len(dataset['columns'])} columns"),
            dbc.Table(
                [html.Thead(html.Tr([html.Th("Column"), html.Th("Type"), html.Th("Missing"), html.Th("Summary")])), html.Tbody(rows)],
                size="sm", striped=True, className="mb-0",
            ),
        ],
        className="shadow-sm mb-3 dataset-profile",
    )
