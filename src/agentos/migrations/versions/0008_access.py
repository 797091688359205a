"""access: users, credentials (login tokens and API keys), failed logins, the audit chain

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GENESIS = "0" * 64  # the hash the first audit row points back to

# the audit log is append-only: the database itself refuses to change a row
_PG_GUARD = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
"""
_SQLITE_GUARD = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("username", sa.String(63), nullable=False),
        sa.Column("email", sa.String(255)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("last_login_at", UTCDateTime),
        sa.Column("password_changed_at", UTCDateTime, nullable=False,
                  server_default=utcnow()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')", name=op.f("ck_users_role")),
    )

    op.create_table(
        "credentials",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("secret_hash", binary_string(64), nullable=False),
        sa.Column("prefix", sa.String(16)),
        sa.Column("name", sa.String(100)),
        sa.Column("user_id", Id),
        sa.Column("role", sa.String(16)),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("expires_at", UTCDateTime),
        sa.Column("last_used_at", UTCDateTime),
        sa.Column("revoked_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_credentials_secret_hash")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_credentials_user_id_users"), ondelete="CASCADE"),
        sa.CheckConstraint("kind IN ('session', 'api_key')", name=op.f("ck_credentials_kind")),
    )
    op.create_index(op.f("ix_credentials_user_id"), "credentials", ["user_id"])
    op.create_index(op.f("ix_credentials_kind_created_at"), "credentials",
                    ["kind", "created_at"])

    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(320), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failed_at", UTCDateTime, nullable=False),
        sa.Column("locked_until", UTCDateTime),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )

    op.create_table(
        "audit_log",
        sa.Column("seq", Id, nullable=False, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(16)),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("resource_type", sa.String(63), nullable=False),
        sa.Column("resource_id", sa.String(255)),
        sa.Column("details", Json, nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.String(512)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.CheckConstraint("outcome IN ('ok', 'denied')", name=op.f("ck_audit_log_outcome")),
    )
    op.create_index(op.f("ix_audit_log_actor_seq"), "audit_log", ["actor", "seq"])
    op.create_index(op.f("ix_audit_log_action_seq"), "audit_log", ["action", "seq"])
    op.create_index(op.f("ix_audit_log_resource_type_resource_id_seq"), "audit_log",
                    ["resource_type", "resource_id", "seq"])
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("last_seq", Id, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.execute(f"INSERT INTO audit_head (id, last_seq, last_hash, prev_hash) "
               f"VALUES (1, 0, '{GENESIS}', '{GENESIS}')")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
    else:
        for statement in _SQLITE_GUARD:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    for table in ("audit_head", "audit_log", "login_failures", "credentials", "users"):
        op.drop_table(table)
