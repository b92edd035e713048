"""The body of one training process: read the dataset, train, save the artifact, report through a pipe.

Runs in a child process started by ``services.training`` (multiprocessing ``forkserver``: the
scientific stack is imported once in the fork server, not per job, and no thread or lock of the web
server is inherited). Messages sent to the parent, in order:

- ``("stage", name)``: ``loading``, ``training``, ``saving``
- ``("progress", step, total, metrics)``: after each epoch or stage
- ``("done", {"metrics", "task", "signature", "steps", "n_train", "n_test"})``, or
  ``("failed", code, message)``

A process that dies without sending ``done`` or ``failed`` is reported by the parent.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

import joblib
from threadpoolctl import threadpool_limits

from ml import trainer

NICENESS = 10  # training yields the CPU to the web server and its WebSockets
# The server publishes at most ~10 training_progress events per second: metrics for more are not computed.
REPORT_INTERVAL_S = 0.1


def run_job(spec: dict[str, Any], conn: Any) -> None:
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    try:
        conn.send(("stage", "loading"))
        frame = trainer.load_frame(spec["path"], spec.get("dialect"))
        conn.send(("stage", "training"))
        # One math-library thread per training process: jobs run side by side (MLOPS_TRAINING_WORKERS),
        # and between the small products of per-step scoring, a second BLAS thread only spins.
        with threadpool_limits(limits=1):
            result = trainer.train(
                frame,
                target=spec["target"],
                features=spec.get("features"),
                kind=spec["kind"],
                params=spec.get("params") or {},
                report=lambda step, total, metrics: conn.send(("progress", step, total, metrics)),
                report_interval_s=REPORT_INTERVAL_S,
            )
        conn.send(("stage", "saving"))
        signature = {
            "columns": result.schema,
            "classes": result.classes,
            "target": result.target,
            "dropped": result.dropped,
        }
        path = Path(spec["artifact_path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        joblib.dump({"model": result.model, "task": result.task, "signature": signature}, partial)
        os.replace(partial, path)  # a crash while saving never leaves a half-written artifact in place
        conn.send((
            "done",
            {
                "metrics": result.metrics,
                "task": result.task,
                "signature": signature,
                "steps": result.steps,
                "n_train": result.n_train,
                "n_test": result.n_test,
            },
        ))
    except trainer.TrainingFailed as exc:
        conn.send(("failed", exc.code, exc.message))
    except MemoryError:
        conn.send(("failed", "out_of_memory", "the training ran out of memory: use fewer rows or columns, or a smaller model"))
    except FileNotFoundError as exc:
        conn.send(("failed", "dataset_missing", f"the dataset file is missing: {exc.filename}"))
    except Exception as exc:  # anything else still reaches the user as a sentence, the trace goes to the log
        traceback.print_exc()
        conn.send(("failed", "training_failed", f"training failed: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()
