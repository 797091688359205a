"""workers.unloadable: the agents whose handler a worker could not load, and why

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Json

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("unloadable", Json))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("unloadable")
