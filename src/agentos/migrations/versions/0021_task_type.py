"""task type and metadata: what kind of work a task is, and its producer's labels

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Json

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("type", sa.String(63)))
        batch.add_column(sa.Column("metadata", Json))
    op.create_index("ix_tasks_type_seq", "tasks", ["type", "seq"],
                    sqlite_where=sa.text("type IS NOT NULL"),
                    postgresql_where=sa.text("type IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_tasks_type_seq", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("metadata")
        batch.drop_column("type")
