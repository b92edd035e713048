"""Ids are never reused: SQLite tables with integer ids get AUTOINCREMENT.

Without it SQLite hands the id of the newest deleted row to the next row, so a cache, a link, an
artifact folder or a log line naming a deleted pipeline could find its successor. SQLite cannot add
AUTOINCREMENT to a table, so each is rebuilt (a copy; rows, ids, constraints and indexes kept; the
activity index is made again with its descending order, which the copy loses). The copy records the
largest id present: an id deleted before this upgrade and above every remaining id can still be
handed out once. PostgreSQL's sequences never go back: nothing to do there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("datasets", "dataset_versions", "pipelines", "models", "alerts", "activity", "users", "api_tokens",
          "share_links")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    op.drop_index("ix_activity_created_at_id", table_name="activity")
    op.create_index(
        "ix_activity_created_at_id",
        "activity",
        [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
