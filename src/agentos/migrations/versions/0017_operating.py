"""operating agents: live config, capability switches, held agents, LLM calls, metric
rollups, budgets

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_config",
        sa.Column("agent", sa.String(63), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", Json, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("agent", "key", name=op.f("pk_agent_config")),
    )
    op.create_table(
        "capability_switches",
        sa.Column("agent", sa.String(63), nullable=False),
        sa.Column("capability", sa.String(63), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("agent", "capability", name=op.f("pk_capability_switches")),
    )
    op.create_table(
        "held_agents",
        sa.Column("agent", sa.String(63), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("until", UTCDateTime),
        sa.Column("detail", Json, nullable=False),
        sa.Column("since", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("agent", "reason", "ref", name=op.f("pk_held_agents")),
        sa.CheckConstraint("reason IN ('budget', 'capability')",
                           name=op.f("ck_held_agents_reason")),
    )
    op.create_table(
        "llm_calls",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("provider", sa.String(63), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Float),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.String(1000)),
        sa.Column("agent", sa.String(63)),
        sa.Column("task_id", sa.String(36)),
        sa.Column("attempt", sa.Integer),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_calls")),
        sa.CheckConstraint("outcome IN ('ok', 'error', 'refused')",
                           name=op.f("ck_llm_calls_outcome")),
    )
    op.create_index(op.f("ix_llm_calls_at"), "llm_calls", ["at"])
    op.create_index(op.f("ix_llm_calls_agent_at"), "llm_calls", ["agent", "at"])
    op.create_index(op.f("ix_llm_calls_model_at"), "llm_calls", ["model", "at"])
    op.create_index(op.f("ix_llm_calls_task_id"), "llm_calls", ["task_id"])
    op.create_table(
        "metric_series",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tags", Json, nullable=False),
        sa.Column("tags_key", binary_string(1000), nullable=False),
        sa.Column("agent", sa.String(63)),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_series")),
        sa.UniqueConstraint("name", "tags_key", name=op.f("uq_metric_series_name_tags_key")),
        sa.CheckConstraint("kind IN ('counter', 'gauge', 'histogram')",
                           name=op.f("ck_metric_series_kind")),
    )
    op.create_index(op.f("ix_metric_series_agent"), "metric_series", ["agent"],
                    sqlite_where=sa.text("agent IS NOT NULL"),
                    postgresql_where=sa.text("agent IS NOT NULL"))
    for table, extra in (("metric_rollups", [
            sa.Column("count", sa.BigInteger, nullable=False),
            sa.Column("sum", sa.Float, nullable=False),
            sa.Column("min", sa.Float, nullable=False),
            sa.Column("max", sa.Float, nullable=False),
            sa.Column("last", sa.Float, nullable=False)]),
            ("metric_histograms", [
                sa.Column("idx", sa.SmallInteger, nullable=False, autoincrement=False),
                sa.Column("count", sa.BigInteger, nullable=False)])):
        key = ["series_id", "resolution", "bucket"] + (["idx"] if table == "metric_histograms"
                                                       else [])
        op.create_table(
            table,
            sa.Column("series_id", Id, nullable=False),
            sa.Column("resolution", sa.Integer, nullable=False, autoincrement=False),
            sa.Column("bucket", sa.BigInteger, nullable=False, autoincrement=False),
            *extra,
            sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{table}")),
            sa.ForeignKeyConstraint(["series_id"], ["metric_series.id"], ondelete="CASCADE",
                                    name=op.f(f"fk_{table}_series_id_metric_series")),
        )
        op.create_index(op.f(f"ix_{table}_resolution_bucket"), table, ["resolution", "bucket"])
    op.create_table(
        "budgets",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(8), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("limit_value", sa.Float, nullable=False),
        sa.Column("hard", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        sa.UniqueConstraint("scope", "target", "metric", "period",
                            name=op.f("uq_budgets_scope_target_metric_period")),
        sa.CheckConstraint("scope IN ('agent', 'model', 'global')",
                           name=op.f("ck_budgets_scope")),
        sa.CheckConstraint("metric IN ('tokens', 'cost')", name=op.f("ck_budgets_metric")),
        sa.CheckConstraint("period IN ('day', 'month')", name=op.f("ck_budgets_period")),
    )
    op.create_table(
        "budget_usage",
        sa.Column("budget_id", Id, nullable=False),
        sa.Column("period_start", UTCDateTime, nullable=False),
        sa.Column("used", sa.Float, nullable=False),
        sa.Column("warned", sa.Boolean, nullable=False),
        sa.Column("exceeded", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("budget_id", "period_start", name=op.f("pk_budget_usage")),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.id"], ondelete="CASCADE",
                                name=op.f("fk_budget_usage_budget_id_budgets")),
    )


def downgrade() -> None:
    for table in ("budget_usage", "budgets", "metric_histograms", "metric_rollups",
                  "metric_series", "llm_calls", "held_agents", "capability_switches",
                  "agent_config"):
        op.drop_table(table)
