"""PNG export latency: a started kaleido browser (what the dashboard does) vs a new browser per image.

    .venv/bin/python bench/export_png.py [--images 20] [--cold-images 5] [--samples 600] [--smoke]

Prints p50/p95/max in ms for: warm in-process renders, warm renders through the HTTP export API
of a running dashboard, and cold renders (kaleido starting Chromium for each image). Prints
numbers only; nothing here passes or fails on time. ``--smoke``: 2 warm images, 1 cold, 60 points
per trace, no wait for an idle machine (~15 s).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import datetime as dt
import logging
import math
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import kaleido  # noqa: E402
import plotly.io as pio  # noqa: E402

from _common import code_versions, command_line, machine_facts, print_quiet  # noqa: E402
from components.charts import CHARTS  # noqa: E402
from tests.samples import STATS  # noqa: E402

# plotly passes kaleido options on every call; with a started server they are rightly unused.
warnings.filterwarnings("ignore", message="The kopts argument is ignored")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def report(name: str, values_ms: list[float]) -> None:
    print(
        f"{name:<38} n={len(values_ms):<3} p50={pct(values_ms, 50):8.1f} ms  p95={pct(values_ms, 95):8.1f} ms"
        f"  max={max(values_ms):8.1f} ms  mean={statistics.fmean(values_ms):8.1f} ms"
    )


def samples(n: int) -> list[dict]:
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=n)
    return [
        {"t": (start + dt.timedelta(seconds=i)).isoformat().replace("+00:00", "Z"), "seq": i + 1,
         **{f: float(i % 100) for f in CHARTS["system_stats"].fields}}
        for i in range(n)
    ]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--cold-images", type=int, default=5)
    parser.add_argument("--samples", type=int, default=600, help="points per trace (600 = 10 min at 1 s)")
    parser.add_argument("--wait-quiet", type=float, default=30.0, help="wait up to this many s for an idle machine first (0: no check)")
    parser.add_argument("--smoke", action="store_true", help="2 warm images, 1 cold, 60 points per trace, no idle wait")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.cold_images, args.samples, args.wait_quiet = 2, 1, 60, 0.0
    if min(args.images, args.cold_images, args.samples) < 1:
        parser.error("--images, --cold-images and --samples must be >= 1")

    print(f"machine: {machine_facts()}")
    print(f"code: {code_versions('components/charts.py', 'services/export.py')}; kaleido {importlib.metadata.version('kaleido')}")
    print(f"command: {command_line()}")
    print_quiet(args.wait_quiet)
    print(f"figure: system_stats (4 panels, 7 traces) with {args.samples} points per trace, 1000 x 560 px")
    fig = CHARTS["system_stats"].figure(samples(args.samples))
    rows: list[tuple[str, list[float]]] = []

    started = time.perf_counter()
    kaleido.start_sync_server(silence_warnings=True)
    first = timed(lambda: pio.to_image(fig, format="png", width=1000, height=560))
    print(f"warm browser start + first image: {(time.perf_counter() - started) * 1000:.0f} ms (first image {first:.0f} ms)")
    warm = [timed(lambda: pio.to_image(fig, format="png", width=1000, height=560)) for _ in range(args.images)]
    kaleido.stop_sync_server(silence_warnings=True)
    report("warm browser, in process", warm)
    rows.append(("warm browser, in process", warm))

    cold = [timed(lambda: pio.to_image(fig, format="png", width=1000, height=560)) for _ in range(args.cold_images)]
    report("new browser per image, in process", cold)
    rows.append(("new browser per image, in process", cold))

    # End to end through the export API of a running dashboard (its own kaleido browser, kept started).
    from werkzeug.serving import make_server

    from app import create_app
    from config import Settings

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with tempfile.TemporaryDirectory() as tmp:
        dash_app = create_app(Settings(data_dir=Path(tmp), background=False, min_free_disk_mb=0))
        server = make_server("127.0.0.1", 0, dash_app.server, threaded=True)
        try:
            for i in range(args.samples):
                dash_app.mlops.publish("system_stats", dict(STATS, cpu_percent=float(i % 100)))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{server.server_port}/api/v1/charts/system_stats.png?last=1h"
            fetch = lambda: urllib.request.urlopen(url, timeout=120).read()  # noqa: E731
            print(f"HTTP first image (starts the dashboard's browser): {timed(fetch):.0f} ms")
            http = [timed(fetch) for _ in range(args.images)]
            report("warm browser, GET .../system_stats.png", http)
            rows.append(("warm browser, GET .../system_stats.png", http))
        finally:
            server.shutdown()
            dash_app.mlops.stop()

    print("\n== summary (ms) ==")
    print(f"{'how':<40} {'n':>3} {'p50':>8} {'p95':>8} {'max':>8} {'mean':>8}")
    for name, values in rows:
        print(f"{name:<40} {len(values):>3} {pct(values, 50):>8.1f} {pct(values, 95):>8.1f} {max(values):>8.1f} "
              f"{statistics.fmean(values):>8.1f}")
    print(f"speed-up warm vs new browser (p50): {pct(cold, 50) / pct(warm, 50):.1f}x")


if __name__ == "__main__":
    main()
