"""The database of one dashboard: engine, sessions and schema upgrade, chosen by URL.

``sqlite:///path/to/mlops.db`` (the default, a file in the data dir) or ``postgresql://user@host/db``
(run through psycopg 3). Call ``upgrade()`` once at start, before the first session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from storage import schema
from storage.errors import StorageUnavailable

log = logging.getLogger(__name__)

ACCEPTED_URLS = "sqlite:///path/to/mlops.db, sqlite:// (in memory) or postgresql://user@host:5432/db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10


def default_url(data_dir: Path) -> str:
    """The SQLite file used when no database URL is configured."""
    return f"sqlite:///{Path(data_dir) / 'mlops.db'}"


def normalize_url(url: str) -> URL:
    """Parse ``url`` and pin PostgreSQL to psycopg 3; raise ``ValueError`` for anything else."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        parsed = None
    backend, _, driver = (parsed.drivername if parsed else "").partition("+")
    if backend == "sqlite" and driver in {"", "pysqlite"}:
        return parsed.set(drivername="sqlite")
    if backend in {"postgresql", "postgres"} and driver in {"", "psycopg"}:
        return parsed.set(drivername="postgresql+psycopg")
    shown = parsed.render_as_string(hide_password=True) if parsed else url
    raise ValueError(f"unsupported database URL {shown!r}: use {ACCEPTED_URLS}")


def _dumps(value: Any) -> str:
    # models.Json already refuses NaN; allow_nan=False keeps raw JSON columns honest too.
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _in_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] not in {"wal", "memory"}:
            _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch a file to WAL, so readers (web requests) never wait for a writer (a training worker).

    The mode is kept in the file; only the first connections to a new file get here, and when
    several do at once SQLite answers "locked" without calling the busy handler, so retry.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if _in_memory(url):
            options["poolclass"] = StaticPool  # one connection, or every connection is a new empty database
        engine = create_engine(url, json_serializer=_dumps, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return create_engine(url, json_serializer=_dumps, pool_pre_ping=True, connect_args=connect_args)


class Database:
    """One database: a pooled engine shared by threads, and short transactional sessions."""

    def __init__(self, url: str):
        self.url = normalize_url(url)
        self.engine = _engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed when the block ends and rolled back if it raises.

        Objects stay readable after the block (no expiry on commit), e.g. for ``to_dict()``; a long
        task may ``commit()`` inside the block to make its progress visible early.
        """
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def upgrade(self) -> None:
        """Bring the schema to the newest migration; cheap when it is there, safe from many processes."""
        if self.dialect == "sqlite" and not _in_memory(self.url):
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            before = self.revision()
            if schema.upgrade(self.engine):
                log.info("database %s: schema upgraded from %s to %s", self.describe(), before, self.revision())
        except DBAPIError as exc:
            if exc.connection_invalidated or _is_connect_error(exc):
                raise self._unavailable(exc) from exc
            raise

    def revision(self) -> str | None:
        """The schema revision the database is at; None before the first ``upgrade()``."""
        with self.engine.connect() as conn:
            return schema.current_revision(conn)

    def schema_diff(self) -> list[Any]:
        """How the database schema differs from the models (Alembic diffs); empty when they match."""
        with self.engine.connect() as conn:
            return schema.diff(conn)

    def ping(self) -> None:
        """Raise ``StorageUnavailable`` when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise self._unavailable(exc) from exc

    def describe(self) -> str:
        """The URL without its password, for logs and health messages."""
        u = self.url
        return URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query).render_as_string()

    def close(self) -> None:
        """Close pooled connections; sessions opened afterwards reconnect."""
        self.engine.dispose()

    def _unavailable(self, exc: DBAPIError) -> StorageUnavailable:
        # The driver's words (host, port, server messages) go to the log, never into an answer.
        log.warning("database %s is unreachable: %s", self.describe(), " ".join(str(exc.orig or exc).split()))
        return StorageUnavailable("the database does not answer (the server log says why)")

    def __repr__(self) -> str:
        return f"Database({self.describe()!r})"


def _is_connect_error(exc: DBAPIError) -> bool:
    # SQLAlchemy attaches no statement when the failure is opening the connection itself.
    return exc.statement is None
