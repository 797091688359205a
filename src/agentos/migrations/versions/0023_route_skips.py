"""routes.skipped: why a trigger the event matched did not fire (a capability switched off)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routes") as batch:
        batch.add_column(sa.Column("skipped", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("routes") as batch:
        batch.drop_column("skipped")
