"""PostgreSQL through psycopg 3: many servers and workers share one database."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import set_json_dumps, set_json_loads
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from agentos.aio import raise_if_cancelling
from agentos.errors import AgentOSError
from agentos.store import errors
from agentos.store.base import NOTIFIED, DriverWork, Fold, Foldable, Store
from agentos.store.columns import json_dumps, json_loads
from agentos.store.events import PostgresEvents
from agentos.store.locks import PostgresLocks
from agentos.store.routes import PostgresRoutes
from agentos.store.tasks import PostgresTasks

log = logging.getLogger("agentos.store")
LISTEN_RETRY = 1.0  # seconds between reconnects of the LISTEN connection
LISTEN_SLICE = 1.0  # seconds per wait for notifications, so a stop is noticed
DRIVER_NAME = "agentos hot path"  # the driver connection's application_name
READ_ONLY_DROP_S = 5.0  # seconds at least between drops of the pool's read-only sessions


class PostgresStore(Store):
    dialect = "postgresql"
    driver_errors = (*Store.driver_errors, psycopg.Error)
    poll_interval = 2.0  # NOTIFY wakes readers in every process: polling is the safety net

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        super().__init__(url, pool_size=pool_size)
        self.tasks = PostgresTasks(self)
        self.events = PostgresEvents(self)
        self.locks = PostgresLocks(self)
        self.routes = PostgresRoutes(self)
        self._driver: psycopg.AsyncConnection[Any] | None = None
        self._driver_lock = asyncio.Lock()
        # driver connections for blocks that are transactions (a request's write with its
        # audit row): several at once, so concurrent requests' commits are not queued
        # behind one another on one connection (each waits for its WAL flush)
        self._idle_writers: list[psycopg.AsyncConnection[Any]] = []
        self._writer_slots = asyncio.Semaphore(pool_size)
        self._read_only_dropped_at = -READ_ONLY_DROP_S  # monotonic time of the last drop

    def _create_engine(self) -> AsyncEngine:
        engine = create_async_engine(
            async_url(self.url),
            pool_size=self.pool_size,
            max_overflow=self.pool_size,
            pool_recycle=1800,
            # the most recently used connection first: a worker's hot statements stay
            # on one warm backend (its plan cache, psycopg's prepared statements)
            pool_use_lifo=True,
            # JSON columns through orjson (psycopg's default is the json module, several
            # times slower on the queue's hot path)
            json_serializer=json_dumps,
            json_deserializer=json_loads,
        )
        event.listen(engine.sync_engine, "handle_error", self._read_only_refusal)
        return engine

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        # SQLAlchemy's guarded close, not a close in place as ``base.committed`` does:
        # handing the connection back sets its isolation level again, a psycopg call
        # that may yield to the loop, and a cancellation landing there would keep the
        # pool's slot for good
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        # autocommit: a read costs its statements only, not BEGIN and ROLLBACK
        # round trips (each statement still sees one consistent snapshot)
        try:
            async with self._autocommit() as conn:
                yield conn
        except self.driver_errors as exc:
            raise self.translate(exc) from exc

    def statement(self) -> AbstractAsyncContextManager[AsyncConnection]:
        if self._before_commit:  # e.g. the audit row: it must be in the same transaction
            return self.write()
        return self._tracked(self._autocommit())

    @asynccontextmanager
    async def driver(self, *, hooked: bool = False
                     ) -> AsyncIterator[psycopg.AsyncConnection[Any] | None]:
        """This process's connection for the hot path's named statements, in autocommit:
        psycopg without SQLAlchemy's layer, which cost a worker's round trip about as
        much CPU as psycopg itself. One statement at a time (the caller holds it for
        its statement only); rows are named tuples, JSON parsed by orjson, times in UTC.
        A connection that fails is closed and the next use opens another; errors come
        as domain errors. None while a before-commit hook (the audit row) must see
        every write: then the caller takes ``statement()``; unless ``hooked``
        (``Store.driver``): when a hook has work the block is then one transaction
        (BEGIN, its statements, the hooks', COMMIT) on a connection of its own among
        ``pool_size`` (concurrent requests commit side by side), so the caller's
        statements must be ones a transaction can hold (no retry after an error).
        """
        async with self._driver_block(self._driver_work(hooked)) as db:
            yield db

    @asynccontextmanager
    async def _driver_block(self, work: list[DriverWork] | None
                            ) -> AsyncIterator[psycopg.AsyncConnection[Any] | None]:
        if work is None:
            yield None
        elif work:
            async with self._transaction(work) as db:
                yield db
        else:
            async with self._on_driver() as db:
                yield db

    @asynccontextmanager
    async def folding(self, able: bool = True
                      ) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any] | None,
                                               Fold | None]]:
        work = self._driver_work(True)
        foldable = work[0] if able and work is not None and len(work) == 1 else None
        if not isinstance(foldable, Foldable):
            # nothing to fold (no hook has work: the shared driver connection), or work
            # that does not fold: ``driver``'s transaction
            async with self._driver_block(work) as db:
                yield db, None
            return
        offered = taken = False

        def fold() -> dict[str, Any] | None:
            nonlocal offered, taken
            offered = True
            params = foldable.fold()
            taken = params is not None
            return params

        # a writer's connection, as a transaction's: concurrent audited writes commit
        # (each waiting for its WAL flush) side by side, not queued on one connection
        try:
            async with self._writer() as db:
                yield db, fold
        except BaseException as exc:
            if taken and _refused(exc):
                foldable.unfold()  # rolled back whole: a retry (a deadlock's) records it
            # else the work stays taken: the statement's write, if it committed before
            # the error (a link lost after the commit), has its audit row; if it did not,
            # there was no change to record (as a transaction's rollback leaves no row)
            raise
        unchanged = self._said_unchanged()
        if not (offered or unchanged):
            raise RuntimeError("a folding block ran without asking fold(): its hooks' "
                               "work would be lost")
        if unchanged and taken:
            foldable.unfold()

    @asynccontextmanager
    async def _transaction(self, work: list[DriverWork]
                           ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A driver block that is a transaction with the hooks' ``work`` as its last step,
        on a writer's connection."""
        async with self._writer() as db, db.transaction():
            yield db
            await self._end_block(work, db)

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of its own among at most ``pool_size`` (kept for the next), in
        autocommit unless the caller begins a transaction."""
        async with self._writer_slots:
            db = self._idle_writers.pop() if self._idle_writers else None
            try:
                if db is None or db.closed:
                    db = await self._connect_driver()
                yield db
            except AgentOSError:
                if db is not None:
                    self._idle_writers.append(db)  # rolled back: the link is fine
                raise
            except BaseException as exc:
                if db is not None:  # its state is unknown: the next block opens another
                    await db.close()
                if isinstance(exc, psycopg.Error):
                    raise errors.from_postgres(exc) from exc
                raise
            self._idle_writers.append(db)

    async def _connect_driver(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            libpq_url(self.url), autocommit=True, row_factory=namedtuple_row,
            options="-c TimeZone=UTC", context=_ADAPTERS, application_name=DRIVER_NAME)

    @asynccontextmanager
    async def driver_read(self) -> AsyncIterator[psycopg.AsyncConnection[Any] | None]:
        # a read sees no hook: the driver connection in autocommit, whatever is set
        async with self._on_driver() as db:
            yield db

    @asynccontextmanager
    async def _on_driver(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._driver_lock:
            try:
                if self._driver is None or self._driver.closed:
                    self._driver = await self._connect_driver()
                yield self._driver
            except AgentOSError:
                raise  # the caller's refusal after its statement: the link is fine
            except BaseException as exc:
                # the connection's state is unknown (e.g. cancelled mid-statement)
                if self._driver is not None:
                    await self._driver.close()
                    self._driver = None
                if isinstance(exc, psycopg.Error):
                    raise errors.from_postgres(exc) from exc
                raise

    async def refresh_statistics(self, tables: tuple[str, ...]) -> list[str]:
        # rows changed since the last ANALYZE against the rows it counted: stale when
        # the change is large (never analyzed counts as 0 rows); the statistics
        # collector reports changes with a delay of up to a second
        async with self.read() as conn:
            stale = [r.relname for r in (await conn.execute(_STALE_STATISTICS,
                                                            {"tables": list(tables)})).all()]
            analyzed = []
            for table in stale:
                # one process at a time: a second ANALYZE would only wait for the first
                if (await conn.execute(_TRY_LOCK, {"k": _ANALYZE_KEY})).scalar_one():
                    try:
                        await conn.execute(text(f'ANALYZE "{table}"'))
                        analyzed.append(table)
                    finally:
                        await conn.execute(_UNLOCK, {"k": _ANALYZE_KEY})
        if analyzed:
            log.info("analyzed %s", ", ".join(analyzed), extra={"action": "analyzed"})
        return analyzed

    def _read_only_refusal(self, context: Any) -> None:
        """A change refused as read-only (SQLAlchemy's handle_error). A session keeps the
        default_transaction_read_only it began with, so once the database takes changes
        again only new sessions see it: the pool's sessions are dropped then, at most
        every ``READ_ONLY_DROP_S`` (while the database stays read-only every change is
        refused: a drop at each would open a session for nearly every read after it)."""
        if getattr(context.original_exception, "sqlstate", None) != _READ_ONLY_STATE:
            return
        now = time.monotonic()
        if now - self._read_only_dropped_at >= READ_ONLY_DROP_S:
            self._read_only_dropped_at = now
            context.is_disconnect = True  # this session, and every older one in the pool

    async def unwritable(self) -> str | None:
        # a standby, or default_transaction_read_only set on the database or the server,
        # refuses a write that changes nothing (on a table the server changes anyway: no
        # privilege beyond its own). A refusal may drop the pool's sessions
        # (_read_only_refusal): a new one is asked before it counts
        for _ in range(2):
            try:
                async with self.read() as conn:
                    await conn.execute(_WRITE_NOTHING)
                return None
            except AgentOSError as exc:
                if exc.code != errors.READ_ONLY:
                    raise
        return errors.READ_ONLY

    async def lock_table(self, conn: AsyncConnection, table: str) -> None:
        await conn.execute(text(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE'))

    async def notify(self, conn: AsyncConnection, channel: str, *, sent: bool = False) -> None:
        if not sent and channel not in conn.info[NOTIFIED]:
            # delivered to every listening process when the transaction commits
            await conn.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})
        await super().notify(conn, channel)

    async def close(self) -> None:
        if self._driver is not None:
            await self._driver.close()
            self._driver = None
        while self._idle_writers:
            await self._idle_writers.pop().close()
        await super().close()

    async def listen(self, channels: list[str]) -> None:
        dsn = libpq_url(self.url)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    for channel in channels:
                        await conn.execute(f'LISTEN "{channel}"')
                    with self.listening_on(channels):
                        # whatever happened while we were not listening: re-read
                        for channel in channels:
                            self.wake(channel)
                        while True:
                            async for note in conn.notifies(timeout=LISTEN_SLICE):
                                self.wake(note.channel, note.payload)
                            raise_if_cancelling()  # psycopg may absorb one while it waits
            except psycopg.OperationalError as exc:
                log.warning("listen connection lost: %s", exc, extra={"action": "listen_lost"})
                await asyncio.sleep(LISTEN_RETRY)


STALE_ROWS = 1000  # rows changed since the last ANALYZE before a table counts as stale
STALE_SHARE = 0.2  # ... and this share of the rows it counted
_STALE_STATISTICS = text(
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.schemaname = current_schema() AND s.relname = ANY(:tables) "
    f"AND s.n_mod_since_analyze > {STALE_ROWS} + {STALE_SHARE} * greatest(c.reltuples, 0)")
_ANALYZE_KEY = zlib.crc32(b"agentos.analyze")
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:k)")
_WRITE_NOTHING = text("UPDATE consumers SET applied = applied WHERE false")
_READ_ONLY_STATE = "25006"  # read_only_sql_transaction
_UNLOCK = text("SELECT pg_advisory_unlock(:k)")


_ADAPTERS = psycopg.adapt.AdaptersMap(psycopg.adapters)
set_json_loads(json_loads, _ADAPTERS)
set_json_dumps(json_dumps, _ADAPTERS)


def _refused(exc: BaseException) -> bool:
    """Whether the database refused the statement itself (an error with a SQLSTATE: in
    autocommit the statement is rolled back whole), not a link lost or a wait cancelled,
    after which whether it committed is unknown."""
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    return isinstance(cause, psycopg.Error) and cause.sqlstate is not None


def async_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url}")


sync_url = async_url  # psycopg 3 serves both under one dialect name


def libpq_url(url: str) -> str:
    """The URL as libpq (psycopg without SQLAlchemy) understands it."""
    return "postgresql://" + async_url(url).removeprefix("postgresql+psycopg://")
