"""SQLite: one file in WAL mode, statements run inline on the event loop.

SQLite answers in microseconds, so a thread hop per statement (aiosqlite)
costs more than the statement itself. Instead each connection is a sync
SQLAlchemy connection behind a small async facade, and the only waits that
could be long — another process holding the write lock — happen in
``BEGIN IMMEDIATE``, retried with an asyncio sleep so the loop never blocks
for more than ``BUSY_SLICE``.

The store keeps the identity (device, inode) of its file: every write transaction
first checks it (one ``stat``), so a file removed or replaced under a running
server makes its writes fail with 503 ``database_unavailable`` (and says why in
the log) instead of landing in a file nobody will open again; new connections
never make it again where it was removed (``mode=rw``).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from agentos.errors import Unavailable
from agentos.store import errors
from agentos.store.base import Store
from agentos.store.columns import json_dumps, json_loads
from agentos.store.events import SqliteEvents
from agentos.store.locks import SqliteLocks
from agentos.store.routes import SqliteRoutes
from agentos.store.sqlite_wakes import ALL, KEEP_S, WakeSockets
from agentos.store.tasks import SqliteTasks

# sqlite3 looks for an adapter for every bound value not exactly an int, float or str:
# for None it finds none and tries two attributes (``__adapt__``, ``__conform__``),
# raising and clearing an AttributeError each, ~0.3 us a NULL (a task row binds five).
# None adapted to None binds NULL as before, through one dictionary lookup.
sqlite3.register_adapter(type(None), lambda value: value)

BUSY_SLICE = 5  # milliseconds SQLite itself may wait for a lock (blocks the loop)
SPIN_START = 0.00005  # seconds: the first pause before trying BEGIN IMMEDIATE again
SPIN_LIMIT = 0.0008  # seconds: pauses double up to this (2.4 ms in all), then yield
# WAL pages before a checkpoint copies them back into the database file (and fsyncs
# it): a queue rewrites the same pages constantly, so a longer WAL copies each fewer
# times (SQLite's default is 1,000 pages, 4 MB)
WAL_AUTOCHECKPOINT = 8000
MMAP_BYTES = 256 * 1024 * 1024
WRITE_LOCK_TIMEOUT = 30.0  # seconds to wait for another process's write to end
T = TypeVar("T")


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

    async def off_loop(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in a thread, for a read that computes over many rows
        (a vector search): the loop goes on serving meanwhile. Nothing else uses this
        connection while its holder awaits this."""
        return await asyncio.to_thread(work, self.sync)

    def driver(self) -> sqlite3.Connection:
        """The sqlite3 connection underneath, in this transaction (for named SQL)."""
        db: sqlite3.Connection = self.sync.connection.dbapi_connection  # type: ignore[assignment]
        return db


class SqliteStore(Store):
    dialect = "sqlite"
    inline = True
    driver_errors = (*Store.driver_errors, sqlite3.Error)

    def change_stamp(self) -> object | None:
        # every commit appends to the write-ahead log (restarting it after a checkpoint
        # rewrites it too): its modification time and size, one stat, no query
        if self.path is None:
            return None
        try:
            found = os.stat(self.path + "-wal")
        except FileNotFoundError:
            return None
        return found.st_mtime_ns, found.st_size

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.path = file_of(url)  # None: in memory, or a URI the driver opens itself
        # (device, inode) of the file this store opened: a write first checks it is
        # still the file at ``path``
        self._identity: tuple[int, int] | None = _identity(self.path)
        self._gone: str | None = None  # why the file is not ours any more, once logged
        super().__init__(url, pool_size=pool_size)
        self.tasks = SqliteTasks(self)
        self.events = SqliteEvents(self)
        self.locks = SqliteLocks(self)
        self.routes = SqliteRoutes(self)
        # One writer at a time in this process: waiting here is free, while
        # waiting in SQLite's busy handler blocks the event loop.
        self._write_gate = asyncio.Lock()
        self._driver: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # ``read_row``'s own connection
        # other processes' wake-ups, and ours to them (a file's stores only)
        self._wakes = WakeSockets(self.path, self._woken) if self.path is not None else None

    def _create_engine(self) -> Engine:  # type: ignore[override]
        engine = create_engine(self.url, poolclass=QueuePool, pool_size=self.pool_size,
                               max_overflow=self.pool_size,
                               connect_args={"check_same_thread": False},
                               # JSON columns through the one codec both backends use
                               json_serializer=json_dumps, json_deserializer=json_loads)
        if self.path is not None:
            event.listen(engine, "do_connect", self._connect_pooled)
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        return engine

    def _connect_pooled(self, dialect: Any, record: Any, cargs: Any, cparams: Any
                        ) -> sqlite3.Connection:
        return self._open()

    def _open(self) -> sqlite3.Connection:
        """A connection to this store's file: the one it opened first, never one made
        again where it was removed (a store that has never seen its file may create it)."""
        assert self.path is not None
        mode = "rw" if self._identity is not None else "rwc"
        try:
            db = sqlite3.connect(f"file:{quote(self.path)}?mode={mode}", uri=True,
                                 check_same_thread=False)
        except sqlite3.Error as exc:
            self._check_file()  # a file removed since: say so
            raise errors.from_sqlite(exc) from exc
        try:
            if self._identity is None:
                self._identity = _identity(self.path)
            self._check_file()
        except BaseException:
            db.close()
            raise
        return db

    def _check_file(self) -> None:
        """Refuse (503) when the file at ``path`` is not the one this store opened."""
        if self.path is None or self._identity is None:
            return
        now = _identity(self.path)
        if now == self._identity:
            return
        why = "removed" if now is None else "replaced"
        first, self._gone = self._gone != why, why
        raise errors.file_gone(self.path, why, first=first)

    async def unwritable(self) -> str | None:
        try:
            self._check_file()
            async with self._write_gate:
                with self.engine.connect() as conn:
                    conn = conn.execution_options(agentos_write=True)
                    await _begin_immediate(conn)
                    try:  # a write that changes nothing, to hear what the file says
                        conn.exec_driver_sql("DELETE FROM alembic_version WHERE 0")
                    finally:
                        conn.rollback()
        except Unavailable as exc:
            return exc.code
        except self.driver_errors as exc:
            return self.translate(exc).code
        return None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        try:
            with self.engine.connect() as conn:
                yield SqliteConnection(conn)
        except self.driver_errors as exc:
            raise self.translate(exc) from exc

    @asynccontextmanager
    async def _write_connection(self) -> AsyncIterator[Any]:
        async with self._write_gate:
            self._check_file()  # one stat a write transaction (~1 us)
            with self.engine.connect() as conn:
                conn = conn.execution_options(agentos_write=True)
                await _begin_immediate(conn)
                try:
                    yield SqliteConnection(conn)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()

    @asynccontextmanager
    async def driver(self, *, hooked: bool = False
                     ) -> AsyncIterator[sqlite3.Connection | None]:
        """This process's sqlite3 connection for the hot path's named statements, in a
        write transaction (BEGIN IMMEDIATE, committed when the block ends, rolled back
        on error): SQLAlchemy's layer cost a worker's round trip more than SQLite's
        own work, and all of it inside the write lock, which every writer waits for.
        Values come back as SQLite stores them (JSON and times as text). None while a
        before-commit hook (the audit row) must see every write, unless ``hooked``
        (``Store.driver``): the hooks then run on it before the commit."""
        work = self._driver_work(hooked)
        if work is None:
            yield None
            return
        async with self._write_gate:
            self._check_file()
            if self._driver is None:
                self._driver = self._connect_driver()
            db = self._driver
            try:
                if db.in_transaction:  # left open by an interrupted block
                    db.execute("ROLLBACK")
                await _take_write_lock(lambda: db.execute("BEGIN IMMEDIATE"), lambda: None)
                try:
                    yield db
                    await self._end_block(work, db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if "locked" not in str(exc):  # state unknown: the next use opens another
                    self._driver = None
                    db.close()
                raise errors.from_sqlite(exc) from exc

    def read_row(self, statement: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of a read of one statement outside any transaction, on this
        process's own sqlite3 connection for it, run inline (a lock waiter's look after
        a wake-up: several a hand-over under contention; SQLAlchemy's pool checkout
        cost more than the read). WAL mode: it sees every commit made before it and
        waits for no writer."""
        try:
            if self._reader is None:
                self._reader = self._connect_driver(busy_timeout=BUSY_SLICE)
            row: tuple[Any, ...] | None = self._reader.execute(statement, params).fetchone()
            return row
        except sqlite3.Error as exc:  # state unknown: the next read opens another
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            raise errors.from_sqlite(exc) from exc

    def _connect_driver(self, busy_timeout: int = 0) -> sqlite3.Connection:
        """The hot path's own connection: no busy timeout (``_take_write_lock`` waits its
        own way), otherwise set up as the pool's."""
        if self.path is not None:
            db = self._open()
        else:
            db = sqlite3.connect(make_url(self.url).database or ":memory:",
                                 check_same_thread=False)
        _on_connect(db, None, busy_timeout=busy_timeout)
        return db

    def pool_status(self) -> dict[str, Any]:
        return {**super().pool_status(), "inline": self.inline}

    # -- wake-ups across processes (``sqlite_wakes``) -----------------------

    def wake(self, channel: str, note: str = "") -> None:
        super().wake(channel, note)
        if self._wakes is not None:  # and every other process's on this file
            self._wakes.send(channel, note)

    def _woken(self, channel: str, note: str) -> None:
        """Another process's commit woke ``channel`` (``ALL``: every one)."""
        for each in (list(self._wakeups) if channel == ALL else (channel,)):
            super().wake(each, note)

    async def listen(self, channels: list[str]) -> None:
        if self._wakes is None or not self._wakes.open():
            await super().listen(channels)  # no socket: readers poll
            return
        try:
            with self.listening_on(channels):
                for channel in channels:  # whatever happened before we listened: re-read
                    super().wake(channel)
                while True:
                    await asyncio.sleep(KEEP_S)
                    self._wakes.keep()
        finally:
            self._wakes.close_listener()

    async def close(self) -> None:
        if self._wakes is not None:
            self._wakes.close()
        if self._driver is not None:
            self._driver.close()
            self._driver = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.engine.dispose()


async def _begin_immediate(conn: Connection) -> None:
    """Take SQLite's write lock for ``conn`` (SQLAlchemy's "begin" event sends BEGIN
    IMMEDIATE), waiting in short slices while another process has it."""

    def undo() -> None:
        conn.rollback()

    await _take_write_lock(conn.begin, undo)


async def _take_write_lock(begin: Callable[[], Any], undo: Callable[[], None]) -> None:
    """Call ``begin`` (a BEGIN IMMEDIATE) until it gets SQLite's write lock.

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
            begin()
            return
        except (OperationalError, sqlite3.OperationalError) as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            undo()
        if spin <= SPIN_LIMIT:
            time.sleep(spin)
            spin *= 2
            continue
        await asyncio.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 1.5, 0.005)


def sync_url(url: str) -> str:
    return url


def file_of(url: str) -> str | None:
    """The database file a ``sqlite:///PATH`` URL names (absolute), or None for an
    in-memory database or a ``file:`` URI, which the driver opens as it says."""
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:") or \
            parsed.query.get("uri"):
        return None
    return os.path.abspath(database)


def _identity(path: str | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _on_connect(dbapi_conn: Any, record: Any, busy_timeout: int = BUSY_SLICE) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver's implicit
    # transactions would make every write a deferred one that can deadlock).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
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
