"""SQLite: one file in WAL mode, writes serialised in-process and by BEGIN IMMEDIATE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from agentos.errors import AgentOSError, Unavailable
from agentos.store.base import Store

BUSY_TIMEOUT = 10_000  # milliseconds another process may hold the write lock


class SqliteStore(Store):
    dialect = "sqlite"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        super().__init__(url, pool_size=pool_size)
        # One writer at a time in this process: waiting here is cheap, while
        # waiting in SQLite's busy handler sleeps in coarse steps.
        self._write_gate = asyncio.Lock()

    def _create_engine(self) -> AsyncEngine:
        engine = create_async_engine(
            async_url(self.url), pool_size=self.pool_size, max_overflow=self.pool_size
        )
        event.listen(engine.sync_engine, "connect", _on_connect)
        event.listen(engine.sync_engine, "begin", _on_begin)
        return engine

    @asynccontextmanager
    async def _write_connection(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_gate, self.engine.connect() as conn:
            conn = await conn.execution_options(agentos_write=True)
            async with conn.begin():
                yield conn

    def translate(self, exc: DBAPIError) -> AgentOSError:
        if isinstance(exc, OperationalError) and "locked" in str(exc.orig):
            return Unavailable("the database stayed locked by another writer",
                               code="database_busy", details={"reason": str(exc.orig)})
        return super().translate(exc)


def async_url(url: str) -> str:
    return url.replace("sqlite://", "sqlite+aiosqlite://", 1)


def sync_url(url: str) -> str:
    return url


def _on_connect(dbapi_conn: Any, record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver's implicit
    # transactions would make every write a deferred one that can deadlock).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT}")
    # NORMAL in WAL mode survives any process crash (SIGKILL); only an OS
    # crash or power loss can lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _on_begin(conn: Any) -> None:
    write = conn.get_execution_options().get("agentos_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
