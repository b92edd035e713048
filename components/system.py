"""Overview panel: KPI cards and the live charts (system, prediction volume), each with Download and Embed."""

from __future__ import annotations

import json
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids
from components.charts import PANELS, PREDICTION_VOLUME, Chart

EXPORT_FORMATS = (("PNG", "png"), ("SVG", "svg"), ("PDF", "pdf"), ("Interactive HTML", "html"), ("CSV data", "csv"))
GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


def kpi_card(title: str, value_id: str, sub_id: str, value: str = "—", sub: str = "") -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(title, className="kpi-title text-muted small text-uppercase"),
                html.Div(value, id=value_id, className="kpi-value fs-3 fw-semibold"),
                html.Div(sub, id=sub_id, className="kpi-sub text-muted small"),
            ]
        ),
        className="kpi-card h-100 shadow-sm",
    )


def kpi_row() -> dbc.Row:
    cards = [
        ("CPU", ids.KPI_CPU, ids.KPI_CPU_SUB),
        ("Memory", ids.KPI_MEM, ids.KPI_MEM_SUB),
        ("Disk", ids.KPI_DISK, ids.KPI_DISK_SUB),
        ("Dashboard process", ids.KPI_RSS, ids.KPI_RSS_SUB),
    ]
    return dbc.Row([dbc.Col(kpi_card(*card), md=3, sm=6, className="mb-3") for card in cards])


def ml_kpi_row(jobs: list[dict[str, Any]], models: list[dict[str, Any]], rates: dict[Any, int]) -> dbc.Row:
    """Active trainings, deployed models, predictions per minute; first values from the server, then live."""
    active = sum(1 for j in jobs if j["status"] in ("queued", "running"))
    deployed = sum(1 for m in models if m["status"] == "deployed")
    cards = [
        ("Active trainings", ids.KPI_TRAININGS, ids.KPI_TRAININGS_SUB, str(active), ""),
        ("Deployed models", ids.KPI_DEPLOYED, ids.KPI_DEPLOYED_SUB, str(deployed), f"{len(models)} in the registry"),
        ("Predictions / min", ids.KPI_PREDICTIONS, ids.KPI_PREDICTIONS_SUB, f"{sum(rates.values()):,}", "over the last 60 s"),
    ]
    return dbc.Row(
        [
            dcc.Store(id=ids.ML_STORE, data={"jobs": jobs, "models": models}),
            *(dbc.Col(kpi_card(*card), md=4, className="mb-3") for card in cards),
        ]
    )


def copy_button(target_id: str | dict) -> html.Button:
    """Copies the text of ``target_id`` (assets/mlops_live_ml.js); works on plain http too."""
    if isinstance(target_id, dict):  # a pattern-matching id, as Dash writes it into the DOM
        target_id = json.dumps(target_id, sort_keys=True, separators=(",", ":"))
    return html.Button(
        html.Span("Copy", className="copy-label"),
        className="btn btn-sm btn-outline-secondary copy-button",
        title="Copy to the clipboard",
        **{"data-copy-target": target_id},
    )


def chart_card(chart: Chart, samples: list[dict[str, Any]], api_base: str) -> dbc.Card:
    """A live chart with its Download menu (export API) and Embed snippet."""
    downloads = dbc.DropdownMenu(
        [
            dbc.DropdownMenuItem(label, href=f"{api_base}charts/{chart.name}.{ext}?download=1", external_link=True)
            for label, ext in EXPORT_FORMATS
        ],
        label="Download",
        size="sm",
        color="light",
        align_end=True,
        className="me-1 chart-download",
    )
    embed = dbc.Button("Embed", id=ids.embed_toggle(chart.name), size="sm", color="light", className="chart-embed")
    snippet = dbc.Collapse(
        html.Div(
            [
                html.Pre(id=ids.embed_snippet(chart.name), className="small mb-0 me-2 text-wrap embed-snippet flex-grow-1"),
                copy_button(ids.embed_snippet(chart.name)),
            ],
            className="d-flex align-items-start p-2 bg-light border-top",
        ),
        id=ids.embed_collapse(chart.name),
        is_open=False,
    )
    return dbc.Card(
        [
            dbc.CardHeader(
                [html.Span(chart.title, className="fw-semibold"), html.Div([downloads, embed], className="d-flex")],
                className="d-flex justify-content-between align-items-center py-1",
            ),
            dcc.Graph(id=chart.graph_id, figure=chart.figure(samples, title=False), config=GRAPH_CONFIG, className="live-graph"),
            snippet,
        ],
        className="shadow-sm chart-card",
    )


def charts(snapshot: dict[str, Any], api_base: str) -> dbc.Row:
    cols = [dbc.Col(chart_card(chart, snapshot[chart.snapshot_key], api_base), lg=6, className="mb-3") for chart in PANELS]
    volume = chart_card(PREDICTION_VOLUME, snapshot[PREDICTION_VOLUME.snapshot_key], api_base)
    return dbc.Row([*cols, dbc.Col(volume, lg=12, className="mb-3")])
