"""Training jobs: a queue, worker processes with a concurrency limit, cancel, and no job left "running".

``submit`` stores a queued job and hands it to a pool of ``MLOPS_TRAINING_WORKERS`` supervisor
threads. Each supervisor starts one child process (``ml.worker.run_job``; never the web server's
request or WebSocket threads), reads its progress from a pipe and publishes ``training_progress`` at
most every 0.1 s, then ``training_complete`` or ``training_error``. A child that dies without a word
(killed, crashed, out of memory) becomes a ``training_error`` that says so, and one that sends nothing
(no stage, no step) for ``stall_s`` (``MLOPS_TRAINING_STALL_S``) is killed and fails as ``stalled``: a
step that never ends (``n_estimators`` in the billions) must not hold a worker slot and grow forever.
Training processes die with the server process, even on ``kill -9`` (``ml.worker.die_with_parent``).

Every job row names the process that owns it (``worker`` = ``host:pid``) and when that process last
said it was alive (``heartbeat_at``). On start, and every few seconds after, each process fails the
running jobs of owners that are gone (a dead pid on this host, or a heartbeat older than
``STALE_AFTER_S``) and adopts their queued jobs: a restart never leaves a job "running" forever.

External runs (``Run`` in ``client/run.py``) are jobs with ``external`` set, fed by ``/api/v1/runs``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import math
import multiprocessing
import os
import re
import secrets
import signal
import socket
import threading
import time
from typing import Any

from sqlalchemy import func, select, update

from events.hub import Hub
from services.activity import ActivityFeed
from services.errors import Conflict, DomainError, Invalid, NotFound
from services.validation import check_fields, name_problem
from services.registry import Registry, headline, remove_artifacts
from storage.db import Database
from storage.models import Pipeline, TrainingJob, new_job_id, utc_now

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1  # at most ~10 training_progress events per second per job
DB_INTERVAL_S = 1.0  # how often a running job's progress and heartbeat are written
HEARTBEAT_S = 5.0
STALE_AFTER_S = 30.0  # a job whose owner has not said it is alive for this long is the owner's no more
EXTERNAL_STALE_AFTER_S = 3600.0  # an external run silent this long is failed
KILL_GRACE_S = 2.0
ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")
RUN_FIELDS = {"name", "total", "params"}
MAX_LOG_ENTRIES = 1000
HISTORY_SCAN = 1_000_000  # "every event the log still keeps" (it keeps MLOPS_HISTORY at most)
MAX_STEP = 2**31 - 1  # the columns are 32-bit integers
MAX_PARAMS, MAX_PARAM_TEXT = 50, 200
MAX_ERROR_TEXT = 4000
# PostgreSQL text cannot hold NUL, and no database driver can encode half a surrogate pair ("\ud800").
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def job_item(job: TrainingJob) -> dict[str, Any]:
    item = job.to_dict()
    item.pop("heartbeat_at", None)
    return item


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        why = " (the system kills processes this way when memory runs out)" if exitcode == -signal.SIGKILL else ""
        return f"the training process was killed by {name}{why}"
    return f"the training process exited with code {exitcode} without a result"


class _Job:
    """What a supervisor knows about the job it runs."""

    def __init__(self, job_id: str, pipeline_id: int, name: str, model_id: int | None = None):
        self.id = job_id
        self.pipeline_id = pipeline_id
        self.name = name
        self.model_id = model_id
        self.artifact_path: str | None = None
        self.cancel = threading.Event()
        self.process: Any = None


class Training:
    def __init__(
        self,
        db: Database,
        hub: Hub,
        activity: ActivityFeed,
        registry: Registry,
        *,
        workers: int = 2,
        queue_limit: int = 100,
        data_dir: Any = None,
        stall_s: float = 900.0,
    ):
        self.db = db
        self.hub = hub
        self.activity = activity
        self.registry = registry
        self.workers = workers
        self.queue_limit = queue_limit
        self.stall_s = stall_s  # a training process silent this long is killed (MLOPS_TRAINING_STALL_S)
        # host:pid:nonce: the nonce tells this process from an earlier one that had the same pid
        # (PID 1 in a container, a recycled gunicorn worker pid).
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["ml.worker"])
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._jobs: dict[str, _Job] = {}  # queued or running in this process
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None
        self._run_published: dict[str, float] = {}

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="training")
        try:
            self.registry.sweep()  # files of versions deleted while their process was down
        except OSError:
            log.exception("could not sweep model artifacts no version owns (retried at the next start)")
        self.recover()
        self._heart = threading.Thread(target=self._heartbeat_loop, name="training-heartbeat", daemon=True)
        self._heart.start()

    def stop(self) -> None:
        """Kill running training processes and fail their jobs; queued jobs wait for the next start."""
        self._stop.set()  # supervisors see it within 0.1 s and stop their processes
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._heart is not None:
            self._heart.join(timeout=HEARTBEAT_S + 1)
        with self._lock:
            self._jobs.clear()  # queued ones never started: the next start() (or another process) adopts them

    # -- reading ----------------------------------------------------------------------------------

    def list_jobs(self, limit: int = 50, pipeline_id: int | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(TrainingJob).order_by(TrainingJob.created_at.desc(), TrainingJob.id).limit(limit)
        if pipeline_id is not None:
            query = query.where(TrainingJob.pipeline_id == pipeline_id)
        if status is not None:
            query = query.where(TrainingJob.status == status)
        with self.db.session() as session:
            return [job_item(j) for j in session.scalars(query)]

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            return job_item(self._get(session, job_id))

    def progress_history(self, job_id: str) -> list[dict[str, Any]]:
        """The job's ``training_progress`` with metrics, oldest first, from what the event log still keeps."""
        with self.db.session() as session:
            self._get(session, job_id)
        _epoch, _seq, events = self.hub.log.recent(HISTORY_SCAN)
        points: dict[int, dict[str, Any]] = {}  # by step: a stage change repeats the step it was at
        for e in events:
            if e.type == "training_progress" and e.data.get("job_id") == job_id and e.data.get("metrics"):
                points[e.data["step"]] = {"step": e.data["step"], "total": e.data.get("total"),
                                          "metrics": e.data["metrics"], "ts": e.ts}
        return sorted(points.values(), key=lambda p: p["step"])

    def _get(self, session, job_id: str) -> TrainingJob:
        job = session.get(TrainingJob, job_id) if isinstance(job_id, str) and len(job_id) <= 32 else None
        if job is None:
            raise NotFound(f"no job with id {job_id!r}", code="job_not_found")
        return job

    # -- submit and cancel ------------------------------------------------------------------------

    def submit(self, pipeline_id: int) -> dict[str, Any]:
        if self._pool is None or self._stop.is_set():
            raise DomainError("training is not running in this process", code="training_stopped", status=503)
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.process is None)
        if waiting >= self.queue_limit:
            raise DomainError(
                f"{waiting} training jobs are already waiting (MLOPS_TRAINING_QUEUE={self.queue_limit}); try again later",
                code="queue_full", status=429,
            )
        local = _Job(new_job_id(), pipeline_id, "")
        with self._lock:  # known here before its row exists: recover() must not take it for an orphan
            self._jobs[local.id] = local
        try:
            with self.db.session() as session:
                pipeline = session.get(Pipeline, pipeline_id)
                if pipeline is None:
                    raise NotFound(f"no pipeline with id {pipeline_id}", code="pipeline_not_found")
                job = TrainingJob(
                    id=local.id, pipeline_id=pipeline.id, name=pipeline.name, status="queued",
                    worker=self.worker_id, heartbeat_at=utc_now(),
                )
                session.add(job)
                session.flush()
                item = job_item(job)
        except BaseException:
            with self._lock:
                self._jobs.pop(local.id, None)
            raise
        local.name = item["name"]
        self._enqueue(local)
        self._progress(item["id"], pipeline_id, item["name"], 0, None, {}, None, "queued")
        self.activity.record(
            f"Training of {item['name']} queued.", category="training", subject_type="job", subject_id=item["id"],
            source_type="training_progress",
        )
        return item

    def _enqueue(self, job: _Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
        assert self._pool is not None
        self._pool.submit(self._supervise, job)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once, or stop a running one's process (whichever process runs it)."""
        with self.db.session() as session:
            job = self._get(session, job_id)
            if job.external:
                raise Conflict("an external run is finished by its script (POST /api/v1/runs/<id>/finish)", code="external_run")
            values = {"status": "cancelled", "error": "cancelled by a user", "finished_at": utc_now()}
            was = None
            for status in ACTIVE:  # queued first: a job that starts meanwhile is then cancelled as running
                if session.execute(
                    update(TrainingJob).where(TrainingJob.id == job_id, TrainingJob.status == status).values(**values)
                ).rowcount:
                    was = status
                    break
            if was is None:
                raise Conflict(f"job {job_id} already {job.status}", code="job_finished", details={"status": job.status})
            session.expire(job)
            item = job_item(job)
        with self._lock:
            local = self._jobs.get(job_id)
        if local is not None:
            local.cancel.set()
        if was == "queued":  # no supervisor has it yet: say so here (the one that picks it up skips it)
            self.hub.announce("training_error", {
                "job_id": job_id, "pipeline_id": item["pipeline_id"], "name": item["name"],
                "error": "cancelled by a user before it started", "code": "cancelled",
            })
            self.activity.record(f"Training of {item['name']} cancelled before it started.", category="training",
                                 level="warning", subject_type="job", subject_id=job_id, source_type="training_error")
        return item

    # -- the supervisor ---------------------------------------------------------------------------

    def _supervise(self, job: _Job) -> None:
        try:
            self._run(job)
        except Exception:
            log.exception("training job %s: supervisor failed", job.id)
            self._finish_failed(job, "internal_error", "the dashboard failed while supervising the training; see its log")
        finally:
            with self._lock:
                self._jobs.pop(job.id, None)

    def _claim(self, job: _Job) -> dict[str, Any] | None:
        """Queued -> running with a new model version in ``training``; None when it is no longer queued."""
        with self.db.session() as session:
            claimed = session.execute(
                update(TrainingJob).where(TrainingJob.id == job.id, TrainingJob.status == "queued")
                .values(status="running", started_at=utc_now(), worker=self.worker_id, heartbeat_at=utc_now())
            ).rowcount
            if not claimed:
                return None
            # Locked (PostgreSQL; SQLite's write lock is already held): two jobs of one pipeline
            # starting at once take turns numbering their versions.
            pipeline = session.scalars(select(Pipeline).where(Pipeline.id == job.pipeline_id).with_for_update()).first()
            if pipeline is None:
                return None
            version = pipeline.dataset.versions[-1]
            model = self.registry.begin(session, pipeline)
            session.execute(update(TrainingJob).where(TrainingJob.id == job.id).values(model_id=model.id))
            spec = {
                "path": version.path,
                "dialect": version.dialect,
                "target": pipeline.target,
                "features": pipeline.features,
                "kind": pipeline.model,
                "params": pipeline.params,
                "artifact_path": model.artifact_path,
            }
            model_item = model.to_dict()
        job.model_id = model_item["id"]
        job.artifact_path = spec["artifact_path"]
        self.registry.announce(model_item, None, f"training job {job.id}")
        return spec

    def _run(self, job: _Job) -> None:
        if job.cancel.is_set() or self._stop.is_set():
            return
        spec = self._claim(job)
        if spec is None:
            return
        started = time.monotonic()
        parent, child = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=_child_entry, args=(spec, child), name=f"training-{job.id[:8]}", daemon=True)
        process.start()
        child.close()
        job.process = process
        self._progress(job.id, job.pipeline_id, job.name, 0, None, {}, None, "loading")
        step, total, metrics, stage = 0, None, {}, "loading"
        training_started = None
        last_publish = last_db = 0.0
        last_news = time.monotonic()
        result: tuple | None = None
        try:
            while result is None:
                if job.cancel.is_set() or self._stop.is_set():
                    break
                now = time.monotonic()
                if now - last_news >= self.stall_s:
                    result = ("stalled",)
                    break
                if now - last_db >= DB_INTERVAL_S:
                    last_db = now
                    if not self._still_running(job, step, total, metrics):
                        break  # cancelled by another process, or the job row went with its pipeline
                try:
                    if not parent.poll(0.1):
                        if not process.is_alive() and not parent.poll(0):
                            result = ("died", process.exitcode)
                        continue
                    message = parent.recv()
                except (EOFError, OSError):  # the child closed its end without a result: it died
                    process.join(timeout=1.0)
                    result = ("died", process.exitcode)
                    continue
                last_news = time.monotonic()
                kind = message[0]
                if kind == "stage":
                    stage = message[1]
                    if stage == "training":
                        training_started = time.monotonic()
                    self._progress(job.id, job.pipeline_id, job.name, step, total, metrics, None, stage)
                elif kind == "progress":
                    _, step, total, metrics = message
                    if time.monotonic() - last_publish >= PROGRESS_INTERVAL_S or step == total:
                        last_publish = time.monotonic()
                        eta = None
                        if training_started is not None and step and total:
                            eta = (time.monotonic() - training_started) / step * (total - step)
                        self._progress(job.id, job.pipeline_id, job.name, step, total, metrics, eta, "training")
                else:
                    result = message
        finally:
            if process.is_alive():
                process.terminate()
                process.join(KILL_GRACE_S)
                if process.is_alive():
                    process.kill()
                    process.join()
            parent.close()
        duration = time.monotonic() - started
        if result is None:  # cancelled (here or elsewhere) or the server is stopping
            if not self._exists(job):
                self._pipeline_gone(job)
            elif self._stop.is_set() and not job.cancel.is_set():
                self._finish_failed(job, "server_stopped", "the server stopped while this job was training; train again")
            else:
                self._finish_cancelled(job)
        elif result[0] == "done":
            self._finish_done(job, result[1], duration)
        elif result[0] == "failed":
            self._finish_failed(job, result[1], result[2])
        elif result[0] == "stalled":
            self._finish_failed(job, "stalled", (
                f"the training made no progress for {self.stall_s:g} s (MLOPS_TRAINING_STALL_S) and was stopped: "
                "one step of this model on this data takes too long; use fewer estimators, iterations or layers, "
                "or fewer rows"
            ))
        else:
            self._finish_failed(job, "worker_died", _death(result[1]))

    def _exists(self, job: _Job) -> bool:
        with self.db.session() as session:
            return session.get(TrainingJob, job.id) is not None

    def _still_running(self, job: _Job, step: int, total: int | None, metrics: dict[str, Any]) -> bool:
        with self.db.session() as session:
            return bool(session.execute(
                update(TrainingJob).where(TrainingJob.id == job.id, TrainingJob.status == "running")
                .values(step=step, total=total, progress=(step / total) if total else 0.0,
                        metrics=_finite(metrics), heartbeat_at=utc_now())
            ).rowcount)

    def _progress(self, job_id, pipeline_id, name, step, total, metrics, eta, stage) -> None:
        fraction = min(1.0, step / total) if total else 0.0
        self.hub.announce("training_progress", {
            "job_id": job_id, "pipeline_id": pipeline_id, "name": name, "step": step, "total": total,
            "fraction": fraction, "metrics": _finite(metrics), "eta_s": None if eta is None else round(eta, 2),
            "stage": stage,
        })

    def _finish_done(self, job: _Job, result: dict[str, Any], duration: float) -> None:
        metrics = _finite(result["metrics"])
        assert job.model_id is not None
        with self.db.session() as session:  # the job and its model change together, or neither does
            done = session.execute(
                update(TrainingJob).where(TrainingJob.id == job.id, TrainingJob.status == "running")
                .values(status="succeeded", progress=1.0, step=result["steps"], total=result["steps"],
                        metrics=metrics, finished_at=utc_now())
            ).rowcount
            if done:
                model = self.registry.complete(session, job.model_id, metrics=metrics,
                                               signature=result["signature"], task=result["task"])
        if not done:  # cancelled (or its pipeline deleted) in the same instant the training finished
            self._finish_cancelled(job) if self._exists(job) else self._pipeline_gone(job)
            return
        self.registry.announce(model, "training", f"trained: {headline(metrics)}")
        self.hub.announce("training_complete", {
            "job_id": job.id, "pipeline_id": job.pipeline_id, "name": job.name, "model_id": job.model_id,
            "metrics": metrics, "duration_s": round(duration, 3),
        })
        self.activity.record(
            f"Training of {job.name} finished in {duration:.1f} s: {headline(metrics)} (model v{model['version']}).",
            category="training", level="success", subject_type="model", subject_id=job.model_id,
            source_type="training_complete",
        )

    def _pipeline_gone(self, job: _Job) -> None:
        """The job's row went with its pipeline: delete what its process wrote, and tell the live pages."""
        remove_artifacts([job.artifact_path])
        self.hub.announce("training_error", {
            "job_id": job.id, "pipeline_id": job.pipeline_id, "name": job.name,
            "error": "the pipeline was deleted while this job was training", "code": "pipeline_deleted",
        })

    def _finish_failed(self, job: _Job, code: str, message: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(TrainingJob).where(TrainingJob.id == job.id, TrainingJob.status.in_(ACTIVE))
                .values(status="failed", error=message, finished_at=utc_now())
            )
        if job.model_id is not None:
            self.registry.fail(job.model_id, message)
        self.hub.announce("training_error", {
            "job_id": job.id, "pipeline_id": job.pipeline_id, "name": job.name, "error": message, "code": code,
        })
        self.activity.record(f"Training of {job.name} failed: {message}", category="training", level="error",
                             subject_type="job", subject_id=job.id, source_type="training_error")

    def _finish_cancelled(self, job: _Job) -> None:
        with self.db.session() as session:
            session.execute(
                update(TrainingJob).where(TrainingJob.id == job.id, TrainingJob.status.in_(ACTIVE))
                .values(status="cancelled", error="cancelled by a user", finished_at=utc_now())
            )
        if job.model_id is not None:
            self.registry.fail(job.model_id, "training cancelled")
        self.hub.announce("training_error", {
            "job_id": job.id, "pipeline_id": job.pipeline_id, "name": job.name,
            "error": "cancelled by a user", "code": "cancelled",
        })
        self.activity.record(f"Training of {job.name} cancelled.", category="training", level="warning",
                             subject_type="job", subject_id=job.id, source_type="training_error")

    # -- owners that are gone ---------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with self._lock:
                    mine = [j.id for j in self._jobs.values()]
                if mine:
                    with self.db.session() as session:
                        session.execute(
                            update(TrainingJob).where(TrainingJob.id.in_(mine), TrainingJob.status.in_(ACTIVE))
                            .values(heartbeat_at=utc_now())
                        )
                self.recover()
            except Exception:
                log.exception("training heartbeat failed (retried in %.0f s)", HEARTBEAT_S)

    def _orphaned(self, job: TrainingJob, now: dt.datetime) -> bool:
        """Whether the process named by ``job.worker`` no longer looks after the job."""
        if job.external:
            return job.heartbeat_at is not None and (now - job.heartbeat_at).total_seconds() > EXTERNAL_STALE_AFTER_S
        if job.worker == self.worker_id:
            with self._lock:
                return job.id not in self._jobs  # ours, but no supervisor has it (it failed, or stop() came)
        host, pid, _nonce = (job.worker or "::").split(":", 2) if (job.worker or "").count(":") >= 2 else ("", "", "")
        if host == socket.gethostname() and pid.isdigit():
            if int(pid) == os.getpid() or not _pid_alive(int(pid)):
                return True  # an earlier process with our pid, or a process that is gone
        return job.heartbeat_at is None or (now - job.heartbeat_at).total_seconds() > STALE_AFTER_S

    def recover(self) -> None:
        """Fail the running jobs of processes that are gone and adopt their queued ones."""
        now = utc_now()
        failed: list[dict[str, Any]] = []
        adopted: list[_Job] = []
        with self.db.session() as session:
            for job in session.scalars(select(TrainingJob).where(TrainingJob.status.in_(ACTIVE))):
                if not self._orphaned(job, now):
                    continue
                if job.status == "queued" and not job.external:
                    claimed = session.execute(
                        update(TrainingJob).where(TrainingJob.id == job.id, TrainingJob.worker == job.worker,
                                                  TrainingJob.status == "queued")
                        .values(worker=self.worker_id, heartbeat_at=now)
                    ).rowcount
                    if claimed and job.pipeline_id is not None:
                        adopted.append(_Job(job.id, job.pipeline_id, job.name or ""))
                    continue
                reason = (
                    "the run stopped reporting for an hour" if job.external
                    else "the server process running this job stopped (restart or crash) before it finished; train again"
                )
                gone = session.execute(
                    update(TrainingJob).where(TrainingJob.id == job.id, TrainingJob.status == job.status,
                                              TrainingJob.worker == job.worker)
                    .values(status="failed", error=reason, finished_at=now)
                ).rowcount
                if gone:
                    failed.append({"id": job.id, "pipeline_id": job.pipeline_id, "name": job.name, "model_id": job.model_id,
                                   "reason": reason})
        for item in failed:
            if item["model_id"] is not None:
                self.registry.fail(item["model_id"], item["reason"])
            self.hub.announce("training_error", {
                "job_id": item["id"], "pipeline_id": item["pipeline_id"], "name": item["name"],
                "error": item["reason"], "code": "worker_lost",
            })
            self.activity.record(f"Training of {item['name']} failed: {item['reason']}", category="training",
                                 level="error", subject_type="job", subject_id=item["id"], source_type="training_error")
        for job in adopted:
            log.info("training job %s adopted from a stopped process", job.id)
            self._enqueue(job)

    # -- external runs ----------------------------------------------------------------------------

    def create_run(self, body: Any) -> dict[str, Any]:
        values = check_fields(body, RUN_FIELDS, {"name"})
        name, total, params = values.get("name"), values.get("total"), values.get("params")
        params = {} if params is None else params  # null is "no params"; false, 0 or "" is a mistake
        problems = {}
        if (problem := name_problem(name)) is not None:
            problems["name"] = problem
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or not 1 <= total <= MAX_STEP):
            problems["total"] = f"must be an integer from 1 to {MAX_STEP} or null"
        if (problem := _params_problem(params)) is not None:
            problems["params"] = problem
        if problems:
            raise Invalid("the run is not valid (" + "; ".join(f"{k}: {v}" for k, v in problems.items()) + ")", details=problems)
        with self.db.session() as session:
            job = TrainingJob(name=name.strip(), external=True, status="running", total=total,
                              started_at=utc_now(), heartbeat_at=utc_now())
            session.add(job)
            session.flush()
            item = job_item(job)
        self._progress(item["id"], None, item["name"], 0, total, {}, None, "running")
        shown = ", ".join(f"{k}={v}" for k, v in list(params.items())[:8])
        self.activity.record(f"External run {item['name']} started" + (f" ({shown})." if shown else "."),
                             category="training", subject_type="job", subject_id=item["id"],
                             source_type="training_progress")
        return item | {"params": params}

    def _run_row(self, session, job_id: str) -> TrainingJob:
        job = self._get(session, job_id)
        if not job.external:
            raise Conflict(f"job {job_id} is trained by the dashboard, not an external run", code="not_a_run")
        if job.status != "running":
            raise Conflict(f"run {job_id} is already {job.status}", code="run_finished", details={"status": job.status})
        return job

    def log_run(self, job_id: str, body: Any) -> dict[str, Any]:
        entries = check_fields(body, {"entries"}, {"entries"})["entries"]
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_LOG_ENTRIES:
            raise Invalid(f"entries must be a list of 1 to {MAX_LOG_ENTRIES} objects", details={"entries": "bad length"})
        last_step = -1
        for i, entry in enumerate(entries):
            _check_entry(i, entry, last_step)
            last_step = entry["step"]
        last = entries[-1]
        with self.db.session() as session:
            job = self._run_row(session, job_id)
            total = last.get("total", job.total)
            metrics = {**(job.metrics or {}), **_finite(last.get("metrics") or {})}
            job.step, job.total, job.metrics, job.heartbeat_at = last["step"], total, metrics, utc_now()
            job.progress = min(1.0, last["step"] / total) if total else 0.0
            started, name = job.started_at, job.name
        eta = None
        if total and last["step"]:
            elapsed = (utc_now() - started).total_seconds() if started else 0.0
            eta = max(0.0, elapsed / last["step"] * (total - last["step"]))
        # A batch holds the steps logged since the last one (about 0.25 s): publish a few of them, evenly
        # spaced and ending with the last, so curves get their shape while staying within ~10 events/s.
        now = time.monotonic()
        with self._lock:
            since = now - self._run_published.get(job_id, 0.0)
            self._run_published[job_id] = now
            while len(self._run_published) > 1000:
                self._run_published.pop(next(iter(self._run_published)))
        count = min(len(entries), 10, int(since / PROGRESS_INTERVAL_S))
        if count == 0:  # the last event went out less than 0.1 s ago: the row has the news
            with self._lock:
                self._run_published[job_id] -= since
            return {"accepted": len(entries)}
        picked = [entries[len(entries) - 1 - round(i * (len(entries) - 1) / max(1, count - 1))] for i in range(count)][::-1]
        for entry in picked:
            step_total = entry.get("total", total)
            self._progress(job_id, None, name, min(entry["step"], step_total) if step_total else entry["step"], step_total,
                           entry.get("metrics") or {}, eta if entry is last else None, "running")
        return {"accepted": len(entries)}

    def finish_run(self, job_id: str, body: Any) -> dict[str, Any]:
        values = check_fields(body if body is not None else {}, {"status", "error", "metrics"})
        status = values.get("status", "succeeded")
        if status not in ("succeeded", "failed"):
            raise Invalid("status must be succeeded or failed", details={"status": "succeeded or failed"})
        error = values.get("error")
        if error is not None and not isinstance(error, str):  # checked whatever the status: a wrong type is a bug
            raise Invalid("error must be a string (what went wrong) or null", details={"error": "string or null"})
        if status == "failed" and (error is None or not error.strip()):
            raise Invalid("a failed run needs an error message", details={"error": "required when status is failed"})
        metrics = values.get("metrics")
        metrics = {} if metrics is None else metrics
        if not isinstance(metrics, dict):
            raise Invalid("metrics must be an object of names to numbers", details={"metrics": "object"})
        _check_metrics("metrics", metrics)
        with self.db.session() as session:
            job = self._run_row(session, job_id)
            job.status, job.finished_at = status, utc_now()
            job.metrics = {**(job.metrics or {}), **_finite(metrics)}
            if status == "failed":
                job.error = _storable(error.strip())[:MAX_ERROR_TEXT]
            else:
                job.progress = 1.0
            item = job_item(job)
            duration = (job.finished_at - job.started_at).total_seconds() if job.started_at else 0.0
        if status == "succeeded":
            self.hub.announce("training_complete", {
                "job_id": job_id, "pipeline_id": None, "name": item["name"], "model_id": None,
                "metrics": item["metrics"], "duration_s": round(max(duration, 0.0), 3),
            })
            self.activity.record(f"External run {item['name']} finished: {headline(item['metrics']) or 'done'}.",
                                 category="training", level="success", subject_type="job", subject_id=job_id,
                                 source_type="training_complete")
        else:
            self.hub.announce("training_error", {
                "job_id": job_id, "pipeline_id": None, "name": item["name"], "error": item["error"], "code": "run_failed",
            })
            self.activity.record(f"External run {item['name']} failed: {item['error']}", category="training",
                                 level="error", subject_type="job", subject_id=job_id, source_type="training_error")
        return item

    def active_count(self) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(TrainingJob).where(TrainingJob.status.in_(ACTIVE))) or 0


def _child_entry(spec: dict[str, Any], conn: Any) -> None:
    from ml.worker import die_with_parent, run_job

    die_with_parent()
    run_job(spec, conn)


def _finite(metrics: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in (metrics or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        except OverflowError:  # an integer past float range
            number = math.inf if value > 0 else -math.inf
        out[str(key)] = number if number == number and abs(number) != float("inf") else None
    return out


def _storable(text: str) -> str:
    """``text`` with what no database can store (NUL, half a surrogate pair) replaced by U+FFFD.

    An error text is a traceback or a log excerpt the run reports as it is (newlines and all): losing
    one unreadable character beats refusing the news that the run failed.
    """
    return _UNSTORABLE.sub("\ufffd", text)


def _params_problem(params: Any) -> str | None:
    """Why ``params`` cannot be shown with a run, or None. Names are names; values are shown as they are."""
    shape = (f"must be an object of at most {MAX_PARAMS} names (64 characters) to numbers, "
             f"strings of at most {MAX_PARAM_TEXT} characters, booleans or null")
    if not isinstance(params, dict) or len(params) > MAX_PARAMS:
        return shape
    for key, value in params.items():
        if (problem := name_problem(key, 64)) is not None:
            return f"param name {key!r}: {problem}"
        if not (isinstance(value, (str, int, float, bool)) or value is None) or len(str(value)) > MAX_PARAM_TEXT:
            return f"param {key!r}: a value is a number, a boolean, null or a string of at most {MAX_PARAM_TEXT} characters"
        if isinstance(value, str) and not value.isprintable():
            bad = next(c for c in value if not c.isprintable())
            return f"param {key!r}: a value cannot contain control or invisible characters (found U+{ord(bad):04X})"
    return None


def _check_metrics(where: str, metrics: dict[str, Any]) -> None:
    for key, value in metrics.items():
        if not isinstance(key, str) or not key or len(key) > 64:
            raise Invalid(f"{where}: metric names are strings of 1 to 64 characters", details={where: key})
        if (problem := name_problem(key, 64)) is not None:  # shown in legends and activity, stored as text
            raise Invalid(f"{where}: metric name {key!r}: {problem}", details={where: problem})
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise Invalid(f"{where}.{key}: a metric is a number or null", details={f"{where}.{key}": "number or null"})
    if len(metrics) > 50:
        raise Invalid(f"{where}: at most 50 metrics", details={where: "too many"})


def _check_entry(i: int, entry: Any, last_step: int) -> None:
    where = f"entries[{i}]"
    if not isinstance(entry, dict) or set(entry) - {"step", "total", "metrics"} or "step" not in entry:
        raise Invalid(f"{where}: an entry is {{step, total?, metrics?}}", details={where: "step, total, metrics"})
    step, total = entry["step"], entry.get("total")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise Invalid(f"{where}.step: an integer from 0 to {MAX_STEP}", details={f"{where}.step": "integer >= 0"})
    if step < last_step:
        raise Invalid(f"{where}.step: steps must not go back ({step} after {last_step})", details={f"{where}.step": "non-decreasing"})
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or not 1 <= total <= MAX_STEP):
        raise Invalid(f"{where}.total: an integer from 1 to {MAX_STEP}", details={f"{where}.total": "integer >= 1"})
    metrics = entry.get("metrics")
    metrics = {} if metrics is None else metrics
    if not isinstance(metrics, dict):
        raise Invalid(f"{where}.metrics: an object of names to numbers", details={f"{where}.metrics": "object"})
    _check_metrics(f"{where}.metrics", metrics)
