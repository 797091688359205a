"""events: the log, its head counter, routing, durable subscriptions, schedules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", Id, nullable=False, autoincrement=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("type", binary_string(255), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("causation_id", sa.String(64)),
        sa.Column("run_id", sa.String(64)),
        sa.Column("subject", sa.String(255)),
        sa.Column("dedup_key", sa.String(255)),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    op.create_index(op.f("ix_events_correlation_id_seq"), "events", ["correlation_id", "seq"])
    op.create_index(op.f("ix_events_type_seq"), "events", ["type", "seq"])
    op.create_index(op.f("ix_events_run_id_seq"), "events", ["run_id", "seq"],
                    sqlite_where=sa.text("run_id IS NOT NULL"),
                    postgresql_where=sa.text("run_id IS NOT NULL"))
    op.create_index(op.f("ix_events_dedup_key"), "events", ["dedup_key"], unique=True,
                    sqlite_where=sa.text("dedup_key IS NOT NULL"),
                    postgresql_where=sa.text("dedup_key IS NOT NULL"))

    op.create_table(
        "event_log_head",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("last_seq", Id, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_log_head")),
    )
    op.execute("INSERT INTO event_log_head (id, last_seq) VALUES (1, 0)")

    op.create_table(
        "route_queue",
        sa.Column("rank", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("seq", Id, nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("rank", "seq", name=op.f("pk_route_queue")),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "routes",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("event_seq", Id, nullable=False),
        sa.Column("agent", sa.String(63), nullable=False),
        sa.Column("agent_version", sa.String(128), nullable=False),
        sa.Column("trigger_index", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String(36)),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routes")),
        sa.UniqueConstraint("event_seq", "agent", "trigger_index",
                            name=op.f("uq_routes_event_seq_agent_trigger_index")),
        sa.ForeignKeyConstraint(["event_seq"], ["events.seq"],
                                name=op.f("fk_routes_event_seq_events"), ondelete="CASCADE"),
    )

    op.create_table(
        "subscriptions",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("type_glob", sa.String(255), nullable=False),
        sa.Column("cursor_seq", Id, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("acked_at", UTCDateTime),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_subscriptions")),
    )

    op.create_table(
        "schedules",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("cron", sa.String(255)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("interval_s", sa.Float),
        sa.Column("run_at", UTCDateTime),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("task", Json),
        sa.Column("misfire", sa.String(8), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("next_run_at", UTCDateTime),
        sa.Column("last_run_at", UTCDateTime),
        sa.Column("last_event_id", sa.String(36)),
        sa.Column("fire_count", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedules")),
        sa.CheckConstraint("kind IN ('cron', 'interval', 'once')", name=op.f("ck_schedules_kind")),
        sa.CheckConstraint("misfire IN ('skip', 'once')", name=op.f("ck_schedules_misfire")),
    )
    op.create_index(op.f("ix_schedules_next_run_at"), "schedules", ["next_run_at"])


def downgrade() -> None:
    for table in ("schedules", "subscriptions", "routes", "route_queue", "event_log_head",
                  "events"):
        op.drop_table(table)
