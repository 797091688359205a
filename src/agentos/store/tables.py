"""The schema: the single source of truth that migrations must reproduce.

Each concept's tables live here together so one test can compare a migrated
database with this metadata; each concept's queries live with the concept.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

# constraint names that are the same on both backends and stable for migrations
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# ---------------------------------------------------------------- registry

agent_versions = Table(
    "agent_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False),
    Column("version", String(128), nullable=False),
    # semver precedence as a byte-ordered string (agentos.semver.sort_key)
    Column("sort_key", binary_string(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("display_name", String(200)),
    Column("description", Text),
    Column("role", Text),
    Column("owner", String(200)),
    Column("definition", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("published_at", UTCDateTime),
    UniqueConstraint("name", "version"),
    CheckConstraint(
        "status IN ('draft', 'published', 'deprecated', 'archived')", name="status"
    ),
    Index(None, "name", "status", "sort_key"),
    Index(None, "status"),
)

# search side tables: one row per tag / capability / trigger of a version
agent_tags = Table(
    "agent_tags",
    metadata,
    Column("agent_version_id", Id, ForeignKey("agent_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index(None, "tag"),
)

agent_capabilities = Table(
    "agent_capabilities",
    metadata,
    Column("agent_version_id", Id, ForeignKey("agent_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Index(None, "name"),
)

agent_triggers = Table(
    "agent_triggers",
    metadata,
    Column("agent_version_id", Id, ForeignKey("agent_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("event_glob", String(255), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("filter", Json, nullable=False),
    Column("capability", String(63)),
)
