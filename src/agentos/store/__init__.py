"""Storage: ``open_store(url)`` gives the backend for a database URL."""

from __future__ import annotations

from agentos.errors import InvalidInput
from agentos.store import postgres, sqlite
from agentos.store.base import Store, raise_if_cancelling, wait_wakeup
from agentos.store.postgres import PostgresStore
from agentos.store.sqlite import SqliteStore

__all__ = ["Store", "dialect_of", "open_store", "raise_if_cancelling", "sync_url",
           "wait_wakeup"]


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


def open_store(url: str, *, pool_size: int = 10) -> Store:
    backend = SqliteStore if dialect_of(url) == "sqlite" else PostgresStore
    return backend(url, pool_size=pool_size)


def sync_url(url: str) -> str:
    """The URL for a synchronous engine (migrations, backups)."""
    return sqlite.sync_url(url) if dialect_of(url) == "sqlite" else postgres.sync_url(url)
