"""The model registry: numbered versions per pipeline, their artifacts and metrics, and deployment.

A model's life: ``training`` -> ``ready`` -> ``deploying`` -> ``deployed`` -> ``retired`` (or ``failed``
when its training does not succeed). Every transition publishes ``model_status``; a deployment also
publishes ``model_deployed``. One version per pipeline is deployed: deploying another retires the
previous one only after the new one is loaded, so the pipeline's endpoint never stops answering;
``undeploy`` retires the deployed version and the endpoint stops answering at once.

Artifacts live in ``<data dir>/models/pipeline-<id>/v<version>.joblib``. Deleting a pipeline deletes
them (``remove_artifacts``); ``sweep`` at start deletes the files no model row owns (a pipeline deleted
while the process training it was killed, or by a version that did not clean up).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from events.hub import Hub
from services.activity import ActivityFeed
from services.errors import Conflict, NotFound
from storage.db import Database
from storage.models import Model, Pipeline, utc_now

if TYPE_CHECKING:
    from services.serving import Serving

log = logging.getLogger(__name__)

# "deploying" too: a process that died while loading must not leave the version undeployable.
DEPLOYABLE = ("ready", "retired", "deployed", "deploying")
HEADLINE = ("accuracy", "r2")  # the metric a sentence about a model quotes
PIPELINE_DIR = re.compile(r"pipeline-([0-9]+)")
ARTIFACT_FILE = re.compile(r"v([0-9]+)\.joblib(\.partial)?")  # .partial: being written (ml.worker)


def model_item(model: Model, api_base: str = "/api/v1") -> dict[str, Any]:
    """The API form of a model: the row, its pipeline's name, its input columns and its endpoints."""
    item = model.to_dict()
    signature = item.pop("signature") or {}
    item.pop("artifact_path", None)
    item["pipeline_name"] = model.pipeline.name if model.pipeline is not None else None
    item["schema"] = signature.get("columns", [])
    item["classes"] = signature.get("classes")
    item["target"] = signature.get("target")
    item["dropped"] = signature.get("dropped", {})
    item["endpoint"] = f"{api_base}/models/{model.id}/predict"
    item["pipeline_endpoint"] = f"{api_base}/pipelines/{model.pipeline_id}/predict"
    return item


def remove_artifacts(paths: Iterable[str | Path | None]) -> None:
    """Delete artifacts, their half-written ``.partial`` and each pipeline folder left empty.

    Only for artifacts whose pipeline is gone: a folder removed under a training child of a live
    pipeline would make its save fail.
    """
    for path in paths:
        if not path:
            continue
        path = Path(path)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".partial").unlink(missing_ok=True)
        if PIPELINE_DIR.fullmatch(path.parent.name):
            with contextlib.suppress(OSError):  # not empty (another version's file): kept
                path.parent.rmdir()


def headline(metrics: dict[str, Any]) -> str:
    for name in HEADLINE:
        if isinstance(metrics.get(name), (int, float)):
            return f"{name} {metrics[name]:.3f}"
    return ", ".join(f"{k} {v:.3g}" for k, v in list(metrics.items())[:2] if isinstance(v, (int, float)))


class Registry:
    def __init__(self, db: Database, hub: Hub, activity: ActivityFeed, data_dir: Path, api_base: str = "/api/v1"):
        self.db = db
        self.hub = hub
        self.activity = activity
        self.models_dir = Path(data_dir) / "models"
        self.api_base = api_base
        self.serving: Serving | None = None  # set by the runtime; deploy loads the model there first
        self._deploy_lock = threading.Lock()  # one deployment at a time in this process

    # -- reading ---------------------------------------------------------------------------------

    def _get(self, session, model_id: int, *, lock: bool = False) -> Model:
        query = select(Model).where(Model.id == model_id)
        model = session.scalars(query.with_for_update() if lock else query).first()
        if model is None:
            raise NotFound(f"no model with id {model_id}", code="model_not_found")
        return model

    def list_models(self, pipeline_id: int | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(Model).order_by(Model.id.desc())
        if pipeline_id is not None:
            query = query.where(Model.pipeline_id == pipeline_id)
        with self.db.session() as session:
            return [model_item(m, self.api_base) for m in session.scalars(query)]

    def get_model(self, model_id: int) -> dict[str, Any]:
        with self.db.session() as session:
            return model_item(self._get(session, model_id), self.api_base)

    def artifact_path(self, pipeline_id: int, version: int) -> Path:
        return self.models_dir / f"pipeline-{pipeline_id}" / f"v{version}.joblib"

    # -- training's side of the lifecycle ---------------------------------------------------------

    def begin(self, session, pipeline: Pipeline) -> Model:
        """A new version of ``pipeline`` in ``training``; the caller commits, then calls ``announce``."""
        latest = session.scalar(select(func.max(Model.version)).where(Model.pipeline_id == pipeline.id)) or 0
        model = Model(pipeline_id=pipeline.id, version=latest + 1, status="training", metrics={})
        model.artifact_path = str(self.artifact_path(pipeline.id, model.version))
        session.add(model)
        session.flush()
        return model

    def announce(self, model: dict[str, Any] | Model, previous: str | None, message: str | None = None) -> None:
        item = model if isinstance(model, dict) else model.to_dict()
        self.hub.announce(
            "model_status",
            {
                "model_id": item["id"],
                "pipeline_id": item["pipeline_id"],
                "version": item["version"],
                "status": item["status"],
                "previous": previous,
                "message": message,
            },
        )

    def complete(self, session, model_id: int, *, metrics: dict[str, Any], signature: dict[str, Any], task: str) -> dict[str, Any]:
        """``training`` -> ``ready`` in the caller's transaction (with its job); announce after the commit."""
        model = self._get(session, model_id, lock=True)
        model.status, model.metrics, model.signature, model.task = "ready", metrics, signature, task
        session.flush()
        return model.to_dict()

    def fail(self, model_id: int, message: str) -> None:
        with self.db.session() as session:
            model = session.get(Model, model_id)
            if model is None or model.status != "training":
                return
            model.status = "failed"
            item = model.to_dict()
            path = Path(model.artifact_path) if model.artifact_path else None
        if path is not None:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".partial").unlink(missing_ok=True)
        self.announce(item, "training", message)

    def sweep(self) -> int:
        """Delete artifact files that no model row owns; returns how many. Safe beside running training.

        The files are listed before the rows are read, and a version's row is committed before its
        training starts writing, so a file seen here whose row is missing has no owner. A ``.partial``
        belongs to a version still in ``training``; an empty folder is removed only when its pipeline
        is gone (a training child may be about to write into it).
        """
        if not self.models_dir.is_dir():
            return 0
        found: list[tuple[int, int, bool, Path]] = []
        folders: dict[int, Path] = {}
        for folder in self.models_dir.iterdir():
            match = PIPELINE_DIR.fullmatch(folder.name)
            if match is None or not folder.is_dir():
                continue  # not ours: left alone
            folders[int(match[1])] = folder
            for file in folder.iterdir():
                name = ARTIFACT_FILE.fullmatch(file.name)
                if name is not None and file.is_file():
                    found.append((int(match[1]), int(name[1]), name[2] is not None, file))
        with self.db.session() as session:
            rows = session.execute(select(Model.pipeline_id, Model.version, Model.status))
            versions = {(pipeline_id, version): status for pipeline_id, version, status in rows}
            pipelines = set(session.scalars(select(Pipeline.id)))
        removed = 0
        for pipeline_id, version, partial, file in found:
            status = versions.get((pipeline_id, version))
            if status is None or (partial and status != "training"):
                file.unlink(missing_ok=True)
                removed += 1
        for pipeline_id, folder in folders.items():
            if pipeline_id not in pipelines:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        if removed:
            log.info("deleted %d model artifact files that no model version owns (in %s)", removed, self.models_dir)
        return removed

    # -- deployment -------------------------------------------------------------------------------

    def deploy(self, model_id: int) -> dict[str, Any]:
        """Load the model for serving, then make it the pipeline's deployed version and retire the last one."""
        with self._deploy_lock:
            with self.db.session() as session:
                model = self._get(session, model_id, lock=True)
                if model.status == "deployed":
                    return model_item(model, self.api_base)
                if model.status not in DEPLOYABLE:
                    raise Conflict(
                        f"model {model_id} is {model.status}; only a ready or retired model can be deployed",
                        code="not_deployable",
                        details={"status": model.status},
                    )
                before = model.status
                model.status = "deploying"
                item = model.to_dict()
            self.announce(item, before)
            try:
                assert self.serving is not None
                self.serving.load(model_id)  # the new version answers before the old one is retired
            except Exception as exc:
                with self.db.session() as session:
                    model = self._get(session, model_id, lock=True)
                    model.status = before
                    item = model.to_dict()
                message = f"the model could not be loaded for serving: {exc}"
                self.announce(item, "deploying", message)
                raise Conflict(message, code="load_failed") from exc
            with self.db.session() as session:
                # Lock the pipeline row: two processes deploying versions of one pipeline take turns
                # (PostgreSQL). On SQLite the first write below takes the database's write lock, and
                # retiring is one conditional UPDATE, so no process acts on a stale read.
                session.scalars(select(Pipeline).where(Pipeline.id == item["pipeline_id"]).with_for_update()).first()
                retired_ids = session.scalars(
                    update(Model)
                    .where(Model.pipeline_id == item["pipeline_id"], Model.status == "deployed", Model.id != model_id)
                    .values(status="retired", updated_at=utc_now())
                    .returning(Model.id),
                    execution_options={"synchronize_session": False},
                ).all()
                model = self._get(session, model_id, lock=True)
                model.status, model.deployed_at = "deployed", utc_now()
                session.flush()
                result = model_item(model, self.api_base)
                retired_items = [session.get(Model, rid).to_dict() for rid in retired_ids]
                pipeline_name = model.pipeline.name
            for old in retired_items:
                self.announce(old, "deployed", f"replaced by version {result['version']}")
            self.announce(result, "deploying", "serving predictions")
            self.hub.announce(
                "model_deployed",
                {
                    "model_id": model_id,
                    "pipeline_id": result["pipeline_id"],
                    "version": result["version"],
                    "previous_model_id": retired_items[0]["id"] if retired_items else None,
                    "endpoint": result["pipeline_endpoint"],
                },
            )
            self.activity.record(
                f"Model {pipeline_name} v{result['version']} deployed"
                + (f", replacing v{retired_items[0]['version']}." if retired_items else "."),
                category="model", level="success", subject_type="model", subject_id=model_id,
                source_type="model_deployed",
            )
            return result

    def undeploy(self, model_id: int) -> dict[str, Any]:
        """``deployed`` -> ``retired``: the pipeline's endpoint answers ``not_deployed`` from the next request on."""
        with self._deploy_lock:
            with self.db.session() as session:
                model = self._get(session, model_id, lock=True)
                if model.status != "deployed":
                    raise Conflict(f"model {model_id} is {model.status}, not deployed", code="not_deployed",
                                   details={"status": model.status})
                model.status = "retired"
                session.flush()
                result = model_item(model, self.api_base)
                pipeline_name = model.pipeline.name
            self.announce(result, "deployed", "no longer serving the pipeline's endpoint")
            self.activity.record(
                f"Model {pipeline_name} v{result['version']} undeployed: the pipeline's endpoint no longer answers.",
                category="model", level="warning", subject_type="model", subject_id=model_id,
                source_type="model_status",
            )
            return result
