"""schedules submit tasks: the event becomes optional; the last task and error are kept

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Json

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.alter_column("event_type", existing_type=sa.String(255), nullable=True)
        batch.alter_column("payload", existing_type=Json, nullable=True)
        batch.alter_column("priority", existing_type=sa.SmallInteger, nullable=True)
        batch.add_column(sa.Column("last_task_id", sa.String(36)))
        batch.add_column(sa.Column("last_error", Json))
        batch.create_check_constraint("fires", "event_type IS NOT NULL OR task IS NOT NULL")


def downgrade() -> None:
    # a schedule that only submits a task has no place in the older schema
    op.execute("DELETE FROM schedules WHERE event_type IS NULL")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_constraint(op.f("ck_schedules_fires"), type_="check")
        batch.drop_column("last_error")
        batch.drop_column("last_task_id")
        batch.alter_column("priority", existing_type=sa.SmallInteger, nullable=False)
        batch.alter_column("payload", existing_type=Json, nullable=False)
        batch.alter_column("event_type", existing_type=sa.String(255), nullable=False)
