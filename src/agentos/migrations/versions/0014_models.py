"""models: the ML model registry (name, version, type, framework, metrics, config,
artifact location, status training -> deployed -> archived)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, utcnow

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("type", sa.String(63), nullable=False),
        sa.Column("framework", sa.String(63)),
        sa.Column("description", sa.Text),
        sa.Column("metrics", Json, nullable=False),
        sa.Column("config", Json, nullable=False),
        sa.Column("artifact_uri", sa.String(2048)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("deployed_at", UTCDateTime),
        sa.Column("archived_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_models_name_version")),
        sa.CheckConstraint("status IN ('training', 'deployed', 'archived')",
                           name=op.f("ck_models_status")),
    )
    op.create_index(op.f("ix_models_name_status"), "models", ["name", "status"])


def downgrade() -> None:
    op.drop_table("models")
