"""tasks: the queue, the execution record of every attempt, worker instances

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, utcnow

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def _partial(condition: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("seq", Id, nullable=False, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agent", sa.String(63), nullable=False),
        sa.Column("agent_version", sa.String(128), nullable=False),
        sa.Column("input", Json, nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("retry_base", sa.Integer, nullable=False),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("timeout_s", sa.Float, nullable=False),
        sa.Column("run_at", UTCDateTime, nullable=False),
        sa.Column("lease_expires_at", UTCDateTime),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("causation_id", sa.String(64)),
        sa.Column("output", Json),
        sa.Column("error", Json),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("finished_at", UTCDateTime),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_tasks")),
        sa.UniqueConstraint("id", name=op.f("uq_tasks_id")),
        sa.CheckConstraint("status IN ('pending', 'scheduled', 'running', 'succeeded', "
                           "'failed', 'cancelled')", name=op.f("ck_tasks_status")),
        sa.CheckConstraint("priority BETWEEN 1 AND 10", name=op.f("ck_tasks_priority")),
    )
    op.create_index(op.f("ix_tasks_agent_priority_seq"), "tasks", ["agent", "priority", "seq"],
                    **_partial("status = 'pending'"))
    op.create_index(op.f("ix_tasks_run_at"), "tasks", ["run_at"],
                    **_partial("status = 'scheduled'"))
    op.create_index(op.f("ix_tasks_lease_expires_at"), "tasks", ["lease_expires_at"],
                    **_partial("status = 'running'"))
    op.create_index(op.f("ix_tasks_agent_status"), "tasks", ["agent", "status"])
    op.create_index(op.f("ix_tasks_correlation_id"), "tasks", ["correlation_id"])
    op.create_index(op.f("ix_tasks_idempotency_key"), "tasks", ["idempotency_key"], unique=True,
                    **_partial("idempotency_key IS NOT NULL"))

    op.create_table(
        "task_attempts",
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("duration_ms", sa.Float),
        sa.Column("error", Json),
        sa.Column("tokens", Json),
        sa.Column("cost", sa.Float),
        sa.PrimaryKeyConstraint("task_id", "number", name=op.f("pk_task_attempts")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"],
                                name=op.f("fk_task_attempts_task_id_tasks"), ondelete="CASCADE"),
    )


    op.create_table(
        "workers",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("agents", Json),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("running", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("last_heartbeat_at", UTCDateTime, nullable=False),
        sa.Column("stopped_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("task_attempts")
    op.drop_table("tasks")
