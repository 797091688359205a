"""task capability: the capability of its agent a task needs (it waits while it is off)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("capability", sa.String(63)))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("capability")
