"""Storage: ``open_store(url)`` gives the backend for a database URL."""

from __future__ import annotations

import os

from agentos.errors import InvalidInput
from agentos.store import sqlite
from agentos.store.base import Store
from agentos.store.sqlite import SqliteStore

# agentos.store.postgres (psycopg, SQLAlchemy's asyncio layer: ~0.3 s) is imported only
# for a PostgreSQL URL, so a SQLite process starts without it

__all__ = ["Store", "dialect_of", "missing_file", "open_store", "sync_url"]


def dialect_of(url: str) -> str:
    if url.startswith("sqlite:"):
        return "sqlite"
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        return "postgresql"
    raise InvalidInput(
        f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:///PATH or "
        "postgresql://USER@HOST/DB",
        code="bad_database_url",
    )


def missing_file(url: str) -> str | None:
    """The path of the SQLite database file ``url`` names when no such file exists
    (opening it would create an empty database there); else None."""
    if dialect_of(url) != "sqlite":
        return None
    path = sqlite.file_of(url)
    return path if path is not None and not os.path.exists(path) else None


def open_store(url: str, *, pool_size: int = 10) -> Store:
    if dialect_of(url) == "sqlite":
        return SqliteStore(url, pool_size=pool_size)
    from agentos.store.postgres import PostgresStore

    return PostgresStore(url, pool_size=pool_size)


def sync_url(url: str) -> str:
    """The URL for a synchronous engine (migrations, backups)."""
    if dialect_of(url) == "sqlite":
        return sqlite.sync_url(url)
    from agentos.store import postgres

    return postgres.sync_url(url)
