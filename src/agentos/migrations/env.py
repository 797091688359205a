"""Alembic environment: runs migrations on the URL handed in by agentos.store.schema."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from agentos.store import sync_url
from agentos.store.tables import metadata

MIGRATION_LOCK = 7_246_617  # PostgreSQL advisory lock key: one migrator at a time


def run() -> None:
    url = context.config.attributes["database_url"]
    engine = create_engine(sync_url(url), poolclass=NullPool)
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # several servers may start at once; the others wait, then find
            # the schema current and do nothing
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
        context.configure(
            connection=conn,
            target_metadata=metadata,
            render_as_batch=not postgres,  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if postgres:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run agentos db upgrade")
run()
