"""Every benchmark in bench/ still runs: each ``--smoke`` goes through all its code paths in well under a minute.

Only that it exits 0 and prints its tables is checked, never a time. ``bench/auth_overhead.py`` has its
own smoke test (``test_bench_smoke.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.processes import ROOT

# script -> lines (or line starts) its output must contain: the headers of the tables it prints
HEADERS = {
    "ws_latency.py": [
        "== 1 client(s) | gunicorn",
        "== 5 client(s) | gunicorn",
        "== summary (latencies in ms; emit = envelope ts -> client receive) ==",
        "clients  phase  sent  expected     recvd   lost     p50     p90     p99      max post p50 post p99  deliv/s  RSS MiB",
    ],
    "browser_latency.py": [
        "opened 2 pages, all badges 'Live'",
        "== steady: 10 events/s for 2 s ==",
        "== burst: 20 events within 0.5 s (8 POST threads) ==",
        "== summary (ms) ==",
        "  phase  sent expected  lost     p50     p90     p99     max",
    ],
    "upload.py": [
        "path                            size MB        rows   seconds     MB/s   send s  parse s   base MB   peak MB",
        "stream (multipart)",
        "dcc.Upload (base64 callback)",
        "details",
    ],
    "export_png.py": [
        "== summary (ms) ==",
        "how                                        n      p50      p95      max     mean",
        "warm browser, GET .../system_stats.png",
        "speed-up warm vs new browser (p50):",
    ],
    "serving.py": [
        "check: both servers give identical predictions and probabilities for the same bodies",
        "== summary (latency ms, client side; CPU % of one core; RSS = serving worker, MiB) ==",
        "   server             model rows conc   req/s   rows/s     p50     p95     p99     max  err srv CPU CPU ms/req client CPU   RSS",
        "== dashboard vs bare (same model, rows, concurrency) ==",
        "== profile: 20 requests each through Flask's test client in this process (cProfile) ==",
        "-- stages of the dashboard's request, 10 row(s)",
    ],
    "training_overhead.py": [
        "pipe send of one progress message:",
        "== seconds per train() call: median (min-max over rounds)",
        "           dataset              kind steps  rep   k rnd  none s  pipe s  pipe spread    wall     CPU CPU/wall",
        "== Result.seconds per variant (median per call, s); shares are of the call's total ==",
        "breast_cancer_x2",
    ],
    "soak.py": [
        "history filled:",
        "== soak: over time",
        "   t s  RSS res  RSS wkr procs jobs RSS jobs fds res fds wkr thr res thr wkr conns !estab ws open  pages  preds"
        "    upl  train events errors  cuts CPU srv bench other",
        "== soak: summary",
        "RSS, resident procs",
        "slope after warm-up",
        "== soak: requests (latency ms, client side) ==",
        "POST predict",
        "training (submit -> succeeded)",
        "== soak: WebSockets ==",
        "== soak: errors (any is unexpected) ==",
        "frozen socket cut by the server",
    ],
}
NEEDS = {"browser_latency.py": ("/usr/bin/chromium", "/usr/bin/chromedriver")}


@pytest.mark.parametrize("script", sorted(HEADERS))
def test_benchmark_smoke(script):
    missing = [path for path in NEEDS.get(script, ()) if not shutil.which(path)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    proc = subprocess.run(
        [sys.executable, f"bench/{script}", "--smoke"], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{out[-6000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    absent = [header for header in HEADERS[script] if header not in out]
    assert not absent, f"missing from the output: {absent}\n--- stdout\n{out[-6000:]}"
