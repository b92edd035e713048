"""Datasets: streamed CSV uploads with progress, parsed and profiled in chunks, versioned by name.

An upload is atomic: the file is written to ``<data_dir>/tmp`` while it arrives (never whole in
memory), parsed and profiled chunk by chunk while the request waits for its answer (at most two parses
at once per process, whatever the number of uploads), then moved beside its database row in one step. A rejected, failed or aborted
upload leaves neither a row nor a file, and says why in an ``upload_error`` event. Once the row is
committed the upload has succeeded: its events and activity are news of a stored change, and nothing
that goes wrong while telling it (an unreachable log, a payload too big) turns the answer into an error.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from events.catalogue import MAX_PAYLOAD_BYTES, PAYLOADS, InvalidEvent, event_type, validate
from events.hub import Hub
from events.serialize import dumps, to_jsonable
from services import ingest
from services.activity import ActivityFeed
from services.errors import Conflict, DomainError, Invalid, NotFound
from services.validation import check_fields, name_problem
from storage.db import Database
from storage.errors import is_unreachable
from storage.models import Dataset, DatasetVersion, Pipeline

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1  # at most ~10 upload_progress events per second per upload
MAX_FILENAME = 255  # characters, what DatasetVersion.filename holds
# Room left under the catalogue's limit for what is added at publish (the actor's name, defaults).
EVENT_BUDGET = MAX_PAYLOAD_BYTES - 1024
# Files the startup sweep leaves alone although no row owns them yet: an upload in another process
# moves its file beside the row just before committing it.
SWEEP_GRACE_S = 3600
_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
_VERSION_FILE = re.compile(r"v\d+\.csv")


def summarised(kind: str, data: dict[str, Any], field: str, budget: int = EVENT_BUDGET) -> dict[str, Any]:
    """``data`` as the payload of a ``kind`` event, its ``field`` list cut short if the whole would not fit.

    A wide dataset's columns (or a pipeline's features) can pass the catalogue's MAX_PAYLOAD_BYTES;
    the event then carries the first ones, plus ``<field>_total`` and ``<field>_truncated`` where the
    event's schema has them. The REST API always answers with the whole list. Sizes are measured on
    the payload as the catalogue validates it, which is what the log stores.
    """
    items = data.get(field)
    if not isinstance(items, list) or _fits(kind, data, budget):
        return data
    schema = PAYLOADS[event_type(kind)].model_fields
    extra = {name: value for name, value in ((f"{field}_total", len(items)), (f"{field}_truncated", True))
             if name in schema}
    low, high = 0, len(items) - 1  # the most items that fit lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(kind, {**data, field: items[:middle], **extra}, budget):
            low = middle
        else:
            high = middle - 1
    return {**data, field: items[:low], **extra}


def _fits(kind: str, data: dict[str, Any], budget: int) -> bool:
    try:
        _kind, payload = validate(kind, data)
    except InvalidEvent:
        return False
    return len(dumps(payload).encode()) <= budget


def after_commit(what: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Tell others about a change already committed; a failure here is logged, never raised (the change stands)."""
    try:
        action(*args, **kwargs)
    except Exception:
        log.exception("%s failed after the change was stored", what)


def clean_filename(filename: str | None) -> str:
    """The client's file name as shown and stored: its last part, printable, at most MAX_FILENAME characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in _UNPRINTABLE).strip()
    if len(name) > MAX_FILENAME:
        stem, dot, suffix = name.rpartition(".")
        name = stem[: MAX_FILENAME - len(suffix) - 1] + "." + suffix if dot and len(suffix) <= 16 else name[:MAX_FILENAME]
    return name or "upload.csv"


def dataset_item(dataset: Dataset, with_profile: bool = False) -> dict[str, Any]:
    """The API and event form of a dataset: the row plus its current version's file facts."""
    version = dataset.versions[-1]
    item = {
        "id": dataset.id,
        "name": dataset.name,
        "version": version.version,
        "filename": version.filename,
        "size_bytes": version.size_bytes,
        "rows": version.rows,
        "columns": version.columns,
        "created_at": dataset.to_dict()["created_at"],
        "updated_at": dataset.to_dict()["updated_at"],
    }
    if with_profile:
        item["profile"] = version.profile
        item["versions"] = [
            {"version": v.version, "filename": v.filename, "rows": v.rows, "size_bytes": v.size_bytes,
             "created_at": v.to_dict()["created_at"]}
            for v in dataset.versions
        ]
    return item


class Upload:
    """One upload in flight: its temp file and its throttled ``upload_progress`` events."""

    def __init__(self, hub: Hub, tmp_dir: Path, upload_id: str | None, total_bytes: int | None):
        self.hub = hub
        self.tmp_dir = tmp_dir
        self.id = upload_id or uuid.uuid4().hex
        self.total_bytes = total_bytes
        self.filename = ""
        self.path: Path | None = None
        self._handles: list = []  # every file opened for this upload: closed on discard, or the space stays taken
        self.received = 0
        self.extra_parts = 0
        self._last_sent = 0.0

    def open_file(self, filename: str | None):
        """Stream factory for the multipart parser: the file part goes straight to disk, counted."""
        if self.path is not None:  # a second file part: kept out of the way, rejected by the endpoint
            self.extra_parts += 1
            extra = tempfile.TemporaryFile(dir=self.tmp_dir)
            self._handles.append(extra)
            return extra
        self.filename = clean_filename(filename)
        handle = tempfile.NamedTemporaryFile(dir=self.tmp_dir, prefix="upload-", suffix=".part", delete=False)
        self._handles.append(handle)
        self.path = Path(handle.name)
        return _CountingFile(handle, self)

    def progress(self, stage: str, *, rows: int | None = None, done: int | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_sent < PROGRESS_INTERVAL_S:
            return
        self._last_sent = now
        try:
            self._publish_progress(stage, rows, done)
        except Exception:  # progress is a courtesy: an unreachable event log must not fail the upload
            log.warning("upload %s: progress not published", self.id, exc_info=True)

    def _publish_progress(self, stage: str, rows: int | None, done: int | None) -> None:
        if stage == "receiving":
            total = self.total_bytes
            fraction = min(1.0, self.received / total) if total else None
        else:
            size = self.path.stat().st_size if self.path and self.path.exists() else 0
            fraction = min(1.0, (done or 0) / size) if size else None
        self.hub.publish(
            "upload_progress",
            {
                "upload_id": self.id,
                "filename": self.filename or "upload.csv",
                "stage": stage,
                "bytes_received": self.received,
                "bytes_total": self.total_bytes,
                "rows_parsed": rows,
                "fraction": fraction,
            },
        )

    def discard(self) -> None:
        # Close before unlinking: a deleted file still open keeps its blocks, so a full disk would stay full
        # (the handle lives on in the failed request's traceback until a garbage collection).
        for handle in self._handles:
            try:
                handle.close()
            except OSError:
                pass
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _CountingFile:
    """A writable temp file that reports bytes as the multipart parser writes them."""

    def __init__(self, handle, upload: Upload):
        self._handle = handle
        self._upload = upload

    def write(self, data: bytes) -> int:
        written = self._handle.write(data)
        self._upload.received += len(data)
        self._upload.progress("receiving")
        return written

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


class Datasets:
    def __init__(self, db: Database, hub: Hub, activity: ActivityFeed, data_dir: Path, max_upload_bytes: int):
        self.db = db
        self.hub = hub
        self.activity = activity
        self.root = data_dir / "datasets"
        self.tmp_dir = data_dir / "tmp"
        self.max_upload_bytes = max_upload_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        # Parsing is CPU and memory heavy: at most two at once, the other uploads' requests wait their turn.
        self._parsing = threading.BoundedSemaphore(2)
        self._lock = threading.Lock()
        try:
            self.sweep()
        except Exception:  # a sweep is housekeeping: the dashboard starts without it
            log.warning("the sweep of orphaned dataset files failed", exc_info=True)

    def sweep(self, grace_s: float = SWEEP_GRACE_S) -> list[Path]:
        """Remove dataset files no row owns (left by a crash, or a delete whose files were busy).

        Also upload temp files left by a crash mid-upload. Only names this module writes are touched
        (``<id>/v<n>.csv``, ``upload-*.part``); files younger than ``grace_s`` stay, as another process
        may be storing them right now. Returns what was removed.
        """
        cutoff = time.time() - grace_s
        removed: list[Path] = []

        def remove(path: Path, old: bool = False) -> None:
            try:
                if old or path.stat().st_mtime < cutoff:
                    path.rmdir() if path.is_dir() else path.unlink()
                    removed.append(path)
            except OSError:  # gone already, or a directory someone just filled
                pass

        for stale in self.tmp_dir.glob("upload-*.part"):
            remove(stale)
        with self._lock, self.db.session() as session:
            # By directory and file name, not the stored absolute path: a data dir moved elsewhere keeps its files.
            owned = {(Path(p).parent.name, Path(p).name) for p in session.scalars(select(DatasetVersion.path))}
            owned_dirs = {directory for directory, _ in owned}
            for directory in self.root.iterdir():
                if not (directory.name.isdigit() and directory.is_dir()):
                    continue  # not ours: left alone
                old = directory.stat().st_mtime < cutoff  # before removing files in it renews its time
                for path in directory.iterdir():
                    if _VERSION_FILE.fullmatch(path.name) and path.is_file() and (directory.name, path.name) not in owned:
                        remove(path)
                if directory.name not in owned_dirs:
                    remove(directory, old)
        for path in removed:
            log.info("removed %s: no dataset version owns it", path)
        return removed

    # -- queries -----------------------------------------------------------------------------------
    def _get(self, session, dataset_id: int) -> Dataset:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise NotFound(f"no dataset with id {dataset_id}", code="dataset_not_found")
        return dataset

    def list(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return [dataset_item(d) for d in session.scalars(select(Dataset).order_by(Dataset.id))]

    def get(self, dataset_id: int) -> dict[str, Any]:
        with self.db.session() as session:
            return dataset_item(self._get(session, dataset_id), with_profile=True)

    # -- upload ------------------------------------------------------------------------------------
    def start_upload(self, upload_id: str | None, total_bytes: int | None) -> Upload:
        return Upload(self.hub, self.tmp_dir, upload_id, total_bytes)

    def fail_upload(self, upload: Upload, error: DomainError) -> None:
        """Remove what the upload wrote and say why, to the uploader and every open page."""
        upload.discard()
        try:
            self.hub.publish(
                "upload_error",
                {"upload_id": upload.id, "filename": upload.filename or "upload.csv", "error": error.message, "code": error.code},
            )
            self.activity.record(
                f"Upload of {upload.filename or 'a file'} failed: {error.message}",
                category="dataset", level="error", source_type="upload_error",
            )
        except Exception:  # the client still gets the HTTP error; a broken feed must not hide it
            log.exception("could not publish the upload error")

    def finish_upload(self, upload: Upload, name: str | None) -> tuple[dict[str, Any], bool]:
        """Parse, profile and store the received file; returns the dataset and whether it is new."""
        try:
            if upload.path is None:
                raise Invalid("send the CSV in a multipart field named 'file'", code="file_required", status=400)
            upload.progress("receiving", force=True)
            name = (name or Path(upload.filename).stem).strip()
            if (problem := name_problem(name)) is not None:
                raise Invalid(f"the dataset name is not usable: {problem}", details={"name": problem})
            with self._parsing:
                profile = self._parse(upload)
            item, created = self._store(upload, name, profile)
        except ingest.IngestError as exc:
            error = DomainError(str(exc), code=exc.code, status=exc.status, details=exc.details)
            self.fail_upload(upload, error)
            raise error from None
        except DomainError as exc:
            self.fail_upload(upload, exc)
            raise
        except Exception as exc:
            # The details (a driver's message, SQL, paths) go to the log; the client gets a sentence.
            log.exception("upload %s failed", upload.id)
            if is_unreachable(exc):
                error = DomainError("the database cannot be reached right now; upload again in a few seconds",
                                    code="storage_unavailable", status=503)
            elif isinstance(exc, OSError):
                error = DomainError(f"the upload could not be written to disk: {exc.strerror or 'I/O error'}",
                                    code="storage_error", status=507)
            else:
                error = DomainError("the upload could not be stored; the error is logged", code="upload_failed", status=500)
            self.fail_upload(upload, error)
            raise error from exc
        kind = "dataset_created" if created else "dataset_updated"
        after_commit(kind, self.hub.announce, kind, summarised(kind, item, "columns"))
        after_commit(
            "upload_complete", self.hub.announce, "upload_complete",
            {"upload_id": upload.id, "dataset_id": item["id"], "filename": item["filename"], "name": item["name"],
             "rows": item["rows"], "columns": len(item["columns"])},
        )
        verb = "uploaded" if created else f"updated to version {item['version']}"
        after_commit(
            "activity", self.activity.record,
            f"Dataset {item['name']} {verb}: {item['rows']:,} rows, {len(item['columns'])} columns.",
            category="dataset", level="success", subject_type="dataset", subject_id=item["id"], source_type=kind,
        )
        return item, created

    def _parse(self, upload: Upload):
        dialect = ingest.sniff(upload.path)
        upload.progress("parsing", rows=0, done=0, force=True)
        profile = ingest.parse_and_profile(
            upload.path, dialect, progress=lambda rows, done: upload.progress("parsing", rows=rows, done=done)
        )
        upload.progress("parsing", rows=profile.rows, done=upload.path.stat().st_size, force=True)
        return profile

    def _store(self, upload: Upload, name: str, profile) -> tuple[dict[str, Any], bool]:
        try:
            with self._lock, self.db.session() as session:
                # FOR UPDATE: concurrent uploads of one name from other workers take turns (PostgreSQL;
                # SQLite serialises writers anyway). The unique (dataset, version) key is the backstop.
                query = select(Dataset).where(Dataset.name == name).with_for_update()
                dataset = session.scalars(query).first()
                created = dataset is None
                if created:
                    dataset = Dataset(name=name, current_version=1)
                    session.add(dataset)
                    session.flush()
                    number = 1
                else:
                    number = dataset.current_version + 1
                    dataset.current_version = number
                directory = self.root / str(dataset.id)
                directory.mkdir(parents=True, exist_ok=True)
                final = directory / f"v{number}.csv"
                version = DatasetVersion(
                    dataset=dataset, version=number, filename=upload.filename, path=str(final),
                    size_bytes=upload.path.stat().st_size, rows=profile.rows, columns=profile.columns,
                    profile=profile.profile,
                    dialect=to_jsonable(dataclasses.asdict(profile.dialect)),
                )
                session.add(version)
                session.flush()
                os.replace(upload.path, final)  # same volume: atomic, and no copy of a large file
                upload.path = final  # if the commit fails, fail_upload removes this file (ours), nothing else
                session.refresh(dataset)
                item = dataset_item(dataset)
            return item, created
        except IntegrityError:
            raise Conflict(f"another upload of {name!r} finished at the same moment; retry", code="version_conflict") from None

    # -- changes -----------------------------------------------------------------------------------
    def rename(self, dataset_id: int, body: Any) -> dict[str, Any]:
        changes = check_fields(body, {"name"}, {"name"})
        name = changes["name"]
        if (problem := name_problem(name)) is not None:
            raise Invalid(f"the dataset name is not usable: {problem}", details={"name": problem})
        try:
            with self.db.session() as session:
                dataset = self._get(session, dataset_id)
                old = dataset.name
                dataset.name = name.strip()
                session.flush()
                item = dataset_item(dataset)
        except IntegrityError:
            raise Conflict(f"a dataset named {name!r} already exists", code="name_taken") from None
        after_commit("dataset_updated", self.hub.announce, "dataset_updated", summarised("dataset_updated", item, "columns"))
        after_commit(
            "activity", self.activity.record,
            f"Dataset {old} renamed to {item['name']}.", category="dataset", subject_type="dataset",
            subject_id=dataset_id, source_type="dataset_updated",
        )
        return item

    def delete(self, dataset_id: int) -> None:
        # Under the store lock: SQLite may give the freed id to the next new dataset, whose files
        # must not be swept away with these. The files go once the delete is committed: a failed
        # commit keeps a row that still has its files, and files a crash leaves behind are swept.
        with self._lock:
            with self.db.session() as session:
                dataset = self._get(session, dataset_id)
                users = list(session.scalars(select(Pipeline.id).where(Pipeline.dataset_id == dataset_id)))
                if users:
                    raise Conflict(
                        f"dataset {dataset.name} is used by pipeline(s) {', '.join(map(str, users))}; delete those first",
                        code="dataset_in_use", details={"pipelines": users},
                    )
                name = dataset.name
                session.delete(dataset)
            shutil.rmtree(self.root / str(dataset_id), ignore_errors=True)
        after_commit(
            "activity", self.activity.record,
            f"Dataset {name} deleted.", category="dataset", level="warning", subject_type="dataset", subject_id=dataset_id,
            source_type="dataset_deleted",  # no event type of its own: pages drop the row on this activity
        )
