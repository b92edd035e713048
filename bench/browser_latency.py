#!/usr/bin/env python
"""Browser handler latency: K Chromium pages on the live dashboard, events POSTed at a fixed rate.

Starts the dashboard as a subprocess (gunicorn gthread by default, ``--server dev`` for
``python app.py``), opens ``--pages`` pages in headless Chromium (``--mode windows``: one browser,
one window per page via ``switch_to.new_window('window')``; ``--mode browsers``: one browser per page),
waits until every page's ``#conn-badge`` says "Live", then:

* steady phase: ``training_progress`` events POSTed at ``--rate``/s for ``--duration`` s;
* burst phase: ``--burst`` events POSTed within ``--burst-within`` s (paced over ``--burst-threads`` threads).

After each phase it reads from every page ``window.mlops.trace`` (seqs handled, in order) and
``window.mlops.latency`` (same index: ``Date.now() - Date.parse(event.ts)`` when the handler ran,
ms resolution) and reports the handler latency across pages and the events a page never handled
("lost"). ``post->handler`` adds the time from the POST start to the envelope ts.

``--smoke``: 2 windows, 2 s steady, a burst of 20, no wait for an idle machine (~20 s).

Run from the repo root:  .venv/bin/python bench/browser_latency.py [--pages 10] [--mode browsers] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Publisher,
    Server,
    command_line,
    fmt_ms,
    machine_facts,
    summary,
    system_busy_s,
    tree_cpu_s,
    tree_rss_mb,
    print_quiet,
)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

CHROMIUM = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)
# Pages in other windows must not be treated as background pages (timer throttling, renderer
# backgrounding): the benchmark measures the app, not Chromium's power saving.
NO_THROTTLE_FLAGS = (
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)

READ_PAGE = """
const m = window.mlops || {};
const badge = document.getElementById('conn-badge');
return {
  trace: (m.trace || []).slice(),
  latency: (m.latency || []).slice(),
  lastSeq: m.state ? m.state.lastSeq : null,
  counters: m.counters || null,
  badge: badge ? badge.textContent : null,
  visibility: document.visibilityState,
  connection: (m.connection || []).map((c) => c.text),
};
"""
LAST_SEQ = "return window.mlops && window.mlops.state ? window.mlops.state.lastSeq : -1"
BADGE = "const b = document.getElementById('conn-badge'); return b ? b.textContent : null"


def make_options(no_throttle: bool) -> Options:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in BASE_FLAGS + (NO_THROTTLE_FLAGS if no_throttle else ()):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    return options


class Pages:
    """K pages: either windows of one driver or one driver each; ``run(i, script)`` runs JS in page i."""

    def __init__(self, mode: str, count: int, no_throttle: bool):
        self.mode = mode
        self.count = count
        self.no_throttle = no_throttle
        self.drivers: list[webdriver.Chrome] = []
        self.pages: list[tuple[webdriver.Chrome, str]] = []  # (driver, window handle)
        self.current: dict[int, str] = {}
        self.pids: set[int] = set()

    def _new_driver(self) -> webdriver.Chrome:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=make_options(self.no_throttle))
        driver.set_script_timeout(20)
        driver.set_page_load_timeout(60)
        self.drivers.append(driver)
        self._remember_pids(driver)
        return driver

    def _remember_pids(self, driver) -> None:
        try:
            root = psutil.Process(driver.service.process.pid)
            self.pids.add(root.pid)
            self.pids.update(p.pid for p in root.children(recursive=True))
        except (psutil.Error, AttributeError):
            pass

    def open(self, url: str) -> None:
        for i in range(self.count):
            if self.mode == "browsers" or not self.drivers:
                driver = self._new_driver()
            else:
                driver = self.drivers[0]
                driver.switch_to.new_window("window")
            driver.get(url)
            handle = driver.current_window_handle
            self.pages.append((driver, handle))
            self.current[id(driver)] = handle
        for driver in self.drivers:
            self._remember_pids(driver)

    def run(self, i: int, script: str):
        driver, handle = self.pages[i]
        if self.current.get(id(driver)) != handle:
            driver.switch_to.window(handle)
            self.current[id(driver)] = handle
        return driver.execute_script(script)

    def severe_logs(self) -> list[str]:
        out = []
        for driver in self.drivers:
            try:
                out.extend(entry.get("message", "") for entry in driver.get_log("browser"))
            except Exception:  # noqa: BLE001 - logs are a diagnostic extra
                pass
        return out

    def processes(self) -> list[psutil.Process]:
        procs = []
        for driver in self.drivers:
            try:
                root = psutil.Process(driver.service.process.pid)
                procs.extend([root, *root.children(recursive=True)])
            except (psutil.Error, AttributeError):
                pass
        return procs

    def rss_mb(self) -> float:
        return tree_rss_mb(self.processes())

    def cpu_s(self) -> float:
        return tree_cpu_s(self.processes())

    def quit(self) -> None:
        for driver in self.drivers:
            self._remember_pids(driver)
        for driver in self.drivers:
            try:
                driver.quit()
            except Exception as exc:  # noqa: BLE001
                print(f"warning: driver.quit failed: {exc}", file=sys.stderr)
        # Whatever chromedriver/chromium process of ours survived quit() is ended by its pid.
        time.sleep(0.5)
        for pid in self.pids:
            try:
                p = psutil.Process(pid)
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    os.kill(pid, signal.SIGKILL)
            except (psutil.Error, ProcessLookupError, PermissionError):
                pass


def wait_all(pages: Pages, predicate, script: str, timeout: float) -> tuple[bool, list]:
    """Poll ``script`` in every page until ``predicate(value)`` holds for all, or ``timeout``."""
    deadline = time.monotonic() + timeout
    values = [None] * pages.count
    done = [False] * pages.count
    while time.monotonic() < deadline:
        for i in range(pages.count):
            if not done[i]:
                values[i] = pages.run(i, script)
                done[i] = bool(predicate(values[i]))
        if all(done):
            return True, values
        time.sleep(0.1)
    return False, values


def settle(pages: Pages, threshold: float, timeout: float) -> tuple[bool, list[float]]:
    """Wait until the browser's CPU use over 1 s windows is below ``threshold`` % twice in a row."""
    history: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c0, t0 = pages.cpu_s(), time.monotonic()
        time.sleep(1.0)
        history.append(100.0 * (pages.cpu_s() - c0) / (time.monotonic() - t0))
        if len(history) >= 2 and history[-1] < threshold and history[-2] < threshold:
            return True, history
    return False, history


def analyse(pages: Pages, sent: dict[int, tuple[float, float]]) -> dict:
    handler, post = [], []
    by_seq: dict[int, list[float]] = {}
    lost_per_page, dups, info = [], 0, []
    for i in range(pages.count):
        page = pages.run(i, READ_PAGE)
        seen: set[int] = set()
        for seq, lat in zip(page["trace"], page["latency"]):
            s = sent.get(seq)
            if s is None:
                continue
            if seq in seen:
                dups += 1
                continue
            seen.add(seq)
            handler.append(float(lat))
            by_seq.setdefault(seq, []).append(float(lat))
            post.append(float(lat) + (s[1] - s[0]) * 1000.0)
        lost_per_page.append(len(sent) - len(seen))
        info.append(page)
    # Median handler latency over each third of the phase (by publish order): does a backlog build up?
    order = sorted(sent)
    thirds = [order[i * len(order) // 3 : (i + 1) * len(order) // 3] for i in range(3)]
    trend = [summary([v for seq in part for v in by_seq.get(seq, [])])["p50"] for part in thirds]
    return {
        "trend": trend,
        "handler": summary(handler),
        "post": summary(post),
        "lost_per_page": lost_per_page,
        "lost": sum(lost_per_page),
        "expected": len(sent) * pages.count,
        "dups": dups,
        "pages": info,
    }


def run_phase(name: str, server: Server, pages: Pages, publish, args) -> dict:
    pub = Publisher(server.url, job_id=f"browser-{name}")
    me = psutil.Process()
    cpu_b0, cpu_s0, t0 = pages.cpu_s(), server.cpu_s(), time.monotonic()
    cpu_me0, (busy0, steal0) = sum(me.cpu_times()[:2]), system_busy_s()
    rss_peak = [0.0, 0.0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.5):
            rss_peak[0] = max(rss_peak[0], server.rss_mb())
            rss_peak[1] = max(rss_peak[1], pages.rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        publish_s = publish(pub)
        target = max(pub.sent, default=0)
        t_wait = time.monotonic()
        caught_up, last = wait_all(pages, lambda v: v is not None and v >= target, LAST_SEQ, args.catchup_timeout)
        wait_s = time.monotonic() - t_wait
    finally:
        stop.set()
        sampler.join(timeout=5)
    wall = time.monotonic() - t0
    cpu_b, cpu_s = pages.cpu_s() - cpu_b0, server.cpu_s() - cpu_s0
    cpu_me, (busy1, steal1) = sum(me.cpu_times()[:2]) - cpu_me0, system_busy_s()
    result = analyse(pages, dict(pub.sent))
    result.update(
        name=name,
        sent=len(pub.sent),
        errors=pub.errors,
        publish_s=publish_s,
        caught_up=caught_up,
        last_seqs=last,
        target=target,
        wait_s=wait_s,
        cpu_browser=100.0 * cpu_b / wall,
        cpu_server=100.0 * cpu_s / wall,
        cpu_other=100.0 * max(0.0, (busy1 - busy0) - cpu_b - cpu_s - cpu_me) / wall,
        cpu_steal=100.0 * (steal1 - steal0) / wall,
        rss_server=rss_peak[0] or server.rss_mb(),
        rss_browser=rss_peak[1] or pages.rss_mb(),
    )
    return result


def print_phase(r: dict) -> None:
    rate = r["sent"] / r["publish_s"] if r["publish_s"] > 0 else float("nan")
    print(f"    sent {r['sent']} events in {r['publish_s']:.2f} s ({rate:.0f}/s), POST errors {len(r['errors'])}")
    for err in r["errors"][:3]:
        print(f"      POST error: {err}")
    state = "all pages caught up" if r["caught_up"] else f"NOT all pages caught up (lastSeq {r['last_seqs']}, target {r['target']})"
    print(f"    {state} {r['wait_s']:.2f} s after the last POST")
    print(
        f"    handled: expected {r['expected']} (events x pages), LOST {r['lost']} "
        f"(per page {r['lost_per_page']}), duplicates in trace {r['dups']}"
    )
    print(f"    handler latency (ts -> handler)  {fmt_ms(r['handler'])}")
    print(f"    POST start -> handler            {fmt_ms(r['post'])}")
    print("    handler p50 by third of the phase (publish order): " + " / ".join(f"{v:.0f}" for v in r["trend"]) + " ms")
    print(
        f"    CPU % of one core: browser {r['cpu_browser']:.0f}, server {r['cpu_server']:.0f}, "
        f"other processes {r['cpu_other']:.0f}, steal {r['cpu_steal']:.0f}; "
        f"RSS peak browser {r['rss_browser']:.0f} MiB, server {r['rss_server']:.1f} MiB"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=["gunicorn", "dev"], default="gunicorn")
    ap.add_argument("--event-log", choices=["memory", "redis"], default="memory")
    ap.add_argument("--pages", type=int, default=10)
    ap.add_argument("--mode", choices=["windows", "browsers"], default="windows",
                    help="windows: 1 Chromium, one window per page (default); browsers: 1 Chromium per page")
    ap.add_argument("--throttle", action="store_true",
                    help="keep Chromium's background throttling (default: disabled with flags)")
    ap.add_argument("--rate", type=float, default=20.0, help="steady rate, events/s (default 20)")
    ap.add_argument("--duration", type=float, default=15.0, help="steady phase, s (default 15)")
    ap.add_argument("--burst", type=int, default=500, help="events in the burst, 0 to skip (default 500)")
    ap.add_argument("--burst-within", type=float, default=1.0, help="burst spread over this many s (default 1)")
    ap.add_argument("--burst-threads", type=int, default=8, help="POST threads for the burst (default 8)")
    ap.add_argument("--batch-ms", type=float, default=None, help="MLOPS_WS_BATCH_MS (default: the server's default)")
    ap.add_argument("--settle-cpu", type=float, default=40.0,
                    help="before measuring, wait until browser CPU < this %% of a core for 2 s (default 40)")
    ap.add_argument("--settle-timeout", type=float, default=45.0)
    ap.add_argument("--wait-quiet", type=float, default=60.0, help="wait up to this many s for an idle machine first")
    ap.add_argument("--live-timeout", type=float, default=90.0, help="max wait for every badge to say Live")
    ap.add_argument("--catchup-timeout", type=float, default=45.0, help="max wait for pages after a phase")
    ap.add_argument("--smoke", action="store_true",
                    help="a short run through every code path: 2 windows, 10 events/s for 2 s, burst 20 in 0.5 s, no idle wait")
    args = ap.parse_args()
    if args.smoke:
        args.pages, args.rate, args.duration, args.burst, args.burst_within = 2, 10.0, 2.0, 20, 0.5
        args.wait_quiet, args.settle_timeout, args.catchup_timeout = 0.0, 10.0, 20.0

    print(f"machine: {machine_facts()}")
    print(f"command: {command_line()}")
    print_quiet(args.wait_quiet)
    started = time.monotonic()
    server = Server(kind=args.server, event_log=args.event_log, batch_ms=args.batch_ms)
    pages = Pages(args.mode, args.pages, no_throttle=not args.throttle)
    failed = False
    try:
        server.start()
        how = (
            f"1 headless Chromium with {args.pages} windows" if args.mode == "windows"
            else f"{args.pages} headless Chromium instances (one page each)"
        )
        print(f"server: {server.describe()} | pid {server.proc.pid}")
        print(
            f"browser: {how}; {CHROMIUM}; background throttling "
            f"{'kept' if args.throttle else 'disabled (' + ' '.join(NO_THROTTLE_FLAGS) + ')'}"
        )
        t0 = time.monotonic()
        pages.open(server.url + "/")
        ok, badges = wait_all(pages, lambda v: v == "Live", BADGE, args.live_timeout)
        if not ok:
            raise RuntimeError(f"not every page went Live within {args.live_timeout:.0f} s: badges {badges}")
        print(
            f"opened {args.pages} pages, all badges 'Live' after {time.monotonic() - t0:.1f} s; "
            f"browser RSS {pages.rss_mb():.0f} MiB, server RSS {server.rss_mb():.1f} MiB"
        )
        quiet, history = settle(pages, args.settle_cpu, args.settle_timeout)
        print(
            f"browser CPU settling after load (1 s windows, % of one core): {' '.join(f'{v:.0f}' for v in history)}"
            + ("" if quiet else f" -- did NOT drop below {args.settle_cpu:g}% within {args.settle_timeout:g} s")
        )
        # Warm-up: a few events every page must handle before measuring (not counted).
        warm = run_phase("warmup", server, pages, lambda p: p.run_rate(10, 0.5), args)
        if warm["lost"]:
            print(f"warning: warm-up events not handled by every page: lost {warm['lost_per_page']}")

        print(f"\n== steady: {args.rate:g} events/s for {args.duration:g} s ==")
        steady = run_phase("steady", server, pages, lambda p: p.run_rate(args.rate, args.duration), args)
        print_phase(steady)
        results = [("steady", steady)]

        if args.burst:
            time.sleep(1.0)
            print(f"\n== burst: {args.burst} events within {args.burst_within:g} s ({args.burst_threads} POST threads) ==")
            burst = run_phase(
                "burst", server, pages,
                lambda p: p.run_burst(args.burst, args.burst_threads, within_s=args.burst_within), args,
            )
            if burst["publish_s"] > args.burst_within * 1.2:
                print(f"    note: publishing took {burst['publish_s']:.2f} s, longer than {args.burst_within:g} s")
            print_phase(burst)
            results.append(("burst", burst))

        final = burst["pages"] if args.burst else steady["pages"]
        counters = [p["counters"] for p in final]
        agg = {k: sum(c.get(k, 0) for c in counters if c) for k in (counters[0] or {})} if counters else {}
        print(f"\npage counters summed over pages: {agg}")
        print(f"page visibility: {sorted({p['visibility'] for p in final})}; badges: {sorted({p['badge'] for p in final})}")
        reconnected = [i for i, p in enumerate(final) if len(p["connection"]) > 1]
        print(f"pages whose badge changed after the first 'Live': {reconnected or 'none'}")
        logs = pages.severe_logs()
        print(f"browser console SEVERE entries: {len(logs)}")
        for line in logs[:5]:
            print(f"  {line[:300]}")

        print("\n== summary (ms) ==")
        print(f"{'phase':>7} {'sent':>5} {'expected':>8} {'lost':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
        for name, r in results:
            h = r["handler"]
            print(
                f"{name:>7} {r['sent']:>5} {r['expected']:>8} {r['lost']:>5} "
                f"{h['p50']:>7.0f} {h['p90']:>7.0f} {h['p99']:>7.0f} {h['max']:>7.0f}"
            )
    except Exception as exc:  # noqa: BLE001 - report clearly; cleanup below
        failed = True
        print(f"\n!! failed: {type(exc).__name__}: {exc}")
        tail = server.log_tail(15)
        if tail and "server log tail" not in str(exc) and "server exited" not in str(exc):
            print(f"server log tail:\n{tail}")
    finally:
        pages.quit()
        server.stop()
        print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
