"""The benchmarks still run: ``bench/auth_overhead.py --smoke`` goes through every code path in seconds.

Only that it runs and prints its tables is checked, never a time.
"""

from __future__ import annotations

import subprocess
import sys

from tests.processes import ROOT


def test_auth_overhead_smoke():
    proc = subprocess.run(
        [sys.executable, "bench/auth_overhead.py", "--smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{out[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    assert "/api/v1/me: A local, B token / session" in out  # the servers really ran local and on
    assert "== summary: B (MLOPS_AUTH=on) vs A (MLOPS_AUTH=local)" in out
    header = next(line for line in out.splitlines() if line.startswith("request "))
    for column in ("p50", "p90", "p99", "mean", "ratio p50", "ratio mean", "+us p50", "+us paired", "ratio CPU"):
        assert column in header
    rows = [line for line in out.splitlines() if line.lstrip().startswith("B on, ")]
    assert len(rows) == 6, rows  # charts and snapshot x bearer and cookie, and /ws x bearer and cookie
    for request in ("GET /api/v1/charts", "GET /api/v1/snapshot", "WS /ws connect->hello"):
        assert sum(line.startswith(request) for line in out.splitlines()) == 2, request
    assert "server CPU during the HTTP phase: A (local)" in out
    assert "ratio B/A" in out
    assert "errors 0" in out and "error:" not in out
    assert "== in-process profile" in out and "caches evicted before each" in out
    assert "Accounts.token_principal (whole)" in out and "inside those requests" in out
    assert "functions whose cumulative time per request grows most" in out
