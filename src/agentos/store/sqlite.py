"""SQLite: one file in WAL mode, statements run inline on the event loop.

SQLite answers in microseconds, so a thread hop per statement (aiosqlite)
costs more than the statement itself. Instead each connection is a sync
SQLAlchemy connection behind a small async facade, and the only waits that
could be long — another process holding the write lock — happen in
``BEGIN IMMEDIATE``, retried with an asyncio sleep so the loop never blocks
for more than ``BUSY_SLICE``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import QueuePool

from agentos.errors import AgentOSError, Unavailable
from agentos.store.base import Store

BUSY_SLICE = 5  # milliseconds SQLite itself may wait for a lock (blocks the loop)
SPIN_START = 0.00005  # seconds: the first pause before trying BEGIN IMMEDIATE again
SPIN_LIMIT = 0.0008  # seconds: pauses double up to this (2.4 ms in all), then yield
# WAL pages before a checkpoint copies them back into the database file (and fsyncs
# it): a queue rewrites the same pages constantly, so a longer WAL copies each fewer
# times (SQLite's default is 1,000 pages, 4 MB)
WAL_AUTOCHECKPOINT = 8000
MMAP_BYTES = 256 * 1024 * 1024
WRITE_LOCK_TIMEOUT = 30.0  # seconds to wait for another process's write to end


class SqliteConnection:
    """The part of ``AsyncConnection`` the domain uses, over a sync connection."""

    def __init__(self, sync: Connection) -> None:
        self.sync = sync
        self.dialect = sync.dialect
        self.info = sync.info

    async def execute(self, statement: Any, parameters: Any = None, **kw: Any) -> Any:
        return self.sync.execute(statement, parameters, **kw)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self.sync.exec_driver_sql(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync.scalar(statement, parameters)


class SqliteStore(Store):
    dialect = "sqlite"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        super().__init__(url, pool_size=pool_size)
        # One writer at a time in this process: waiting here is free, while
        # waiting in SQLite's busy handler blocks the event loop.
        self._write_gate = asyncio.Lock()

    def _create_engine(self) -> Engine:  # type: ignore[override]
        engine = create_engine(self.url, poolclass=QueuePool, pool_size=self.pool_size,
                               max_overflow=self.pool_size,
                               connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        return engine

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        try:
            with self.engine.connect() as conn:
                yield SqliteConnection(conn)
        except DBAPIError as exc:
            raise self.translate(exc) from exc

    @asynccontextmanager
    async def _write_connection(self) -> AsyncIterator[Any]:
        async with self._write_gate:
            with self.engine.connect() as conn:
                conn = conn.execution_options(agentos_write=True)
                await _begin_immediate(conn)
                try:
                    yield SqliteConnection(conn)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()

    def translate(self, exc: DBAPIError) -> AgentOSError:
        if isinstance(exc, OperationalError) and "locked" in str(exc.orig):
            return Unavailable("the database stayed locked by another writer",
                               code="database_busy", details={"reason": str(exc.orig)})
        return super().translate(exc)

    def pool_status(self) -> dict[str, Any]:
        return {**super().pool_status(), "inline": True}

    async def close(self) -> None:
        self.engine.dispose()


async def _begin_immediate(conn: Connection) -> None:
    """Take SQLite's write lock, waiting in short slices while another process has it.

    SQLite's own busy handler would sleep at least a millisecond, then two, then five,
    with the event loop blocked; a writer holds the lock for about a millisecond, so
    the first retries come after tens of microseconds (still blocking, but briefly),
    and a longer wait yields to the loop between tries.
    """
    deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
    spin = SPIN_START
    pause = 0.0005
    while True:
        try:
            conn.begin()
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
            conn.rollback()
        if spin <= SPIN_LIMIT:
            time.sleep(spin)
            spin *= 2
            continue
        await asyncio.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 1.5, 0.005)


def sync_url(url: str) -> str:
    return url


def _on_connect(dbapi_conn: Any, record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver's implicit
    # transactions would make every write a deferred one that can deadlock).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_SLICE}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
    # NORMAL in WAL mode survives any process crash (SIGKILL); only an OS
    # crash or power loss can lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    # pages read through a memory map, not a read() each: a writer's cache is emptied
    # whenever another process wrote, and reloading it was a syscall a page
    cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # LIKE must be case-sensitive, as it is on PostgreSQL (type globs compile to LIKE)
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


def _on_begin(conn: Any) -> None:
    if conn.get_execution_options().get("agentos_write", False):
        # fail at once when another process writes: _begin_immediate waits its own way
        conn.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_SLICE}")
    else:
        conn.exec_driver_sql("BEGIN")
