#!/usr/bin/env python
"""Prediction serving: the dashboard's ``POST /api/v1/pipelines/<id>/predict`` vs a bare Flask route.

Setup: a dashboard (``bench/_common.Server``: gunicorn, 1 gthread worker, ``--threads``; own temp data
dir, SQLite, ``MLOPS_BACKGROUND=false``) is started; scikit-learn's bundled ``breast_cancer.csv``
(569 rows, 30 numeric features, binary target) is uploaded, and for each kind in ``--kinds`` a
pipeline is created, trained through the API (``--rf-trees`` trees for ``random_forest``,
``--gb-trees`` for ``gradient_boosting``, defaults otherwise) and its model deployed. Each
artifact is copied out and served by ``bench/bare_flask_app.py`` (same gunicorn command, same thread
count): ``pd.DataFrame(instances)`` -> ``predict_proba`` (a classifier's predictions are its argmax,
as the dashboard computes them), no validation, counting or database. Both servers answer the same
request body with the same predictions (checked before any load).

Load, per case (server x kind x rows per request x concurrency): ``--concurrency`` client threads in
this process, each with its own keep-alive ``http.client`` connection, POST pre-encoded bodies
(real rows of the dataset, 1 or 100 per request) back to back for ``--warmup`` s (not measured) and
``--duration`` s. A request counts when it starts and ends inside the measured window. Reported:
requests/s, rows/s, client-side latency p50/p95/p99/max, errors (non-200 or connection errors; must
be 0), server CPU (whole server process tree, % of one core) and CPU ms per request, client CPU,
and the serving worker's RSS (peak, sampled every 0.25 s). Cases run interleaved (dashboard, then
bare, for each combination) while both servers are up; the idle one uses ~no CPU.

``--profile N`` (default 300; 0 skips) then profiles N requests of each row count against the first
kind, in this process with Flask's test client (no gunicorn, no sockets) and ``cProfile``, for the
dashboard (``create_app`` on the running dashboard's data dir) and the bare app, and prints the
functions with the most cumulative time that belong to either app plus a per-stage split of the
dashboard's request (parse JSON, ``prepare_instances``, ``predict``, the rest).

``--smoke``: the linear model only, 1 and 10 rows, 1 and 2 clients, 1 s per case, a profile of 20 requests
and 2 rounds of the stage split, no wait for an idle machine (~25 s).

Run from the repo root:  .venv/bin/python bench/serving.py [--kinds linear,random_forest] [--smoke]
    [--rows 1,100] [--concurrency 1,4] [--duration 6] [--warmup 2] [--threads 150]
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import pstats
import shlex
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, ServerStartError, code_versions, machine_facts, percentile, system_busy_s, print_quiet  # noqa: E402

import sklearn  # noqa: E402  (only for its bundled dataset and version)

DATASET = Path(sklearn.__file__).parent / "datasets" / "data" / "breast_cancer.csv"
BARE_APP = "bench.bare_flask_app:app"


class BareServer(Server):
    """``bench/bare_flask_app.py`` under the dashboard's exact gunicorn command, serving one artifact."""

    def __init__(self, artifact: Path, threads: int):
        super().__init__(kind="gunicorn", threads=threads)
        self.env["BENCH_ARTIFACT"] = str(artifact)

    def command(self) -> list[str]:
        return [BARE_APP if part == "app:server" else part for part in super().command()]

    def describe(self) -> str:
        return f"gunicorn -w 1 -k gthread --threads {self.threads} {BARE_APP}"


# -- setup through the API -------------------------------------------------------------------------


def train_models(server: Server, kinds: list[str], args) -> dict[str, dict]:
    """Upload the dataset, train and deploy one pipeline per kind; returns kind -> facts."""
    base = f"{server.url}/api/v1"
    with DATASET.open("rb") as f:
        r = requests.post(f"{base}/datasets", files={"file": ("breast_cancer.csv", f, "text/csv")},
                          data={"name": "breast_cancer"}, timeout=60)
    r.raise_for_status()
    dataset = r.json()
    columns = [c["name"] for c in dataset["columns"]]
    params = {
        "linear": {},
        "random_forest": {"n_estimators": args.rf_trees},
        "gradient_boosting": {"n_estimators": args.gb_trees},
        "mlp": {},
    }
    out = {}
    for kind in kinds:
        body = {"name": f"bench-{kind}", "dataset_id": dataset["id"], "target": "target", "model": kind,
                "params": params[kind]}
        r = requests.post(f"{base}/pipelines", json=body, timeout=30)
        r.raise_for_status()
        pid = r.json()["id"]
        started = time.monotonic()
        r = requests.post(f"{base}/pipelines/{pid}/train", timeout=30)
        r.raise_for_status()
        job_id = r.json()["id"]
        while True:
            job = requests.get(f"{base}/jobs/{job_id}", timeout=30).json()
            if job["status"] in {"succeeded", "failed", "cancelled"}:
                break
            if time.monotonic() - started > 300:
                raise RuntimeError(f"training {kind} did not finish in 300 s: {job}")
            time.sleep(0.2)
        if job["status"] != "succeeded":
            raise RuntimeError(f"training {kind} {job['status']}: {job}")
        model_id = job["model_id"]
        r = requests.post(f"{base}/models/{model_id}/deploy", timeout=30)
        r.raise_for_status()
        model = requests.get(f"{base}/models/{model_id}", timeout=30).json()
        artifact = server.tmp / "data" / "models" / f"pipeline-{pid}" / f"v{model['version']}.joblib"
        if not artifact.is_file():
            raise RuntimeError(f"no artifact at {artifact}")
        metrics = job.get("metrics") or model.get("metrics") or {}
        out[kind] = {"pipeline_id": pid, "model_id": model_id, "artifact": artifact, "params": params[kind],
                     "train_s": time.monotonic() - started, "metrics": metrics, "columns": columns}
    return out


def make_bodies(rows: int, count: int = 16) -> list[bytes]:
    """Up to ``count`` distinct request bodies of ``rows`` real dataset rows each (JSON numbers)."""
    frame = pd.read_csv(DATASET, header=None, skiprows=1)
    features = frame.iloc[:, :-1].to_numpy(dtype=float)
    names = [f"feature_{i}" for i in range(features.shape[1])]
    bodies = []
    for b in range(count):
        start = (b * rows) % (len(features) - rows + 1)
        block = features[start:start + rows]
        bodies.append(json.dumps({"instances": [dict(zip(names, map(float, row))) for row in block]}).encode())
    return bodies


# -- load ------------------------------------------------------------------------------------------


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", "Connection": "keep-alive"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def check_same(dash: Server, dash_path: str, bare: Server, bodies: list[bytes], rows: int) -> None:
    """Both servers answer the same body with the same predictions and probabilities."""
    for body in bodies[:3]:
        answers = []
        for server, path in ((dash, dash_path), (bare, "/predict")):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            status, data = post(conn, path, body)
            conn.close()
            if status != 200:
                raise RuntimeError(f"{path} answered HTTP {status}: {data[:300]!r}")
            answers.append(json.loads(data))
        d, b = answers
        if len(d["predictions"]) != rows or d["predictions"] != b["predictions"]:
            raise RuntimeError(f"predictions differ: dashboard {d['predictions'][:5]} vs bare {b['predictions'][:5]}")
        if "probabilities" in b and not np.allclose(d["probabilities"], b["probabilities"], rtol=0, atol=1e-12):
            raise RuntimeError("probabilities differ between the dashboard and the bare app")


def run_load(server: Server, path: str, bodies: list[bytes], rows: int, concurrency: int, warmup: float, duration: float) -> dict:
    stop = threading.Event()
    window: list[float] = []  # [start, end] of the measured window, set by the main thread
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    counted = [0]

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        mine: list[float] = []
        i = index
        while not stop.is_set():
            body = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            try:
                status, data = post(conn, path, body)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                continue
            t1 = time.perf_counter()
            if status != 200:
                with lock:
                    errors.append(f"HTTP {status}: {data[:200]!r}")
                continue
            if len(window) == 2 and t0 >= window[0] and t1 <= window[1]:
                mine.append(t1 - t0)
        conn.close()
        with lock:
            latencies.extend(mine)
            counted[0] += len(mine)

    worker = server.worker()
    me = psutil.Process()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    errors_before = len(errors)
    cpu0, me0, busy0 = server.cpu_s(), me.cpu_times(), system_busy_s()
    t_start = time.perf_counter()
    window.extend([t_start, t_start + duration])
    rss_peak = 0.0
    while time.perf_counter() < window[1]:
        try:
            if worker is not None:
                rss_peak = max(rss_peak, worker.memory_info().rss / 2**20)
        except psutil.Error:
            pass
        time.sleep(min(0.25, max(0.0, window[1] - time.perf_counter())))
    cpu1, me1, busy1 = server.cpu_s(), me.cpu_times(), system_busy_s()
    elapsed = time.perf_counter() - t_start
    stop.set()
    for t in threads:
        t.join(timeout=35)
    n = counted[0]
    s = sorted(latencies)
    server_cpu = cpu1 - cpu0
    return {
        "requests": n,
        "rps": n / elapsed,
        "rows_s": n * rows / elapsed,
        "p50": percentile(s, 50) * 1000,
        "p95": percentile(s, 95) * 1000,
        "p99": percentile(s, 99) * 1000,
        "max": (s[-1] if s else float("nan")) * 1000,
        "errors": len(errors),
        "errors_warmup": errors_before,
        "first_error": errors[0] if errors else "",
        "server_cpu_pct": 100 * server_cpu / elapsed,
        "cpu_ms_per_req": 1000 * server_cpu / n if n else float("nan"),
        "client_cpu_pct": 100 * ((me1.user + me1.system) - (me0.user + me0.system)) / elapsed,
        "machine_cpu_pct": 100 * (busy1[0] - busy0[0]) / elapsed,
        "rss_mb": rss_peak,
    }


# -- profile ---------------------------------------------------------------------------------------


def profile(dash: Server, facts: dict, bodies_by_rows: dict[int, list[bytes]], count: int, profile_dir: Path | None,
            rounds: int = 7, calls: int | None = None) -> None:
    """cProfile ``count`` requests per row count through Flask's test client, dashboard and bare app."""
    os.environ.update({k: v for k, v in dash.env.items() if k.startswith("MLOPS_")})
    os.environ["BENCH_ARTIFACT"] = str(facts["artifact"])
    sys.path.insert(0, str(ROOT))
    import app as dashboard_module  # noqa: PLC0415 - only when profiling
    import bench.bare_flask_app as bare_module  # noqa: PLC0415
    from ml import trainer  # noqa: PLC0415

    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    dash_app = dashboard_module.create_app()
    clients = {"dashboard": (dash_app.server.test_client(), f"/api/v1/pipelines/{facts['pipeline_id']}/predict"),
               "bare": (bare_module.app.test_client(), "/predict")}
    print(f"\n== profile: {count} requests each through Flask's test client in this process (cProfile) ==")
    try:
        for rows, bodies in bodies_by_rows.items():
            for name, (client, path) in clients.items():
                for body in bodies[:3]:  # warm: model loaded, route cached
                    assert client.post(path, data=body, content_type="application/json").status_code == 200
                t0 = time.thread_time()
                for i in range(count):
                    client.post(path, data=bodies[i % len(bodies)], content_type="application/json")
                plain = (time.thread_time() - t0) / count * 1000
                prof = cProfile.Profile()
                prof.enable()
                for i in range(count):
                    client.post(path, data=bodies[i % len(bodies)], content_type="application/json")
                prof.disable()
                stats = pstats.Stats(prof)
                if profile_dir is not None:
                    target = profile_dir / f"serving-{name}-{facts['kind']}-{rows}row.prof"
                    stats.dump_stats(target)
                    print(f"\n(saved {target}: python -m pstats {target})", end="")
                print(f"\n-- {name}, {rows} row(s) per request: {plain:.3f} CPU ms per request without the profiler --")
                print_top(stats, count, name)
            stage_split(dash_app, facts, bodies, rows, trainer, rounds, calls)
    finally:
        dash_app.mlops.stop()


LANDMARKS = {  # library entry points that show where a request's time goes, beside the apps' own code
    ("flask/app.py", "full_dispatch_request"),
    ("flask/json/__init__.py", "jsonify"),
    ("flask/wrappers.py", "get_json"),
    ("werkzeug/test.py", "open"),
    ("pandas/core/frame.py", "__init__"),
}


def print_top(stats: pstats.Stats, count: int, name: str, limit: int = 14) -> None:
    """The functions with the most cumulative time per request, from the apps' code, Flask, pandas, sklearn."""
    rows = []
    for (filename, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():
        short = filename.replace(str(ROOT) + "/", "")
        if "site-packages/" in short:
            short = short.split("site-packages/", 1)[1]
        ours = short.startswith(("services/", "ml/", "api/", "bench/", "events/", "storage/"))
        landmark = (short, func) in LANDMARKS or (short.startswith("sklearn/pipeline.py") and func in {"predict", "predict_proba"})
        keep = ours or landmark
        if keep:
            rows.append((ct / count * 1000, tt / count * 1000, nc / count, f"{short}:{line}({func})"))
    rows.sort(reverse=True)
    print(f"{'cum ms/req':>10} {'own ms/req':>10} {'calls/req':>9}  function")
    for ct, tt, nc, where in rows[:limit]:
        print(f"{ct:>10.3f} {tt:>10.3f} {nc:>9.1f}  {where}")


def stage_split(dash_app, facts: dict, bodies: list[bytes], rows: int, trainer, rounds: int = 7, calls: int | None = None) -> None:
    """The dashboard's request in stages, timed directly (no profiler): where each millisecond goes.

    Each stage runs ``n`` calls per round, the stages take turns, and the median round is kept, so a
    burst of load from elsewhere on the machine hits one round and not one stage.
    """
    serving = dash_app.mlops.serving
    loaded = serving.load(facts["model_id"])
    parsed = [json.loads(b) for b in bodies]
    frames = [trainer.prepare_instances(loaded.signature["columns"], p["instances"]) for p in parsed]
    bare_frames = [pd.DataFrame(p["instances"]) for p in parsed]
    client = dash_app.server.test_client()
    bare_client = sys.modules["bench.bare_flask_app"].app.test_client()
    path = f"/api/v1/pipelines/{facts['pipeline_id']}/predict"
    columns, classes = loaded.signature["columns"], loaded.signature.get("classes")
    n = calls or (100 if rows == 1 else 40)
    stages = {
        "json.loads": lambda i: json.loads(bodies[i % len(bodies)]),
        "prepare_instances": lambda i: trainer.prepare_instances(columns, parsed[i % len(parsed)]["instances"]),
        "pd.DataFrame(instances)": lambda i: pd.DataFrame(parsed[i % len(parsed)]["instances"]),
        "trainer.predict": lambda i: trainer.predict(loaded.estimator, loaded.task, frames[i % len(frames)], classes),
        "trainer.predict(bare frame)": lambda i: trainer.predict(loaded.estimator, loaded.task, bare_frames[i % len(frames)], classes),
        "Serving.predict_pipeline": lambda i: serving.predict_pipeline(facts["pipeline_id"], parsed[i % len(parsed)]),
        "dashboard request": lambda i: client.post(path, data=bodies[i % len(bodies)], content_type="application/json"),
        "bare request": lambda i: bare_client.post("/predict", data=bodies[i % len(bodies)], content_type="application/json"),
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(rounds):
        for name, fn in stages.items():
            t0 = time.thread_time()  # CPU time of this thread: other load on the machine does not count
            for i in range(n):
                fn(i)
            times[name].append((time.thread_time() - t0) / n * 1000)
    med = {name: float(np.median(v)) for name, v in times.items()}
    rest = med["dashboard request"] - med["Serving.predict_pipeline"] - med["json.loads"]
    print(f"\n-- stages of the dashboard's request, {rows} row(s): CPU ms per call (this thread), median of {rounds} "
          f"rounds of {n} (no profiler, Flask test client) --")
    print("  " + " | ".join(f"{name} {value:.3f}" for name, value in med.items()))
    print(f"  Serving.predict_pipeline - prepare_instances - trainer.predict = {med['Serving.predict_pipeline'] - med['prepare_instances'] - med['trainer.predict']:.3f} "
          f"(route lookup, load check, counting); request - service - json.loads = {rest:.3f} (Flask, Werkzeug, jsonify)")


# -- main ------------------------------------------------------------------------------------------


def print_table(results: list[dict]) -> None:
    print("\n== summary (latency ms, client side; CPU % of one core; RSS = serving worker, MiB) ==")
    print(f"{'server':>9} {'model':>17} {'rows':>4} {'conc':>4} {'req/s':>7} {'rows/s':>8} {'p50':>7} {'p95':>7} "
          f"{'p99':>7} {'max':>7} {'err':>4} {'srv CPU':>7} {'CPU ms/req':>10} {'client CPU':>10} {'RSS':>5}")
    for r in results:
        print(f"{r['server']:>9} {r['kind']:>17} {r['rows']:>4} {r['concurrency']:>4} {r['rps']:>7.0f} {r['rows_s']:>8.0f} "
              f"{r['p50']:>7.2f} {r['p95']:>7.2f} {r['p99']:>7.2f} {r['max']:>7.1f} {r['errors']:>4} "
              f"{r['server_cpu_pct']:>6.0f}% {r['cpu_ms_per_req']:>10.3f} {r['client_cpu_pct']:>9.0f}% {r['rss_mb']:>5.0f}")
    print("\n== dashboard vs bare (same model, rows, concurrency) ==")
    print(f"{'model':>17} {'rows':>4} {'conc':>4} {'req/s dash/bare':>15} {'p50 +ms':>8} {'p99 +ms':>8} {'CPU ms/req dash - bare':>22}")
    bare = {(r["kind"], r["rows"], r["concurrency"]): r for r in results if r["server"] == "bare"}
    for r in results:
        b = bare.get((r["kind"], r["rows"], r["concurrency"]))
        if r["server"] != "dashboard" or b is None:
            continue
        print(f"{r['kind']:>17} {r['rows']:>4} {r['concurrency']:>4} {r['rps'] / b['rps']:>15.2f} "
              f"{r['p50'] - b['p50']:>8.2f} {r['p99'] - b['p99']:>8.2f} "
              f"{r['cpu_ms_per_req'] - b['cpu_ms_per_req']:>10.3f} ({r['cpu_ms_per_req']:.3f} vs {b['cpu_ms_per_req']:.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="linear,random_forest", help="model kinds (default linear,random_forest)")
    ap.add_argument("--rows", default="1,100", help="rows per request (default 1,100)")
    ap.add_argument("--concurrency", default="1,4", help="client threads, comma-separated (default 1,4)")
    ap.add_argument("--duration", type=float, default=6.0, help="measured seconds per case (default 6)")
    ap.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each case (default 2)")
    ap.add_argument("--threads", type=int, default=150, help="gunicorn --threads for both servers (default 150)")
    ap.add_argument("--rf-trees", type=int, default=50, help="random_forest n_estimators (default 50)")
    ap.add_argument("--gb-trees", type=int, default=100, help="gradient_boosting n_estimators (default 100)")
    ap.add_argument("--profile", type=int, default=300, help="requests per profile, 0 to skip (default 300)")
    ap.add_argument("--profile-dir", type=Path, default=None, help="also save the cProfile stats here (.prof files)")
    ap.add_argument("--wait-quiet", type=float, default=30.0, help="wait up to this many s for an idle machine first")
    ap.add_argument("--smoke", action="store_true",
                    help="a short run through every code path: linear only, rows 1,10, clients 1,2, 1 s cases, profile 20, no idle wait")
    args = ap.parse_args()
    if args.smoke:
        args.kinds, args.rows, args.concurrency, args.duration, args.warmup = "linear", "1,10", "1,2", 1.0, 0.3
        args.profile, args.wait_quiet = 20, 0.0
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    row_counts = [int(x) for x in args.rows.split(",") if x.strip()]
    concurrencies = [int(x) for x in args.concurrency.split(",") if x.strip()]

    print(f"machine: {machine_facts()}")
    print(f"code: {code_versions('services/serving.py', 'ml/trainer.py', 'api/ml.py')}")
    print(f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}, numpy {np.__version__}")
    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(f"load average before start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print_quiet(args.wait_quiet)
    started = time.monotonic()
    results: list[dict] = []
    copies = Path(tempfile.mkdtemp(prefix="mlops-bench-serving-"))
    dash = Server(kind="gunicorn", threads=args.threads)
    bares: dict[str, BareServer] = {}
    failed = False
    try:
        dash.start()
        print(f"dashboard: {dash.describe()}")
        t0 = time.monotonic()
        facts = train_models(dash, kinds, args)
        print(f"trained and deployed through the API in {time.monotonic() - t0:.1f} s (breast_cancer.csv, 569 rows x 30 features):")
        for kind, f in facts.items():
            shown = {k: round(v, 4) for k, v in f["metrics"].items() if isinstance(v, (int, float))}
            size = f["artifact"].stat().st_size / 1024
            print(f"  {kind:>17}: pipeline {f['pipeline_id']}, model {f['model_id']}, params {f['params']}, "
                  f"{f['train_s']:.1f} s, artifact {size:.0f} KiB, metrics {shown}")
            copy = copies / f"{kind}.joblib"
            shutil.copy(f["artifact"], copy)
            bares[kind] = BareServer(copy, args.threads).start()
        print(f"bare app: {next(iter(bares.values())).describe()} (one server per model)")
        bodies_by_rows = {rows: make_bodies(rows) for rows in row_counts}
        for kind in kinds:
            dash_path = f"/api/v1/pipelines/{facts[kind]['pipeline_id']}/predict"
            for rows in row_counts:
                check_same(dash, dash_path, bares[kind], bodies_by_rows[rows], rows)
        print("check: both servers give identical predictions and probabilities for the same bodies")
        for kind in kinds:
            dash_path = f"/api/v1/pipelines/{facts[kind]['pipeline_id']}/predict"
            for rows in row_counts:
                for conc in concurrencies:
                    for name, server, path in (("dashboard", dash, dash_path), ("bare", bares[kind], "/predict")):
                        r = run_load(server, path, bodies_by_rows[rows], rows, conc, args.warmup, args.duration)
                        r.update(server=name, kind=kind, rows=rows, concurrency=conc)
                        results.append(r)
                        print(f"{name:>9} {kind:>17} rows {rows:>3} conc {conc:>2}: {r['rps']:7.0f} req/s  "
                              f"p50 {r['p50']:6.2f}  p99 {r['p99']:6.2f} ms  errors {r['errors']}"
                              f"{' (' + r['first_error'] + ')' if r['errors'] else ''}  server CPU {r['server_cpu_pct']:.0f}%  "
                              f"machine CPU {r['machine_cpu_pct']:.0f}%", flush=True)
                        if r["errors"]:
                            failed = True
        print_table(results)
        print(f"\nmachine CPU in each window includes this client, both servers and anything else on the machine; "
              f"load average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        if args.profile > 0:
            for server in bares.values():  # the profile runs in this process; the servers need not compete
                server.stop()
            profile(dash, facts[kinds[0]] | {"kind": kinds[0]}, {rows: bodies_by_rows[rows] for rows in row_counts},
                    args.profile, args.profile_dir, rounds=2 if args.smoke else 7, calls=10 if args.smoke else None)
    except ServerStartError as exc:
        failed = True
        print(f"\n!! a server did not start: {exc}")
    finally:
        for server in bares.values():
            server.stop()
        dash.stop()
        shutil.rmtree(copies, ignore_errors=True)
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
