"""workflows: definitions, runs, steps, their tasks, transitions, waits, artifacts;
approvals

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_STEP_STATUS = ("status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', "
                "'cancelled')")


def _fk(table: str, column: str = "run_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["workflow_runs.id"], ondelete="CASCADE",
                                   name=op.f(f"fk_{table}_{column}_workflow_runs"))


def upgrade() -> None:
    op.create_table(
        "workflow_versions",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("sort_key", binary_string(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("definition", Json, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("published_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_workflow_versions_name_version")),
        sa.CheckConstraint("status IN ('draft', 'published', 'deprecated', 'archived')",
                           name=op.f("ck_workflow_versions_status")),
    )
    op.create_index(op.f("ix_workflow_versions_name_status_sort_key"), "workflow_versions",
                    ["name", "status", "sort_key"])

    op.create_table(
        "workflow_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workflow", sa.String(63), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", Json, nullable=False),
        sa.Column("output", Json),
        sa.Column("error", Json),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("parent_run_id", sa.String(36)),
        sa.Column("parent_step", sa.String(63)),
        sa.Column("depth", sa.SmallInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("finished_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_runs")),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled')",
                           name=op.f("ck_workflow_runs_status")),
    )
    op.create_index(op.f("ix_workflow_runs_workflow_id"), "workflow_runs", ["workflow", "id"])
    op.create_index(op.f("ix_workflow_runs_status_id"), "workflow_runs", ["status", "id"])
    op.create_index(op.f("ix_workflow_runs_correlation_id"), "workflow_runs",
                    ["correlation_id"])
    op.create_index(op.f("ix_workflow_runs_parent_run_id"), "workflow_runs", ["parent_run_id"],
                    sqlite_where=sa.text("parent_run_id IS NOT NULL"),
                    postgresql_where=sa.text("parent_run_id IS NOT NULL"))
    op.create_index(op.f("ix_workflow_runs_idempotency_key"), "workflow_runs",
                    ["idempotency_key"], unique=True,
                    sqlite_where=sa.text("idempotency_key IS NOT NULL"),
                    postgresql_where=sa.text("idempotency_key IS NOT NULL"))

    op.create_table(
        "workflow_steps",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("items", Json),
        sa.Column("items_started", sa.Integer),
        sa.Column("items_ended", sa.Integer),
        sa.Column("items_failed", sa.Integer),
        sa.Column("output", Json),
        sa.Column("error", Json),
        sa.Column("approval_id", sa.String(36)),
        sa.Column("sub_run_id", sa.String(36)),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_workflow_steps")),
        _fk("workflow_steps"),
        sa.CheckConstraint(_STEP_STATUS, name=op.f("ck_workflow_steps_status")),
    )

    op.create_table(
        "workflow_step_tasks",
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(63), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("output", Json),
        sa.Column("error", Json),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_workflow_step_tasks")),
        _fk("workflow_step_tasks"),
        sa.UniqueConstraint("run_id", "step", "round", "item",
                            name=op.f("uq_workflow_step_tasks_run_id_step_round_item")),
    )

    op.create_table(
        "workflow_transitions",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(63)),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_transitions")),
        _fk("workflow_transitions"),
    )
    op.create_index(op.f("ix_workflow_transitions_run_id_id"), "workflow_transitions",
                    ["run_id", "id"])

    op.create_table(
        "workflow_waits",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(63), nullable=False),
        sa.Column("event_glob", sa.String(255), nullable=False),
        sa.Column("filter", Json, nullable=False),
        sa.Column("after_seq", Id, nullable=False),
        sa.Column("expires_at", UTCDateTime),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_workflow_waits")),
        _fk("workflow_waits"),
    )
    op.create_index(op.f("ix_workflow_waits_expires_at"), "workflow_waits", ["expires_at"])

    op.create_table(
        "workflow_artifacts",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("name", binary_string(255), nullable=False),
        sa.Column("step", sa.String(63)),
        sa.Column("task_id", sa.String(36)),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", Json),
        sa.Column("data", sa.LargeBinary),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("run_id", "name", name=op.f("pk_workflow_artifacts")),
        _fk("workflow_artifacts"),
        sa.CheckConstraint("kind IN ('json', 'bytes')", name=op.f("ck_workflow_artifacts_kind")),
    )

    op.create_table(
        "approvals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("details", Json, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("on_timeout", sa.String(8), nullable=False),
        sa.Column("expires_at", UTCDateTime),
        sa.Column("run_id", sa.String(36)),
        sa.Column("step", sa.String(63)),
        sa.Column("task_id", sa.String(36)),
        sa.Column("request_key", sa.String(300)),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("decided_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected', 'expired', "
                           "'cancelled')", name=op.f("ck_approvals_status")),
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')",
                           name=op.f("ck_approvals_role")),
        sa.CheckConstraint("on_timeout IN ('approve', 'reject', 'fail')",
                           name=op.f("ck_approvals_on_timeout")),
    )
    op.create_index(op.f("ix_approvals_status_id"), "approvals", ["status", "id"])
    op.create_index(op.f("ix_approvals_expires_at"), "approvals", ["expires_at"],
                    sqlite_where=sa.text("status = 'pending'"),
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index(op.f("ix_approvals_run_id"), "approvals", ["run_id"])
    op.create_index(op.f("ix_approvals_request_key"), "approvals", ["request_key"], unique=True,
                    sqlite_where=sa.text("request_key IS NOT NULL"),
                    postgresql_where=sa.text("request_key IS NOT NULL"))


def downgrade() -> None:
    op.drop_table("approvals")
    for table in ("workflow_artifacts", "workflow_waits", "workflow_transitions",
                  "workflow_step_tasks", "workflow_steps", "workflow_runs",
                  "workflow_versions"):
        op.drop_table(table)
