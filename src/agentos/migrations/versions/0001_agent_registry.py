"""agent registry: versions of agent definitions and their search tables

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_versions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("sort_key", binary_string(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(200)),
        sa.Column("description", sa.Text),
        sa.Column("role", sa.Text),
        sa.Column("owner", sa.String(200)),
        sa.Column("definition", Json, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("published_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_agent_versions"),
        sa.UniqueConstraint("name", "version", name="uq_agent_versions_name_version"),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'deprecated', 'archived')",
            name=op.f("ck_agent_versions_status"),
        ),
    )
    op.create_index("ix_agent_versions_name_status_sort_key", "agent_versions",
                    ["name", "status", "sort_key"])
    op.create_index("ix_agent_versions_status", "agent_versions", ["status"])

    op.create_table(
        "agent_tags",
        sa.Column("agent_version_id", Id, nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("agent_version_id", "tag", name="pk_agent_tags"),
        sa.ForeignKeyConstraint(["agent_version_id"], ["agent_versions.id"],
                                name="fk_agent_tags_agent_version_id_agent_versions",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_agent_tags_tag", "agent_tags", ["tag"])

    op.create_table(
        "agent_capabilities",
        sa.Column("agent_version_id", Id, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("agent_version_id", "name", name="pk_agent_capabilities"),
        sa.ForeignKeyConstraint(["agent_version_id"], ["agent_versions.id"],
                                name="fk_agent_capabilities_agent_version_id_agent_versions",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_agent_capabilities_name", "agent_capabilities", ["name"])

    op.create_table(
        "agent_triggers",
        sa.Column("agent_version_id", Id, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("event_glob", sa.String(255), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("filter", Json, nullable=False),
        sa.Column("capability", sa.String(63)),
        sa.PrimaryKeyConstraint("agent_version_id", "position", name="pk_agent_triggers"),
        sa.ForeignKeyConstraint(["agent_version_id"], ["agent_versions.id"],
                                name="fk_agent_triggers_agent_version_id_agent_versions",
                                ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("agent_triggers")
    op.drop_table("agent_capabilities")
    op.drop_table("agent_tags")
    op.drop_table("agent_versions")
