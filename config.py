"""Settings for the dashboard, read once from ``MLOPS_*`` environment variables.

Every variable is parsed strictly: a value that does not parse stops the start with a message naming
the variable, the value and what was expected. ``Settings.from_env()`` is the only reader of the
environment; everything else takes a ``Settings``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class ConfigError(ValueError):
    """A setting has a value the dashboard cannot use."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected one of true/false, 1/0, yes/no, on/off")


def _int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"expected an integer {bound}")
        return value

    return parse


def _float(minimum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not value >= minimum or value == float("inf"):
            raise ValueError(f"expected a finite number >= {minimum}")
        return value

    return parse


def _event_log_url(raw: str) -> str:
    url = raw.strip()
    scheme = urlparse(url).scheme
    if scheme not in {"memory", "redis", "rediss"}:
        raise ValueError("expected memory:// or redis://host:port/db")
    return url


def _database_url(raw: str) -> str:
    from storage.db import normalize_url  # the one judge of what the storage layer can open

    normalize_url(raw)
    return raw.strip()


def _prefix(raw: str) -> str:
    value = "/" + raw.strip().strip("/")
    return value if value == "/" else value + "/"


def _host(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("expected a host name or address")
    return value


AUTH_MODES = ("auto", "local", "on")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def _auth(raw: str) -> str:
    value = raw.strip().lower()
    if value not in AUTH_MODES:
        raise ValueError(f"expected one of {', '.join(AUTH_MODES)}")
    return value


def _names(raw: str) -> tuple[str, ...]:
    """A comma-separated list, e.g. ``MLOPS_ALLOWED_HOSTS=dash.example.com,10.0.0.5``."""
    return tuple(part.strip().lower() for part in raw.split(",") if part.strip())


def _origins(raw: str) -> tuple[str, ...]:
    values = _names(raw)
    for value in values:
        parsed = urlparse(value)
        if value != "*" and (parsed.scheme not in {"http", "https"} or not parsed.netloc or parsed.path not in {"", "/"}):
            raise ValueError(f"{value!r} is not an origin: expected scheme://host[:port], comma-separated, or *")
    return tuple(v.rstrip("/") for v in values)


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False

# (environment variable, Settings field, parser) for every setting read from the environment.
ENV_VARS: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("MLOPS_HOST", "host", _host),
    ("MLOPS_PORT", "port", _int(1, 65535)),
    ("MLOPS_DATA_DIR", "data_dir", lambda raw: Path(raw.strip()).expanduser()),
    ("MLOPS_EVENT_LOG", "event_log", _event_log_url),
    ("MLOPS_STATS_INTERVAL_S", "stats_interval_s", _float(0.05)),
    ("MLOPS_HISTORY", "history", _int(100)),
    ("MLOPS_HISTORY_MAX_AGE_S", "history_max_age_s", _float(1.0)),
    ("MLOPS_URL_PREFIX", "url_prefix", _prefix),
    ("MLOPS_WS_QUEUE", "ws_queue", _int(10)),
    ("MLOPS_WS_BATCH_MS", "ws_batch_ms", _float(0.0)),
    ("MLOPS_WS_HEARTBEAT_S", "ws_heartbeat_s", _float(0.5)),
    ("MLOPS_CHART_WINDOW_S", "chart_window_s", _float(10.0)),
    ("MLOPS_MIN_FREE_DISK_MB", "min_free_disk_mb", _int(0)),
    ("MLOPS_DATABASE_URL", "database_url", _database_url),
    ("MLOPS_MAX_UPLOAD_MB", "max_upload_mb", _int(1)),
    ("MLOPS_TRAINING_WORKERS", "training_workers", _int(1, 64)),
    ("MLOPS_TRAINING_QUEUE", "training_queue", _int(1)),
    ("MLOPS_DEBUG", "debug", _bool),
    ("MLOPS_BACKGROUND", "background", _bool),
    ("MLOPS_WS_MAX_CLIENTS", "ws_max_clients", _int(1)),
    ("MLOPS_WS_SEND_TIMEOUT_S", "ws_send_timeout_s", _float(0.1)),
    ("MLOPS_REQUEST_TIMEOUT_S", "request_timeout_s", _float(1.0)),
    ("MLOPS_HISTORY_MAX_MB", "history_max_mb", _float(1.0)),
    ("MLOPS_TRAINING_STALL_S", "training_stall_s", _float(1.0)),
    ("MLOPS_AUTH", "auth", _auth),
    ("MLOPS_SECRET_KEY", "secret_key", str.strip),
    ("MLOPS_ALLOWED_HOSTS", "allowed_hosts", _names),
    ("MLOPS_ALLOWED_ORIGINS", "allowed_origins", _origins),
    ("MLOPS_EMBED_ORIGINS", "embed_origins", _origins),
    ("MLOPS_ADMIN_USER", "admin_user", str.strip),
    ("MLOPS_ADMIN_PASSWORD", "admin_password", str),
    ("MLOPS_SESSION_HOURS", "session_hours", _float(0.01)),
    ("MLOPS_LOGIN_ATTEMPTS", "login_attempts", _int(1)),
    ("MLOPS_SECURE_COOKIES", "secure_cookies", _bool),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """All settings of one dashboard instance; see README.md "Configuration"."""

    host: str = "127.0.0.1"
    port: int = 8050
    data_dir: Path = Path("data")
    event_log: str = "memory://"
    stats_interval_s: float = 1.0
    history: int = 10_000
    history_max_age_s: float = 24 * 3600.0
    url_prefix: str = "/"
    ws_queue: int = 2_000
    ws_batch_ms: float = 5.0
    ws_heartbeat_s: float = 15.0
    chart_window_s: float = 600.0
    min_free_disk_mb: int = 1024
    database_url: str = ""  # empty: a SQLite file in data_dir
    max_upload_mb: int = 1024
    training_workers: int = 2  # training processes running at once, per dashboard process
    training_queue: int = 100  # jobs waiting for a worker, per dashboard process; more are refused (429)
    debug: bool = False
    background: bool = True
    ws_max_clients: int = 1000  # open WebSockets per process; more are refused (they retry with backoff)
    ws_send_timeout_s: float = 10.0  # a client that takes no data for this long is closed (1013)
    request_timeout_s: float = 60.0  # a request whose body stalls this long is dropped (python app.py)
    history_max_mb: float = 64.0  # event history kept for replay, in bytes as well as MLOPS_HISTORY events
    training_stall_s: float = 900.0  # a training job that reports no progress for this long fails (stalled)
    auth: str = "auto"  # auto: local on a loopback host, on otherwise
    secret_key: str = ""  # empty: generated once and kept in <data dir>/secret_key (mode 0600)
    allowed_hosts: tuple[str, ...] = ()  # empty: the defaults of the mode (README, Security)
    allowed_origins: tuple[str, ...] = ()  # other origins whose pages may write (besides the page's own)
    embed_origins: tuple[str, ...] = ("*",)  # who may frame /embed/* pages (frame-ancestors)
    admin_user: str = ""
    admin_password: str = ""
    session_hours: float = 12.0  # a login lasts this long
    login_attempts: int = 5  # failed logins per user and per address in 15 minutes before 429
    secure_cookies: bool | None = None  # None: Secure when the request came over HTTPS

    def __post_init__(self) -> None:
        # Code that builds Settings directly (tests, notebooks) may pass a str path or prefix.
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "url_prefix", _prefix(self.url_prefix))
        if self.auth not in AUTH_MODES:
            raise ConfigError(f"MLOPS_AUTH={self.auth!r} is invalid: expected one of {', '.join(AUTH_MODES)}")
        loopback = is_loopback(self.host)
        if self.auth == "local" and not loopback:
            raise ConfigError(
                f"MLOPS_AUTH=local serves one person on this machine, but MLOPS_HOST={self.host!r} lets other "
                "machines connect: set MLOPS_AUTH=on (with MLOPS_ADMIN_USER and MLOPS_ADMIN_PASSWORD) or "
                "MLOPS_HOST=127.0.0.1"
            )
        if self.debug and not loopback:
            raise ConfigError(
                f"MLOPS_DEBUG=true shows a debugger that runs code to anyone who reaches MLOPS_HOST={self.host!r}: "
                "use MLOPS_HOST=127.0.0.1 for debugging, or MLOPS_DEBUG=false"
            )
        if bool(self.admin_user) != bool(self.admin_password):
            raise ConfigError("MLOPS_ADMIN_USER and MLOPS_ADMIN_PASSWORD go together: set both or neither")

    @property
    def auth_mode(self) -> str:
        """``local`` (no login, this machine only) or ``on`` (a login or token for everything)."""
        if self.auth == "auto":
            return "local" if is_loopback(self.host) else "on"
        return self.auth

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment (``os.environ`` by default), then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field, parse in ENV_VARS:
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[field] = parse(raw)
            except ValueError as exc:
                if "PASSWORD" in name or "SECRET" in name:
                    raw = "***"
                reason = str(exc) if not str(exc).startswith("invalid literal") else "not a number"
                raise ConfigError(f"{name}={raw!r} is invalid: {reason}") from None
        values.update(overrides)
        return cls(**values)

    @property
    def chart_points(self) -> int:
        """How many samples the live charts keep (the window divided by the sampling interval)."""
        return max(10, int(round(self.chart_window_s / self.stats_interval_s)))
