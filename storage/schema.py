"""Schema migrations with Alembic, driven from code: the app needs no ``alembic.ini`` to upgrade.

``upgrade(engine)`` is safe at every start and from several processes starting at once: it returns
at once when the schema is current, and otherwise runs the migrations in one transaction holding a
lock (a PostgreSQL advisory lock, SQLite's write lock), so a second process waits and then finds
nothing to do.

For developers adding a revision (``storage/alembic.ini`` exists for the CLI only)::

    alembic -c storage/alembic.ini upgrade head
    alembic -c storage/alembic.ini revision --autogenerate --rev-id 0002 -m "add something"

The CLI works on ``MLOPS_DATABASE_URL`` (default: ``mlops.db`` in ``MLOPS_DATA_DIR``, else ``./data``).
Review what autogenerate wrote: it does not see CHECK constraints, and migrations never import the
models, so a revision stays what it was when written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, select

from storage.errors import SchemaError
from storage.models import Base, Json, UTCDateTime

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Advisory locks are per database, so one constant key serialises upgrades of one database only.
PG_LOCK_KEY = int.from_bytes(b"mlops-db", "big")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code; ``env.py`` migrates ``connection`` when one is given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our column types as the plain types they store, so revisions never import the models."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, Json):
        return "sa.JSON()"
    return False


def context_options() -> dict[str, Any]:
    """Options shared by ``env.py`` and ``diff``, so the check matches what autogenerate would write."""
    return {
        "target_metadata": Base.metadata,
        "compare_type": True,
        "render_as_batch": True,  # SQLite can only alter tables by copying them
        "render_item": render_item,
    }


def head_revision() -> str:
    """The newest revision in ``storage/migrations``: what ``upgrade`` brings a database to."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SchemaError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None before the first upgrade."""
    return MigrationContext.configure(connection).get_current_revision()


def diff(connection: Connection) -> list[Any]:
    """Differences between the database schema and the models (empty when they match)."""
    return compare_metadata(MigrationContext.configure(connection, opts=context_options()), Base.metadata)


def upgrade(engine: Engine) -> bool:
    """Migrate the database to the newest revision; True if any migration ran."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    with engine.connect() as conn:
        if _known_revision(conn, script) == head:
            return False
    with migration_lock(engine) as conn:
        if _known_revision(conn, script) == head:  # another process did it while we waited
            return False
        command.upgrade(alembic_config(conn), "head")
        return True


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction holding the migration lock, committed when the block ends.

    Concurrent holders wait for each other: a PostgreSQL advisory lock, SQLite's write lock.
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # SQLite alters a table by copying it and dropping the original; with foreign keys on,
            # the drop would cascade into other tables. The pragma is ignored inside a transaction,
            # so set it before and check the keys before committing (sqlite.org/lang_altertable.html).
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            if sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits up to busy_timeout for other writers
            else:
                conn.execute(select(func.pg_advisory_xact_lock(PG_LOCK_KEY)))
            yield conn
            if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                raise SchemaError(f"the migration left rows with broken foreign keys: {broken[:5]}")
            conn.commit()  # also releases the advisory lock
        except BaseException:
            conn.rollback()
            raise
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _known_revision(conn: Connection, script: ScriptDirectory) -> str | None:
    current = current_revision(conn)
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise SchemaError(
            f"the database is at schema revision {current!r}, which this code does not know (newest "
            f"known: {script.get_current_head()!r}): it was upgraded by a newer version of the dashboard"
        )
    return current
