"""The body of one training process: read the dataset, train, save the artifact, report through a pipe.

Runs in a child process started by ``services.training`` (multiprocessing ``forkserver``: the
scientific stack is imported once in the fork server, not per job, and no thread or lock of the web
server is inherited). Messages sent to the parent, in order:

- ``("stage", name)``: ``loading``, ``training``, ``saving``
- ``("progress", step, total, metrics)``: after each epoch or stage
- ``("done", {"metrics", "task", "signature", "steps", "n_train", "n_test"})``, or
  ``("failed", code, message)``

A process that dies without sending ``done`` or ``failed`` is reported by the parent.

``die_with_parent`` (called first in the child) makes a ``kill -9`` of the server take every training
process with it: see its docstring.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import joblib
from threadpoolctl import threadpool_limits

from ml import trainer

NICENESS = 10  # training yields the CPU to the web server and its WebSockets
# The server publishes at most ~10 training_progress events per second: metrics for more are not computed.
REPORT_INTERVAL_S = 0.1
PR_SET_PDEATHSIG = 1  # linux/prctl.h
ORPHAN_POLL_S = 0.5  # where the kernel cannot signal a parent's death, how often the child looks


def die_with_parent() -> None:
    """Die when the fork server dies, and let the fork server die when the server process does.

    The fork server exits when its "alive" pipe reaches end of file, i.e. when no process holds the
    write end any more; but multiprocessing hands every child a copy of that end, so after a
    ``kill -9`` of the server a training child kept the fork server waiting, trained on as an orphan,
    and held the resource tracker's pipe open too. Here the child first asks the kernel to SIGKILL it
    when its parent exits (PR_SET_PDEATHSIG follows the parent *thread*: the fork server forks every
    child from its main thread, which lives as long as the fork server), then drops its copy of the
    alive pipe. From then on the server's death closes the pipe, the fork server exits, the kernel
    kills each child, and the resource tracker, its pipe closed by all, exits as well.
    The order matters: while the child still holds the pipe the fork server does not exit, so it
    cannot die before the death signal is armed (unless something else kills it: then the server,
    still alive, supervises and stops the child itself).
    """
    from multiprocessing import forkserver

    server = forkserver._forkserver  # the alive pipe's fd is only reachable here
    if multiprocessing.parent_process() is None or getattr(server, "_inherited_fds", None) is None:
        return  # not a fork server's child: nothing to arrange
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:  # no parent-death signal: look instead (a thread, so it needs the GIL now and then)
        parent = os.getppid()
        threading.Thread(target=_exit_when_orphaned, args=(parent,), name="orphan-watch", daemon=True).start()
    alive = getattr(server, "_forkserver_alive_fd", None)  # tests/integration/test_orphans.py notices a rename
    if alive is not None:
        os.close(alive)
        server._forkserver_alive_fd = None


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_POLL_S)
    os._exit(1)


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
