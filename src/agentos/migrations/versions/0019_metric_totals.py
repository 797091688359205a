"""metric totals: each series' lifetime count, sum and last value, for /metrics

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric_series") as batch:
        batch.add_column(sa.Column("total_count", sa.BigInteger, nullable=False,
                                   server_default=sa.text("0")))
        batch.add_column(sa.Column("total_sum", sa.Float, nullable=False,
                                   server_default=sa.text("0")))
        batch.add_column(sa.Column("last_value", sa.Float))
        batch.add_column(sa.Column("last_at", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("metric_series") as batch:
        for column in ("last_at", "last_value", "total_sum", "total_count"):
            batch.drop_column(column)
