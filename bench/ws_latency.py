#!/usr/bin/env python
"""WebSocket fan-out latency: publish events over the REST API, measure when each client receives them.

For each client count (``--clients 1,10,100``) a fresh dashboard is started as a subprocess
(gunicorn gthread worker by default, ``--server dev`` for ``python app.py``), N asyncio WebSocket
clients (``websockets`` library, in this process) connect to ``/ws``, then:

* steady phase: ``training_progress`` events are POSTed to ``/api/v1/events`` at ``--rate``/s for
  ``--duration`` s on a fixed schedule;
* burst phase: ``--burst`` events are POSTed as fast as ``--burst-threads`` threads can.

Per delivery (event x client) two latencies are computed on this machine's clock:
``emit->recv`` = receive time - envelope ``ts`` (set by the server when it appended the event) and
``post->recv`` = receive time - time the POST was started. A delivery that never arrives is "lost".
Clients behave like the browser: they answer ``ping`` with ``pong`` and, if the server closes them
(e.g. 1013 slow consumer), reconnect with ``?after=<last seq>&epoch=`` so the server replays; the
reconnects are reported, and replayed events count as delivered (late).

``--smoke``: 1 and 5 clients, 2 s steady, a burst of 100, no wait for an idle machine (~10 s).

Run from the repo root:  .venv/bin/python bench/ws_latency.py [--event-log redis] [--server dev] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Publisher, Server, ServerStartError, command_line, fmt_ms, machine_facts, print_quiet, summary, system_busy_s  # noqa: E402

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidHandshake  # noqa: E402

EVENTS_PREFIX = '{"kind":"events"'
PING_PREFIX = '{"kind":"ping"'
MAX_RECONNECTS = 20


def last_seq_in_frame(raw: str) -> int:
    """Seq of the last envelope in an ``events`` frame without decoding it (envelopes start ``{"seq":``)."""
    i = raw.rfind('{"seq":')
    if i < 0:
        return -1
    j = i + 7
    k = j
    while k < len(raw) and raw[k].isdigit():
        k += 1
    return int(raw[j:k]) if k > j else -1


class WsClient:
    """One WebSocket client; the receive loop only timestamps and stores frames (decoded afterwards)."""

    def __init__(self, idx: int, ws_url: str, ping: bool = True):
        self.idx = idx
        self.ping = ping
        self.ws_url = ws_url
        self.records: list[tuple[float, str]] = []  # (receive time, raw events frame)
        self.other: list[tuple[float, str]] = []  # hello, reset, error, pong ... frames
        self.closes: list[tuple[int | None, str]] = []  # (close code, reason or error) of every ended connection
        self.connected = asyncio.Event()
        self.epoch: str | None = None
        self.hello_seq = 0
        self.reconnects = 0
        self.pings = 0
        self.stopping = False
        self.ws = None

    def last_seq(self) -> int:
        if self.records:
            return last_seq_in_frame(self.records[-1][1])
        return self.hello_seq

    async def run(self) -> None:
        attempts = 0
        while not self.stopping and attempts <= MAX_RECONNECTS:
            url = self.ws_url
            if self.epoch is not None:
                url += f"?after={self.last_seq()}&epoch={self.epoch}"
            try:
                async with connect(url, ping_interval=None, max_size=None, open_timeout=20, close_timeout=2) as ws:
                    self.ws = ws
                    hello = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    if hello.get("kind") != "hello":
                        raise RuntimeError(f"expected hello, got {hello}")
                    if self.epoch is None:
                        self.epoch, self.hello_seq = hello["epoch"], hello["seq"]
                    self.connected.set()
                    pinger = None
                    if self.ping:  # like the browser: a ping every heartbeat_s, so the server hears from us
                        pinger = asyncio.create_task(self._pinger(ws, float(hello.get("heartbeat_s") or 15.0)))
                    try:
                        async for raw in ws:
                            t = time.time()
                            if raw.startswith(EVENTS_PREFIX):
                                self.records.append((t, raw))
                            elif raw.startswith(PING_PREFIX):
                                self.pings += 1
                                await ws.send(json.dumps({"kind": "pong", "t": json.loads(raw).get("t")}))
                            else:
                                self.other.append((t, raw))
                    except ConnectionClosed:
                        pass
                    finally:
                        if pinger is not None:
                            pinger.cancel()
                    self.closes.append((ws.close_code, ws.close_reason or ""))
            except (ConnectionClosed, InvalidHandshake, OSError, asyncio.TimeoutError, RuntimeError) as exc:
                self.closes.append((None, f"{type(exc).__name__}: {exc}"))
            self.ws = None
            if self.stopping:
                break
            attempts += 1
            self.reconnects += 1
            await asyncio.sleep(0.2)

    @staticmethod
    async def _pinger(ws, every_s: float) -> None:
        try:
            while True:
                await asyncio.sleep(every_s)
                await ws.send(json.dumps({"kind": "ping", "t": time.time()}))
        except (ConnectionClosed, asyncio.CancelledError):
            pass

    async def close(self) -> None:
        self.stopping = True
        ws = self.ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 3)
            except Exception:  # noqa: BLE001 - closing at the end; nothing to report
                pass


def analyse(clients: list[WsClient], sent: dict[int, tuple[float, float]]) -> dict:
    """Decode every stored frame once; latencies and counts for the seqs in ``sent``."""
    emit, post = [], []
    received = dup = 0
    first_post = min((v[0] for v in sent.values()), default=0.0)
    last_recv = first_post
    per_client_missing = []
    for c in clients:
        seen: set[int] = set()
        for t, raw in c.records:
            for e in json.loads(raw)["events"]:
                seq = e["seq"]
                info = sent.get(seq)
                if info is None:
                    continue
                if seq in seen:
                    dup += 1
                    continue
                seen.add(seq)
                received += 1
                emit.append((t - info[1]) * 1000.0)
                post.append((t - info[0]) * 1000.0)
                if t > last_recv:
                    last_recv = t
        per_client_missing.append(len(sent) - len(seen))
    expected = len(sent) * len(clients)
    span = last_recv - first_post
    return {
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "dup": dup,
        "emit": summary(emit),
        "post": summary(post),
        "span_s": span,
        "throughput": received / span if span > 0 else float("nan"),
        "clients_missing": sum(1 for m in per_client_missing if m),
    }


async def wait_delivered(clients: list[WsClient], target_seq: int, timeout: float) -> float:
    """Wait until every client's newest seq reaches ``target_seq`` (or ``timeout``); seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if all(c.last_seq() >= target_seq for c in clients):
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def sample_rss(server: Server, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        out.append(await asyncio.to_thread(server.rss_mb))
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


async def run_phase(name, server, clients, publish, args) -> dict:
    """Run ``publish(publisher)`` in a thread while sampling RSS; wait for delivery; analyse."""
    me = psutil.Process()
    pub = Publisher(server.url, job_id=f"bench-{name}")
    disconnects_before = sum(len(c.closes) for c in clients)
    rss: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(server, stop, rss))
    cpu_srv0, cpu_me0, t0 = server.cpu_s(), sum(me.cpu_times()[:2]), time.monotonic()
    busy0, steal0 = system_busy_s()
    publish_s = await asyncio.to_thread(publish, pub)
    target = max(pub.sent, default=0)
    drain_s = await wait_delivered(clients, target, args.drain_timeout)
    wall = time.monotonic() - t0
    cpu_srv, cpu_me = server.cpu_s() - cpu_srv0, sum(me.cpu_times()[:2]) - cpu_me0
    busy1, steal1 = system_busy_s()
    stop.set()
    await sampler
    result = analyse(clients, dict(pub.sent))
    post_rtt = summary([s * 1000.0 for s in pub.post_s])
    result.update(
        name=name,
        sent=len(pub.sent),
        errors=pub.errors,
        publish_s=publish_s,
        publish_rate=len(pub.sent) / publish_s if publish_s > 0 else float("nan"),
        post_rtt=post_rtt,
        drain_s=drain_s,
        rss_peak=max(rss, default=server.rss_mb()),
        cpu_server=100.0 * cpu_srv / wall,
        cpu_bench=100.0 * cpu_me / wall,
        cpu_other=100.0 * max(0.0, (busy1 - busy0) - cpu_srv - cpu_me) / wall,
        cpu_steal=100.0 * (steal1 - steal0) / wall,
        disconnects=sum(len(c.closes) for c in clients) - disconnects_before,
        reconnects=sum(c.reconnects for c in clients),
    )
    return result


def print_phase(r: dict, indent: str = "  ") -> None:
    print(
        f"{indent}sent {r['sent']} events in {r['publish_s']:.2f} s ({r['publish_rate']:.0f}/s), "
        f"POST errors {len(r['errors'])}, POST round trip p50 {r['post_rtt']['p50']:.1f} ms p99 {r['post_rtt']['p99']:.1f} ms"
    )
    for err in r["errors"][:3]:
        print(f"{indent}  POST error: {err}")
    print(
        f"{indent}deliveries expected {r['expected']}, received {r['received']}, LOST {r['lost']} "
        f"(clients missing some: {r['clients_missing']}), duplicates {r['dup']}, "
        f"server closes during phase {r['disconnects']}, waited {r['drain_s']:.2f} s after the last POST"
    )
    print(f"{indent}emit->recv  {fmt_ms(r['emit'])}")
    print(f"{indent}post->recv  {fmt_ms(r['post'])}")
    print(
        f"{indent}throughput {r['throughput']:.0f} deliveries/s (first POST -> last receive {r['span_s']:.2f} s); "
        f"CPU % of one core: server {r['cpu_server']:.0f}, bench process {r['cpu_bench']:.0f}, "
        f"other processes {r['cpu_other']:.0f}, steal {r['cpu_steal']:.0f}; "
        f"server RSS peak {r['rss_peak']:.1f} MiB"
    )


async def bench_clients(n: int, args) -> dict:
    server = Server(
        kind=args.server,
        event_log=args.event_log,
        threads=args.threads or max(150, n + 50),
        batch_ms=args.batch_ms,
        ws_queue=args.ws_queue,
        heartbeat_s=args.heartbeat_s,
    )
    clients: list[WsClient] = []
    tasks: list[asyncio.Task] = []
    try:
        await asyncio.to_thread(server.start)
        print(f"\n== {n} client(s) | {server.describe()} | pid {server.proc.pid} ==")
        rss_idle = server.rss_mb()
        clients = [WsClient(i, server.ws_url, ping=not args.no_client_ping) for i in range(n)]
        t0 = time.monotonic()
        tasks = [asyncio.create_task(c.run()) for c in clients]
        try:
            await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), args.connect_timeout)
        except asyncio.TimeoutError:
            ok = sum(c.connected.is_set() for c in clients)
            raise RuntimeError(f"only {ok}/{n} clients got a hello within {args.connect_timeout} s") from None
        connect_s = time.monotonic() - t0
        await asyncio.sleep(0.5)
        rss_conn = server.rss_mb()
        print(
            f"  connected {n} clients in {connect_s:.2f} s; server RSS idle {rss_idle:.1f} MiB -> "
            f"with clients {rss_conn:.1f} MiB; server threads {server.threads_count()}"
        )
        if args.warmup:
            await run_phase("warmup", server, clients, lambda p: p.run_rate(10, args.warmup / 10), args)
        results = {"clients": n, "rss_idle": rss_idle, "rss_connected": rss_conn, "connect_s": connect_s}
        print(f"  steady: {args.rate:g} events/s for {args.duration:g} s")
        steady = await run_phase("steady", server, clients, lambda p: p.run_rate(args.rate, args.duration), args)
        print_phase(steady, "    ")
        results["steady"] = steady
        if args.burst:
            await asyncio.sleep(0.5)
            print(f"  burst: {args.burst} events as fast as possible from {args.burst_threads} POST threads")
            burst = await run_phase(
                "burst", server, clients, lambda p: p.run_burst(args.burst, args.burst_threads), args
            )
            print_phase(burst, "    ")
            results["burst"] = burst
        results["rss_end"] = server.rss_mb()
        others = {}
        for c in clients:
            for _t, raw in c.other:
                kind = json.loads(raw).get("kind")
                others[kind] = others.get(kind, 0) + 1
        closes = {}
        for c in clients:
            for code, reason in c.closes:
                key = f"{code} {reason}".strip()
                closes[key] = closes.get(key, 0) + 1
        print(
            f"  server RSS at end {results['rss_end']:.1f} MiB; non-event frames {others or 'none'}; "
            f"connections closed by server/errors {closes or 'none'}; reconnects {sum(c.reconnects for c in clients)}"
        )
        return results
    finally:
        for c in clients:
            c.stopping = True
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.to_thread(server.stop)


def print_table(all_results: list[dict], args) -> None:
    print("\n== summary (latencies in ms; emit = envelope ts -> client receive) ==")
    head = (
        f"{'clients':>7} {'phase':>6} {'sent':>5} {'expected':>9} {'recvd':>9} {'lost':>6} "
        f"{'p50':>7} {'p90':>7} {'p99':>7} {'max':>8} {'post p50':>8} {'post p99':>8} {'deliv/s':>8} {'RSS MiB':>8}"
    )
    print(head)
    for r in all_results:
        for phase in ("steady", "burst"):
            if phase not in r:
                continue
            p = r[phase]
            e = p["emit"]
            print(
                f"{r['clients']:>7} {phase:>6} {p['sent']:>5} {p['expected']:>9} {p['received']:>9} {p['lost']:>6} "
                f"{e['p50']:>7.1f} {e['p90']:>7.1f} {e['p99']:>7.1f} {e['max']:>8.1f} {p['post']['p50']:>8.1f} "
                f"{p['post']['p99']:>8.1f} {p['throughput']:>8.0f} {p['rss_peak']:>8.1f}"
            )


async def main_async(args) -> int:
    counts = [int(x) for x in args.clients.split(",") if x.strip()]
    print(f"machine: {machine_facts()}")
    print(f"command: {command_line()}")
    print(
        f"ws_latency: server={args.server} event_log={args.event_log} clients={counts} rate={args.rate:g}/s "
        f"duration={args.duration:g}s burst={args.burst} burst_threads={args.burst_threads} "
        f"client_ping={'off' if args.no_client_ping else 'every heartbeat_s'} "
        f"(clients and publisher share this one Python process)"
    )
    print_quiet(args.wait_quiet)
    results = []
    started = time.monotonic()
    failed = False
    for n in counts:
        if time.monotonic() - started > args.max_seconds:
            print(f"\n!! skipping {n} clients: over the --max-seconds budget ({args.max_seconds:.0f} s)")
            continue
        try:
            results.append(await bench_clients(n, args))
        except ServerStartError as exc:
            failed = True
            print(f"\n!! the dashboard did not start; stopping here. {exc}")
            break
        except Exception as exc:  # noqa: BLE001 - report and go on with the next client count
            failed = True
            print(f"\n!! {n} clients failed: {type(exc).__name__}: {exc}")
    print_table(results, args)
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=["gunicorn", "dev"], default="gunicorn")
    ap.add_argument("--event-log", choices=["memory", "redis"], default="memory")
    ap.add_argument("--clients", default="1,10,100", help="comma-separated client counts (default 1,10,100)")
    ap.add_argument("--rate", type=float, default=50.0, help="steady publish rate, events/s (default 50)")
    ap.add_argument("--duration", type=float, default=10.0, help="steady phase length, s (default 10)")
    ap.add_argument("--burst", type=int, default=2000, help="events in the burst phase, 0 to skip (default 2000)")
    ap.add_argument("--burst-threads", type=int, default=4, help="POST threads in the burst (default 4)")
    ap.add_argument("--warmup", type=int, default=10, help="events published (at 10/s, not measured) first")
    ap.add_argument("--threads", type=int, default=0, help="gunicorn --threads (default max(150, clients+50))")
    ap.add_argument("--batch-ms", type=float, default=None, help="MLOPS_WS_BATCH_MS (default: the server's default)")
    ap.add_argument("--ws-queue", type=int, default=None, help="MLOPS_WS_QUEUE (default: the server's default)")
    ap.add_argument("--heartbeat-s", type=float, default=None, help="MLOPS_WS_HEARTBEAT_S (default: the server's)")
    ap.add_argument("--no-client-ping", action="store_true",
                    help="clients only answer the server's pings (default: they also ping every heartbeat_s, like the browser)")
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    ap.add_argument("--drain-timeout", type=float, default=20.0, help="max wait for deliveries after the last POST")
    ap.add_argument("--wait-quiet", type=float, default=60.0, help="wait up to this many s for an idle machine first")
    ap.add_argument("--max-seconds", type=float, default=170.0, help="skip further client counts after this")
    ap.add_argument("--smoke", action="store_true",
                    help="a short run through every code path: clients 1,5; 20 events/s for 2 s; burst 100; no idle wait")
    args = ap.parse_args()
    if args.smoke:
        args.clients, args.rate, args.duration, args.burst, args.warmup = "1,5", 20.0, 2.0, 100, 5
        args.wait_quiet, args.drain_timeout, args.connect_timeout = 0.0, 10.0, 20.0
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
