"""Data and ML pages: form actions (server); tables, feed and ML KPIs (clientside, from stores).

The clientside functions live in ``assets/mlops_live_data.js`` (datasets, pipelines, activity) and
``assets/mlops_live_ml.js`` (jobs, models, the overview's ML KPIs).
"""

from __future__ import annotations

import json
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, html, no_update

from components import ids
from components.datasets import profile_view
from services.errors import DomainError
from services.runtime import Runtime


def _feedback(error: DomainError) -> dbc.Alert:
    details = error.details if isinstance(error.details, dict) else {}
    items = [html.Li(f"{field}: {message}") for field, message in details.items() if isinstance(message, str)]
    return dbc.Alert([html.Div(error.message if not items else "Please fix:"), html.Ul(items, className="mb-0")] if items else error.message,
                     color="danger", className="py-2 small pipeline-error")


def register(app: Dash, runtime: Runtime) -> None:
    for store, target, fn in (
        (ids.DATASETS_STORE, ids.DATASETS_TABLE, "renderDatasets"),
        (ids.PIPELINES_STORE, ids.PIPELINES_TABLE, "renderPipelines"),
        (ids.ACTIVITY_STORE, ids.ACTIVITY_LIST, "renderActivity"),
    ):
        app.clientside_callback(ClientsideFunction("mlops_data", fn), Output(target, "children"), Input(store, "data"))
    app.clientside_callback(
        ClientsideFunction("mlops_ml", "renderJobs"), Output(ids.JOBS_TABLE, "children"), Input(ids.JOBS_STORE, "data")
    )
    app.clientside_callback(
        ClientsideFunction("mlops_ml", "renderModels"),
        Output(ids.MODELS_TABLE, "children"),
        Output(ids.MODEL_ENDPOINT, "children"),
        Input(ids.MODELS_STORE, "data"),
    )
    # The overview's jobs and models join the browser's collections; the KPIs follow events from there.
    app.clientside_callback(
        ClientsideFunction("mlops_ml", "seedOverview"),
        Output(ids.KPI_TRAININGS, "children"),
        Output(ids.KPI_DEPLOYED, "children"),
        Output(ids.KPI_PREDICTIONS, "children"),
        Input(ids.ML_STORE, "data"),
    )

    @app.callback(
        Output(ids.DATASET_PROFILE, "children"),
        Input(ids.dataset_view(ALL), "n_clicks"),
        prevent_initial_call=True,
    )
    def show_profile(clicks: list[int | None]):
        if not ctx.triggered_id or not any(clicks):
            return no_update
        try:
            return profile_view(runtime.datasets.get(ctx.triggered_id["id"]))
        except DomainError as exc:
            return dbc.Alert(exc.message, color="warning")

    @app.callback(
        Output(ids.PIPELINE_TARGET, "options"),
        Output(ids.PIPELINE_FEATURES, "options"),
        Input(ids.PIPELINE_DATASET, "value"),
    )
    def dataset_columns(dataset_id: int | None):
        if dataset_id is None:
            return [], []
        try:
            columns = [c["name"] for c in runtime.datasets.get(dataset_id)["columns"]]
        except DomainError:
            return [], []
        return columns, columns

    form_fields = (ids.PIPELINE_NAME, ids.PIPELINE_DATASET, ids.PIPELINE_TARGET, ids.PIPELINE_MODEL, ids.PIPELINE_PARAMS, ids.PIPELINE_FEATURES)
    form_outputs = [ids.PIPELINE_FEEDBACK, ids.PIPELINE_EDITING, ids.PIPELINE_FORM_TITLE, ids.PIPELINE_SUBMIT, *form_fields]
    form_props = ["children", "data", "children", "children"] + ["value"] * len(form_fields)
    blank = ("", None, None, "random_forest", "{}", [])
    unchanged = (no_update,) * (len(form_outputs) - 1)

    # Submit and cancel live apart from the table's Edit / Delete buttons: the table is redrawn by the
    # live stream while a submit is in flight, and Dash drops the result of a callback re-triggered
    # meanwhile, so one callback for all four would lose the submit's answer.
    @app.callback(
        *[Output(i, p) for i, p in zip(form_outputs, form_props)],
        Input(ids.PIPELINE_SUBMIT, "n_clicks"),
        Input(ids.PIPELINE_CANCEL, "n_clicks"),
        State(ids.PIPELINE_EDITING, "data"),
        *[State(field, "value") for field in form_fields],
        prevent_initial_call=True,
    )
    def submit_pipeline(_submit, _cancel, editing, name, dataset_id, target, model, params, features):
        if ctx.triggered_id == ids.PIPELINE_CANCEL:
            return (None, None, "New pipeline", "Create pipeline", *blank)
        try:
            parsed = json.loads(params or "{}")
        except ValueError as exc:
            return (_feedback(DomainError(f"Parameters are not valid JSON: {exc}", details={"params": "not valid JSON"})), *unchanged)
        body: dict[str, Any] = {"name": name or "", "dataset_id": dataset_id, "target": target, "model": model,
                                "params": parsed, "features": features or None}
        try:
            if editing is None:
                message = f"Pipeline {runtime.pipelines.create(body)['name']} created."
            else:
                message = f"Pipeline {runtime.pipelines.update(editing, body)['name']} saved."
        except DomainError as exc:
            return (_feedback(exc), *unchanged)
        done = dbc.Alert(message, color="success", className="py-2 small", duration=4000)
        return (done, None, "New pipeline", "Create pipeline", *blank)

    @app.callback(
        *[Output(i, p, allow_duplicate=True) for i, p in zip(form_outputs, form_props)],
        Input(ids.pipeline_edit(ALL), "n_clicks"),
        prevent_initial_call=True,
    )
    def edit_pipeline(_clicks):
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            return (no_update, *unchanged)
        try:
            p = runtime.pipelines.get(ctx.triggered_id["id"])
        except DomainError as exc:
            return (_feedback(exc), *unchanged)
        return (None, p["id"], f"Edit pipeline {p['name']}", "Save changes", p["name"], p["dataset_id"], p["target"],
                p["model"], json.dumps(p["params"]), p["features"] or [])

    def delete(pipeline_id: int):
        try:
            runtime.pipelines.delete(pipeline_id)
        except DomainError as exc:
            return _feedback(exc)
        return dbc.Alert("Pipeline deleted.", color="secondary", className="py-2 small", duration=4000)

    # A pipeline whose model serves predictions is deleted only once the user confirms: its endpoint
    # stops answering with it.
    @app.callback(
        Output(ids.PIPELINE_FEEDBACK, "children", allow_duplicate=True),
        Output(ids.PIPELINE_CONFIRM, "displayed"),
        Output(ids.PIPELINE_CONFIRM, "message"),
        Output(ids.PIPELINE_PENDING_DELETE, "data"),
        Input(ids.pipeline_delete(ALL), "n_clicks"),
        prevent_initial_call=True,
    )
    def delete_pipeline(_clicks):
        if not ctx.triggered_id or not ctx.triggered[0]["value"]:
            return no_update, no_update, no_update, no_update
        pipeline_id = ctx.triggered_id["id"]
        deployed = [m for m in runtime.registry.list_models(pipeline_id) if m["status"] == "deployed"]
        if deployed:
            name = deployed[0].get("pipeline_name") or f"#{pipeline_id}"
            message = (f"Pipeline {name} serves predictions with its deployed version {deployed[0]['version']}. "
                       "Deleting it removes its models and its endpoint stops answering. Delete it?")
            return no_update, True, message, pipeline_id
        return delete(pipeline_id), False, no_update, None

    @app.callback(
        Output(ids.PIPELINE_FEEDBACK, "children", allow_duplicate=True),
        Output(ids.PIPELINE_PENDING_DELETE, "data", allow_duplicate=True),
        Input(ids.PIPELINE_CONFIRM, "submit_n_clicks"),
        State(ids.PIPELINE_PENDING_DELETE, "data"),
        prevent_initial_call=True,
    )
    def confirm_delete(_submitted, pipeline_id):
        if pipeline_id is None:
            return no_update, no_update
        return delete(pipeline_id), None
