#!/usr/bin/env python
"""Training: what progress reporting costs, per model kind, on real data (target: < 2% of training time).

For each dataset in ``--datasets`` and each kind in ``--kinds`` (``ml.trainer.DEFAULTS`` parameters,
the ones a pipeline gets when the user sets none) this times, in this process, on a frame read the
way the worker reads it (``services.ingest.sniff`` -> ``ml.trainer.load_frame``):

* ``none``: ``trainer.train(frame, target="target", kind=kind)`` with ``report=None``;
* ``pipe``: as ``ml.worker.run_job`` calls it: ``report`` sends ``("progress", step, total, metrics)``
  over a real ``multiprocessing`` Pipe (forkserver context, ``duplex=False``, as
  ``services.training`` makes it) to a reader process that receives every message, with the
  worker's ``report_interval_s`` (``ml.worker.REPORT_INTERVAL_S``; steps closer together than that
  are neither evaluated nor reported);
* ``every``: the same pipe with ``report_interval_s=0``: a report, with its intermediate metrics,
  after every epoch or stage (skipped when the worker has no interval);
* ``plain`` (unless ``--no-plain``): the same model fitted by scikit-learn in one call, no steps and no
  progress at all (impute + scale, the same split, ``fit`` with the trainer's parameters: SGD with
  ``max_iter`` epochs and ``tol=None``, MLP with ``max_iter`` epochs and no early stop, the forest and
  the boosting in one ``fit``), then ``predict_proba`` on the test rows.

``pipe`` vs ``none`` is the whole cost of progress reporting as the worker does it: the intermediate
metrics (``Result.seconds['progress']``) plus the sends (``Result.seconds['callbacks']``), and any
side effect (caches, BLAS threads woken by the metrics). ``plain`` shows what fitting in steps costs
on top of that.

The variants of one (dataset, kind) take turns within each round (order rotated every round) after
one warm-up round; ``--repeats`` rounds, fewer (at least 3) when a round takes more than
``--round-budget-s`` / ``--repeats``. A sample is ``k`` back-to-back calls, with ``k`` chosen so a
sample lasts at least ``--min-sample-s`` (tiny fits are otherwise all timer noise). Reported: median
wall and CPU seconds per call (CPU = this process, all its threads: BLAS threads that spin show up
here), the overheads as the median of the per-round paired differences (variant - none) / none, on
wall and on CPU time, reports per call, and the trainer's own ``Result.seconds`` breakdown (median):
prepare, fit, progress (intermediate metrics), callbacks (time inside ``report``: the pipe), final.
``--blas-threads`` limits BLAS/OpenMP threads (threadpoolctl); the default 1 is what the worker
uses (``ml/worker.py``); 0 leaves the libraries' default.

Datasets (written to a temp dir, deleted afterwards): ``breast_cancer`` (scikit-learn's bundled CSV
as is: 569 rows, 30 features, 2 classes), ``digits`` (bundled, 1,797 rows, 64 features, 10 classes,
given a header), ``breast_cancer_x<N>`` (N copies of breast_cancer's rows with Gaussian
noise of 5% of each column's standard deviation, seeded; in the bundled layout, so the dashboard
would read it the same way).

``--smoke``: the three kinds of dataset (breast_cancer, digits, breast_cancer_x2) with linear and random_forest,
2 rounds of 0.05 s samples, no wait for an idle machine (~15 s).

Run from the repo root:  .venv/bin/python bench/training_overhead.py [--datasets breast_cancer,digits,breast_cancer_x20]
    [--kinds linear,random_forest,gradient_boosting,mlp] [--repeats 5] [--blas-threads 1] [--no-plain]
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import math
import multiprocessing
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, code_versions, machine_facts, print_quiet  # noqa: E402

sys.path.insert(0, str(ROOT))
import sklearn  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import SGDClassifier  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from ml import trainer, worker  # noqa: E402
from services.ingest import sniff  # noqa: E402

DATA = Path(sklearn.__file__).parent / "datasets" / "data"
TARGET = 2.0  # % of training time
INTERVAL = getattr(worker, "REPORT_INTERVAL_S", 0.0)  # what the worker passes as report_interval_s


# -- data ------------------------------------------------------------------------------------------


def write_datasets(names: list[str], tmp: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for name in names:
        if name == "breast_cancer":
            paths[name] = DATA / "breast_cancer.csv"
        elif name == "digits":
            with gzip.open(DATA / "digits.csv.gz", "rt") as f:
                values = np.loadtxt(f, delimiter=",")
            frame = pd.DataFrame(values[:, :-1], columns=[f"feature_{i}" for i in range(values.shape[1] - 1)])
            frame["target"] = values[:, -1].astype(int)
            paths[name] = tmp / "digits.csv"
            frame.to_csv(paths[name], index=False)
        elif name.startswith("breast_cancer_x"):
            n = int(name.removeprefix("breast_cancer_x"))
            source = pd.read_csv(DATA / "breast_cancer.csv", header=None, skiprows=1)
            X, y = source.iloc[:, :-1].to_numpy(dtype=float), source.iloc[:, -1].to_numpy(dtype=int)
            rng = np.random.default_rng(0)
            big = np.tile(X, (n, 1))
            big += rng.normal(0.0, 0.05, big.shape) * X.std(axis=0)
            path = tmp / f"{name}.csv"
            with path.open("w") as f:
                f.write(f"{len(big)},{X.shape[1]},malignant,benign\n")  # scikit-learn's bundled layout
                frame = pd.DataFrame(big)
                frame[X.shape[1]] = np.tile(y, n)
                frame.to_csv(f, header=False, index=False, float_format="%.6g")
            paths[name] = path
        else:
            raise SystemExit(f"unknown dataset {name!r}: use breast_cancer, digits or breast_cancer_x<N>")
    return paths


def read(path: Path) -> pd.DataFrame:
    """As the worker reads a dataset: the upload's sniffed dialect, then ``load_frame``."""
    return trainer.load_frame(path, dataclasses.asdict(sniff(path)))


# -- the reader on the other end of the pipe -------------------------------------------------------


def reader(conn, done) -> None:
    """Receive every message until ``("stop",)``, like the server's supervisor thread; report the count."""
    done.send("ready")
    count = 0
    while True:
        message = conn.recv()
        if message[0] == "stop":
            break
        count += 1
    done.send(count)


class PipeReport:
    """``report`` as ``ml.worker.run_job`` passes it: every step goes down the pipe."""

    def __init__(self):
        ctx = multiprocessing.get_context("forkserver")
        self.recv_end, self.send_end = ctx.Pipe(duplex=False)
        self.count_recv, self.count_send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=reader, args=(self.recv_end, self.count_send), daemon=True)
        self.process.start()
        if not self.count_recv.poll(60) or self.count_recv.recv() != "ready":
            raise RuntimeError("the reader process did not start")
        self.sent = 0

    def __call__(self, step: int, total: int, metrics: dict[str, float]) -> None:
        self.send_end.send(("progress", step, total, metrics))
        self.sent += 1

    def send_cost_us(self, batches: int = 7, per_batch: int = 2000) -> list[float]:
        """Microseconds per ``send`` of a typical progress message, one figure per batch."""
        metrics = {"loss": 0.1234567, "accuracy": 0.95, "f1": 0.94, "train_loss": 0.11}
        out = []
        for _ in range(batches):
            t0 = time.perf_counter()
            for step in range(per_batch):
                self(step, per_batch, metrics)
            out.append((time.perf_counter() - t0) / per_batch * 1e6)
        return out

    def close(self) -> int:
        """Stop the reader; the number of messages it received."""
        self.send_end.send(("stop",))
        received = self.count_recv.recv() if self.count_recv.poll(30) else -1
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
        return received


# -- variants --------------------------------------------------------------------------------------


def plain_fit(frame: pd.DataFrame, kind: str) -> None:
    """The same model fitted by scikit-learn in one call, no steps, no progress."""
    settings = trainer.DEFAULTS[kind]
    X = frame.drop(columns="target").to_numpy(dtype=float)
    y = frame["target"].to_numpy()
    n_test = max(math.ceil(settings["test_size"] * len(y)), 2, len(np.unique(y)))
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=n_test, random_state=settings["random_state"], stratify=y)
    seed = np.random.RandomState(settings["random_state"])
    if kind == "linear":
        model = SGDClassifier(loss="log_loss", alpha=settings["alpha"], max_iter=settings["max_iter"], tol=None, random_state=seed)
    elif kind == "mlp":
        model = MLPClassifier(
            hidden_layer_sizes=tuple(settings["hidden_layer_sizes"]), alpha=settings["alpha"],
            learning_rate_init=settings["learning_rate_init"], batch_size=min(200, max(16, len(y_train) // 10)),
            max_iter=settings["max_iter"], n_iter_no_change=settings["max_iter"] + 1, random_state=seed,
        )
    elif kind == "random_forest":
        model = RandomForestClassifier(n_estimators=settings["n_estimators"], max_depth=settings["max_depth"],
                                       min_samples_leaf=settings["min_samples_leaf"], random_state=settings["random_state"], n_jobs=1)
    else:
        model = GradientBoostingClassifier(n_estimators=settings["n_estimators"], learning_rate=settings["learning_rate"],
                                           max_depth=settings["max_depth"], subsample=settings["subsample"],
                                           random_state=settings["random_state"])
    pipeline = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        pipeline.fit(X_train, y_train)
    pipeline.predict_proba(X_test)


def sample(variant: str, frame: pd.DataFrame, kind: str, calls: int, pipe: PipeReport) -> tuple[float, float, list[dict]]:
    """(wall s per call, CPU s per call, Result.seconds + reports of each call) over ``calls`` back-to-back calls."""
    seconds = []
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        if variant == "plain":
            plain_fit(frame, kind)
            continue
        sent = pipe.sent
        if variant == "none":
            result = trainer.train(frame, target="target", kind=kind)
        elif variant == "pipe" and INTERVAL:
            result = trainer.train(frame, target="target", kind=kind, report=pipe, report_interval_s=INTERVAL)
        else:  # every step, or the worker of a trainer without an interval
            result = trainer.train(frame, target="target", kind=kind, report=pipe)
        seconds.append(result.seconds | {"steps": result.steps, "reports": pipe.sent - sent})
    return (time.perf_counter() - w0) / calls, (time.process_time() - c0) / calls, seconds


PARTS = ("prepare", "fit", "progress", "callbacks", "final")


def measure(name: str, frame: pd.DataFrame, kind: str, args, pipe: PipeReport) -> dict:
    variants = ["none", "pipe"] + (["every"] if INTERVAL else []) + ([] if args.no_plain else ["plain"])
    first = {v: sample(v, frame, kind, 1, pipe)[0] for v in variants}  # warm-up round, also sizes k
    calls = max(1, math.ceil(args.min_sample_s / max(min(first.values()), 1e-6)))
    round_s = calls * sum(first.values())
    rounds = max(getattr(args, "min_rounds", 3), min(args.repeats, int(args.round_budget_s / max(round_s, 1e-6))))
    wall = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    breakdown = {v: [] for v in variants if v != "plain"}
    for r in range(rounds):
        order = variants[r % len(variants):] + variants[: r % len(variants)]
        for v in order:
            w, c, secs = sample(v, frame, kind, calls, pipe)
            wall[v].append(w)
            cpu[v].append(c)
            if v in breakdown:
                breakdown[v].extend(secs)
    out = {"dataset": name, "kind": kind, "rows": len(frame), "calls": calls, "rounds": rounds, "variants": variants,
           "wall": wall, "cpu": cpu, "median": {v: statistics.median(wall[v]) for v in variants},
           "cpu_median": {v: statistics.median(cpu[v]) for v in variants}, "vs_none": {}, "parts": {}, "share": {}}
    for v in variants:
        if v != "none":
            out["vs_none"][v] = {
                "wall": [100 * (x - n) / n for x, n in zip(wall[v], wall["none"])],
                "cpu": [100 * (x - n) / n for x, n in zip(cpu[v], cpu["none"])],
            }
        if v in breakdown:
            parts = {key: statistics.median(s[key] for s in breakdown[v]) for key in (*PARTS, "steps", "reports")}
            total = sum(parts[k] for k in PARTS)
            out["parts"][v] = parts
            out["share"][v] = {"callbacks": 100 * parts["callbacks"] / total, "progress": 100 * parts["progress"] / total}
    out["steps"] = int(out["parts"]["none"]["steps"])
    if "plain" in variants:
        out["plain_pct"] = 100 * (out["median"]["pipe"] - out["median"]["plain"]) / out["median"]["plain"]
    return out


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def pct(values: list[float]) -> float:
    return statistics.median(values)


def print_tables(results: list[dict]) -> None:
    every = bool(INTERVAL)
    print("\n== seconds per train() call: median (min-max over rounds); 'vs none' = median of the rounds' paired "
          "(variant - none) / none, on wall and on CPU time (this process, all threads) ==")
    head = (f"{'dataset':>18} {'kind':>17} {'steps':>5} {'rep':>4} {'k':>3} {'rnd':>3} {'none s':>7} {'pipe s':>7} "
            f"{'pipe spread':>12} {'wall':>7} {'CPU':>7} {'CPU/wall':>8}")
    if every:
        head += f" | {'every s':>7} {'wall':>7} {'CPU':>7} {'CPU/wall':>8}"
    head += f" | {'plain s':>7} {'pipe vs plain':>13}"
    print(head)
    for r in results:
        m, c, d = r["median"], r["cpu_median"], r["vs_none"]
        line = (f"{r['dataset']:>18} {r['kind']:>17} {r['steps']:>5} {r['parts']['pipe']['reports']:>4.0f} {r['calls']:>3} "
                f"{r['rounds']:>3} {m['none']:>7.3f} {m['pipe']:>7.3f} {spread(r['wall']['pipe']):>12} "
                f"{pct(d['pipe']['wall']):>+6.1f}% {pct(d['pipe']['cpu']):>+6.1f}% {c['pipe'] / m['pipe']:>8.2f}")
        if every:
            line += (f" | {m['every']:>7.3f} {pct(d['every']['wall']):>+6.1f}% {pct(d['every']['cpu']):>+6.1f}% "
                     f"{c['every'] / m['every']:>8.2f}")
        line += f" | {m['plain']:>7.3f} {r['plain_pct']:>+12.1f}%" if "plain" in m else f" | {'-':>7} {'-':>13}"
        print(line)
    print(f"(rep = reports per call with the worker's report_interval_s={INTERVAL:g}; none's CPU/wall: "
          + ", ".join(f"{r['cpu_median']['none'] / r['median']['none']:.2f}" for r in results) + ")")
    print("\n== Result.seconds per variant (median per call, s); shares are of the call's total ==")
    print(f"{'dataset':>18} {'kind':>17} {'variant':>7} {'reports':>7} {'prepare':>8} {'fit':>8} {'progress':>9} "
          f"{'callbacks':>9} {'final':>7} {'progress %':>10} {'in report %':>11} {'ms/report':>9}")
    for r in results:
        for v, p in r["parts"].items():
            share = r["share"][v]
            per = 1000 * (p["progress"] + p["callbacks"]) / p["reports"] if p["reports"] else 0.0
            print(f"{r['dataset']:>18} {r['kind']:>17} {v:>7} {p['reports']:>7.0f} {p['prepare']:>8.3f} {p['fit']:>8.3f} "
                  f"{p['progress']:>9.4f} {p['callbacks']:>9.5f} {p['final']:>7.3f} {share['progress']:>9.2f}% "
                  f"{share['callbacks']:>10.3f}% {per:>9.3f}")
    print()
    for r in results:
        where = f"{r['dataset']} / {r['kind']}"
        share = r["share"]["pipe"]
        direct = share["progress"] + share["callbacks"]
        if direct > TARGET:
            print(f"OVER TARGET (direct): metrics + sends take {direct:.2f}% of {where} with the worker's interval "
                  f"(progress {share['progress']:.2f}%, in report {share['callbacks']:.3f}%)")
        for v in ("pipe", "every"):
            if v not in r["vs_none"]:
                continue
            for measure_name in ("cpu", "wall"):
                values = r["vs_none"][v][measure_name]
                if pct(values) > TARGET:
                    agree = min(values) > 0
                    print(f"{'OVER TARGET' if agree else 'noise'}: {v} vs none {pct(values):+.1f}% {measure_name} on {where}; "
                          f"rounds {'agree' if agree else 'disagree'} ({', '.join(f'{x:+.1f}' for x in values)})")
        ratio = r["cpu_median"]["pipe"] / r["median"]["pipe"]
        if ratio > 1.2 and ratio > 1.1 * r["cpu_median"]["none"] / r["median"]["none"]:
            print(f"note: {where} with reports uses {ratio:.2f} cores (none: "
                  f"{r['cpu_median']['none'] / r['median']['none']:.2f}): threads busy beside the training, e.g. BLAS threads spinning")
        if r.get("plain_pct") is not None and r["plain_pct"] > TARGET:
            print(f"note: the stepwise trainer with the worker's reporting is {r['plain_pct']:+.1f}% vs a plain scikit-learn fit on {where}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="breast_cancer,digits,breast_cancer_x20",
                    help="breast_cancer, digits, breast_cancer_x<N> (default breast_cancer,digits,breast_cancer_x20)")
    ap.add_argument("--kinds", default=",".join(trainer.KINDS), help=f"model kinds (default {','.join(trainer.KINDS)})")
    ap.add_argument("--repeats", type=int, default=5, help="measured rounds per dataset and kind (default 5)")
    ap.add_argument("--min-sample-s", type=float, default=0.3, help="a sample repeats train() until it lasts this long (default 0.3)")
    ap.add_argument("--round-budget-s", type=float, default=20.0,
                    help="fewer rounds (at least 3) when one round of the variants takes longer than this / --repeats (default 20)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="limit BLAS/OpenMP threads (threadpoolctl); 1 = as the worker trains, 0 = the libraries' default (default 1)")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain scikit-learn fit")
    ap.add_argument("--wait-quiet", type=float, default=30.0, help="wait up to this many s for an idle machine first")
    ap.add_argument("--smoke", action="store_true",
                    help="a short run through every code path: breast_cancer, digits, breast_cancer_x2; linear and "
                         "random_forest; 2 rounds of 0.05 s samples; no idle wait")
    args = ap.parse_args()
    args.min_rounds = 3
    if args.smoke:
        args.datasets, args.kinds, args.repeats, args.min_rounds = "breast_cancer,digits,breast_cancer_x2", "linear,random_forest", 2, 2
        args.min_sample_s, args.wait_quiet = 0.05, 0.0
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]

    print(f"machine: {machine_facts()}")
    print(f"code: {code_versions('ml/trainer.py', 'ml/worker.py')}; worker report_interval_s={INTERVAL:g}")
    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, pandas {pd.__version__}; "
          f"load average before start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print_quiet(args.wait_quiet)
    if args.blas_threads:
        threadpool_limits(args.blas_threads)
    print("thread pools: " + ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info()))
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-training-"))
    pipe = PipeReport()
    results = []
    micro = 0
    try:
        cost = pipe.send_cost_us(batches=2, per_batch=200) if args.smoke else pipe.send_cost_us()
        print(f"pipe send of one progress message: median {statistics.median(cost):.1f} us "
              f"(batches of {200 if args.smoke else 2000:,}: {', '.join(f'{c:.1f}' for c in cost)})")
        micro = pipe.sent
        paths = write_datasets(names, tmp)
        for name, path in paths.items():
            t0 = time.perf_counter()
            frame = read(path)
            print(f"\n{name}: {len(frame):,} rows x {frame.shape[1] - 1} features, read in {time.perf_counter() - t0:.2f} s "
                  f"({path.stat().st_size / 2**20:.1f} MiB)")
            for kind in kinds:
                r = measure(name, frame, kind, args, pipe)
                results.append(r)
                m, d, share = r["median"], r["vs_none"], r["share"]["pipe"]
                print(f"  {kind:>17}: none {m['none']:.3f} s, pipe {m['pipe']:.3f} s (wall {pct(d['pipe']['wall']):+.1f}%, "
                      f"CPU {pct(d['pipe']['cpu']):+.1f}%; progress {share['progress']:.2f}%, in report {share['callbacks']:.3f}%, "
                      f"{r['parts']['pipe']['reports']:.0f} reports)"
                      + (f", every {m['every']:.3f} s (CPU {pct(d['every']['cpu']):+.1f}%)" if "every" in m else "")
                      + (f", plain {m['plain']:.3f} s" if "plain" in m else "")
                      + f"  [{r['calls']} call(s) per sample, {r['rounds']} rounds]", flush=True)
    finally:
        received = pipe.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nreader received {received:,} of {pipe.sent:,} messages sent ({pipe.sent - micro:,} from train(), the rest from the send-cost test)")
    print_tables(results)
    print(f"\nload average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; total time {time.monotonic() - started:.0f} s")
    return 0 if received == pipe.sent else 1


if __name__ == "__main__":
    sys.exit(main())
