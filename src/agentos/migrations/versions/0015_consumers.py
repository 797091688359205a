"""consumers: cursors of the event log's consumers (projections), and projections' JSON state

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consumers",
        sa.Column("name", sa.String(127), nullable=False),
        sa.Column("cursor_seq", Id, nullable=False),
        sa.Column("applied", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("rebuild_started_at", UTCDateTime),
        sa.Column("rebuild_target", Id),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_consumers")),
    )
    op.create_table(
        "projection_state",
        sa.Column("projection", sa.String(63), nullable=False),
        sa.Column("key", binary_string(255), nullable=False),
        sa.Column("value", Json, nullable=False),
        sa.PrimaryKeyConstraint("projection", "key", name=op.f("pk_projection_state")),
    )


def downgrade() -> None:
    op.drop_table("projection_state")
    op.drop_table("consumers")
