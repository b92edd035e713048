"""Routing: overview at the root, ``datasets``, ``pipelines``, ``training``, ``models``, and ``embed/<chart>``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from dash import Dash, Input, Output

from components import ids
from components.access import access_page
from components.datasets import datasets_page
from components.models import models_page
from components.pipelines import pipelines_page
from components.shell import embed, overview
from components.training import training_page
from security import current_principal, scope
from services.runtime import Runtime

SHARE_PATH = re.compile(r"^share/[^/]+/")
JOBS_SHOWN = 50  # newest jobs shown, plus every active one (the "Active trainings" KPI counts them all)


def _jobs(runtime: Runtime) -> list[dict]:
    jobs = {j["id"]: j for j in runtime.training.list_jobs(limit=JOBS_SHOWN)}
    for status in ("running", "queued"):
        jobs.update({j["id"]: j for j in runtime.training.list_jobs(limit=500, status=status)})
    return list(jobs.values())


def register(app: Dash, runtime: Runtime, api_base: str) -> None:
    @app.callback(
        Output(ids.PAGE, "children"),
        Output(ids.NAVBAR, "style"),
        Input(ids.URL, "pathname"),
        Input(ids.URL, "search"),
    )
    def route(pathname: str | None, search: str | None):
        path = app.strip_relative_path(pathname or "/") or ""
        path = SHARE_PATH.sub("", path)  # a share link's page (the edge let it ask for its own chart only)
        snapshot = scope.snapshot(runtime.state.snapshot())
        if path.startswith("embed/"):
            theme = parse_qs((search or "").lstrip("?")).get("theme", ["light"])[0]
            return embed(path.removeprefix("embed/"), snapshot, theme), {"display": "none"}
        if path == "datasets":
            return datasets_page(runtime.datasets.list()), {}
        if path == "pipelines":
            return pipelines_page(runtime.pipelines.list(), runtime.datasets.list()), {}
        if path == "training":
            return training_page(_jobs(runtime)), {}
        if path == "models":
            return models_page(runtime.registry.list_models()), {}
        if path == "access":
            me = current_principal()
            admin = me.can("admin")
            return access_page(me.describe(), runtime.accounts.list_tokens(me), runtime.accounts.list_users() if admin else None), {}
        ml = {
            "jobs": _jobs(runtime),
            "models": runtime.registry.list_models(),
            "rates": runtime.serving.rates(),
        }
        return overview(snapshot, api_base, runtime.activity.list(limit=20), ml), {}
