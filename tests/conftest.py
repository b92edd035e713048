"""Shared fixtures: settings on a temp dir, a live server on a free port, Redis, Chromium options."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from config import Settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("MLOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


def need(condition: bool, reason: str) -> None:
    """Skip locally when a real dependency is missing; in CI a missing dependency fails the test."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last value."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis event-log URL with a stream of its own, deleted afterwards."""
    need(redis_available(), f"Redis at {REDIS_URL} is not answering")
    stream = f"mlops-test:{uuid.uuid4().hex}"
    yield f"{REDIS_URL}?stream={stream}"
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.keys(f"{stream}*") or [stream])


@contextlib.contextmanager
def postgres_database(prefix: str = "mlops_test") -> Iterator[str]:
    """A fresh PostgreSQL database of its own, dropped afterwards (for fixtures of any scope)."""
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        need(False, f"PostgreSQL at {POSTGRES_URL} is not answering: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own, dropped afterwards."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a test app: temp data dir, fast heartbeat, no background sampler."""
    return Settings(data_dir=tmp_path / "data", background=False, ws_heartbeat_s=5.0, min_free_disk_mb=0)


class LiveServer:
    """A real threaded Werkzeug server (WebSocket capable) for one app, on a free port."""

    def __init__(self, dash_app):
        self.app = dash_app
        self.runtime = dash_app.mlops
        from app import timed_request_handler  # the handler python app.py serves with

        handler = timed_request_handler(dash_app.mlops.settings.request_timeout_s)
        self._server = make_server("127.0.0.1", 0, dash_app.server, threaded=True, request_handler=handler)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.runtime.stop()
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def make_live_server():
    from app import create_app

    servers: list[LiveServer] = []

    def factory(settings: Settings) -> LiveServer:
        server = LiveServer(create_app(settings))
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(make_live_server, settings) -> LiveServer:
    return make_live_server(settings)


def pytest_setup_options():
    """Chromium options for dash.testing: Debian's browser, headless, as root, no background network."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    return options


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failed run: every test here needs only what CI installs."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if IN_CI and skipped and session.exitstatus == 0:
        reporter.write_line(f"error: {skipped} test(s) skipped in CI", red=True)
        session.exitstatus = 1
