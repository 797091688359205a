"""knowledge: documents with full-text search on both backends

SQLite: an FTS5 table over the documents' title and content (external content,
kept in step by triggers; the porter stemmer over unicode61 tokens), ranked with
BM25. PostgreSQL: a generated tsvector column (English configuration, title
weighted above content) with a GIN index, ranked with ts_rank. Neither is in
tables.py (``unmodelled``): SQLAlchemy cannot describe them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5(title, content, "
    "content='knowledge_documents', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER knowledge_fts_insert AFTER INSERT ON knowledge_documents BEGIN "
    "INSERT INTO knowledge_fts (rowid, title, content) VALUES (new.id, new.title, new.content); "
    "END",
    "CREATE TRIGGER knowledge_fts_delete AFTER DELETE ON knowledge_documents BEGIN "
    "INSERT INTO knowledge_fts (knowledge_fts, rowid, title, content) "
    "VALUES ('delete', old.id, old.title, old.content); END",
    # only when the text changed: a metadata-only update leaves the index alone
    "CREATE TRIGGER knowledge_fts_update AFTER UPDATE OF title, content ON knowledge_documents "
    "BEGIN INSERT INTO knowledge_fts (knowledge_fts, rowid, title, content) "
    "VALUES ('delete', old.id, old.title, old.content); "
    "INSERT INTO knowledge_fts (rowid, title, content) VALUES (new.id, new.title, new.content); "
    "END",
]
_PG_SEARCH = [
    "ALTER TABLE knowledge_documents ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english'::regconfig, title), 'A') || "
    "setweight(to_tsvector('english'::regconfig, content), 'B')) STORED",
    "CREATE INDEX ix_knowledge_documents_search ON knowledge_documents USING gin (search)",
]


def upgrade() -> None:
    op.create_table(
        "knowledge_documents",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("namespace", binary_string(64), nullable=False),
        sa.Column("key", binary_string(255), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("tags", Json, nullable=False),
        sa.Column("metadata", Json, nullable=False),
        sa.Column("embedding", sa.LargeBinary().with_variant(ARRAY(sa.REAL()), "postgresql")),
        sa.Column("embedding_model", sa.String(200)),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_documents")),
        sa.UniqueConstraint("namespace", "key", name=op.f("uq_knowledge_documents_namespace_key")),
    )
    op.create_table(
        "knowledge_tags",
        sa.Column("document_id", Id, nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("document_id", "tag", name=op.f("pk_knowledge_tags")),
        sa.ForeignKeyConstraint(["document_id"], ["knowledge_documents.id"],
                                name=op.f("fk_knowledge_tags_document_id_knowledge_documents"),
                                ondelete="CASCADE"),
    )
    op.create_index(op.f("ix_knowledge_tags_tag_document_id"), "knowledge_tags",
                    ["tag", "document_id"])
    for statement in _PG_SEARCH if op.get_bind().dialect.name == "postgresql" else _SQLITE_FTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER knowledge_fts_{trigger}")
        op.execute("DROP TABLE knowledge_fts")
    op.drop_table("knowledge_tags")
    op.drop_table("knowledge_documents")
