"""Alembic environment: migrate the connection ``storage.schema`` hands over, or, from the CLI,
the database at ``MLOPS_DATABASE_URL`` (default: ``mlops.db`` in ``MLOPS_DATA_DIR`` or ``./data``)."""

from __future__ import annotations

import logging.config
import os
from pathlib import Path

from alembic import context

from storage.db import Database, default_url, normalize_url
from storage.schema import context_options, migration_lock

config = context.config


def cli_url() -> str:
    return os.environ.get("MLOPS_DATABASE_URL") or default_url(Path(os.environ.get("MLOPS_DATA_DIR") or "data"))


def run_offline() -> None:
    """Write the SQL to stdout (``alembic upgrade head --sql``) instead of running it."""
    url = normalize_url(cli_url())
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **context_options())
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # storage.schema.upgrade: it owns the transaction and the lock
        context.configure(connection=connection, **context_options())
        with context.begin_transaction():
            context.run_migrations()
        return
    database = Database(cli_url())
    try:
        with migration_lock(database.engine) as conn:
            context.configure(connection=conn, **context_options())
            with context.begin_transaction():
                context.run_migrations()
    finally:
        database.close()


if config.config_file_name is not None:  # only the CLI has an ini file; the app's logging is its own
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_offline()
else:
    run_online()
