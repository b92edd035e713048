"""Errors the storage layer raises on purpose, so callers can map them once at the edge."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# PostgreSQL SQLSTATEs that mean "cannot talk to the database now", not "this statement is wrong":
# class 08 (connection exception), 57P01-57P03 (shut down, crashed, not yet accepting connections),
# 3D000 (the database does not exist, e.g. dropped under us), 53300 (too many connections).
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03", "3D000", "53300")
# SQLite's "try again" answers: another process holds the write lock past the busy timeout.
_SQLITE_BUSY = ("database is locked", "database is busy", "unable to open database file")


class StorageError(RuntimeError):
    """Base of the storage layer's own errors."""


class StorageUnavailable(StorageError):
    """The database cannot be reached right now; callers retry or degrade."""


class SchemaError(StorageError):
    """The database schema cannot be brought to what this code expects."""


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (retry later), not that a statement failed."""
    if isinstance(exc, StorageUnavailable):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    # SQLAlchemy flags lost connections; it attaches no statement when opening the connection failed.
    if exc.connection_invalidated or exc.statement is None:
        return True
    state = getattr(exc.orig, "sqlstate", None) or ""
    if state.startswith(_UNREACHABLE_STATES):
        return True
    return type(exc.orig).__module__.startswith("sqlite3") and any(text in str(exc.orig) for text in _SQLITE_BUSY)
