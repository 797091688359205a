"""locks: lock state per resource (holder, lease, fencing token) and the durable wait queue

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

revision = "0007"
down_revision = "0006"  # 0005 (schedule tasks) and 0006 (claim order) landed on main first
branch_labels = None
depends_on = None


def _partial(condition: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.create_table(
        "locks",
        sa.Column("resource", binary_string(264), nullable=False),
        sa.Column("type", sa.String(63), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("priority", sa.SmallInteger),
        sa.Column("acquired_at", UTCDateTime),
        sa.Column("expires_at", UTCDateTime),
        sa.Column("metadata", Json),
        sa.Column("task_id", sa.String(36)),
        sa.Column("agent", sa.String(63)),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("resource", name=op.f("pk_locks")),
    )
    op.create_index(op.f("ix_locks_expires_at"), "locks", ["expires_at"],
                    **_partial("owner IS NOT NULL"))
    op.create_index(op.f("ix_locks_owner"), "locks", ["owner"], **_partial("owner IS NOT NULL"))
    op.create_index(op.f("ix_locks_task_id"), "locks", ["task_id"],
                    **_partial("task_id IS NOT NULL"))
    op.create_index(op.f("ix_locks_type"), "locks", ["type"])

    op.create_table(
        "lock_waiters",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("resource", binary_string(264), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("ttl_s", sa.Float, nullable=False),
        sa.Column("metadata", Json),
        sa.Column("task_id", sa.String(36)),
        sa.Column("agent", sa.String(63)),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lock_waiters")),
        sa.UniqueConstraint("resource", "owner", name=op.f("uq_lock_waiters_resource_owner")),
    )
    op.create_index(op.f("ix_lock_waiters_resource_priority_id"), "lock_waiters",
                    ["resource", "priority", "id"])
    op.create_index(op.f("ix_lock_waiters_owner"), "lock_waiters", ["owner"])
    op.create_index(op.f("ix_lock_waiters_expires_at"), "lock_waiters", ["expires_at"])


def downgrade() -> None:
    op.drop_table("lock_waiters")
    op.drop_table("locks")
