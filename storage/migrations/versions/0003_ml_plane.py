"""The ML plane: model signatures and prediction totals, job progress and ownership, per-minute predictions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("signature", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("predictions", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("step", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("worker", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "prediction_minutes",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_sum", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_prediction_minutes_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("model_id", "minute", name=op.f("pk_prediction_minutes")),
    )


def downgrade() -> None:
    op.drop_table("prediction_minutes")
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("worker")
        batch.drop_column("total")
        batch.drop_column("step")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("predictions")
        batch.drop_column("signature")
