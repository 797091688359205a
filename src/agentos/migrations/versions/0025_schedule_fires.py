"""schedule_fires: a row per tick a schedule fired (the tick, when, what it made)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Json, UTCDateTime

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("schedule", sa.String(63), nullable=False),
        sa.Column("scheduled_for", UTCDateTime, nullable=False),
        sa.Column("fired_at", UTCDateTime, nullable=False),
        sa.Column("catch_up", sa.Boolean, nullable=False),
        sa.Column("missed", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(36)),
        sa.Column("task_id", sa.String(36)),
        sa.Column("error", Json),
        sa.ForeignKeyConstraint(["schedule"], ["schedules.name"],
                                name=op.f("fk_schedule_fires_schedule_schedules"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
        sa.UniqueConstraint("schedule", "scheduled_for",
                            name=op.f("uq_schedule_fires_schedule_scheduled_for")),
    )
    op.create_index(op.f("ix_schedule_fires_schedule_id"), "schedule_fires",
                    ["schedule", "id"])


def downgrade() -> None:
    op.drop_table("schedule_fires")
