"""PostgreSQL through psycopg 3: many servers and workers share one database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from agentos.store.base import UNCHANGED, Store, raise_if_cancelling

log = logging.getLogger("agentos.store")
LISTEN_RETRY = 1.0  # seconds between reconnects of the LISTEN connection
LISTEN_SLICE = 1.0  # seconds per wait for notifications, so a stop is noticed


class PostgresStore(Store):
    dialect = "postgresql"

    def _create_engine(self) -> AsyncEngine:
        return create_async_engine(
            async_url(self.url),
            pool_size=self.pool_size,
            max_overflow=self.pool_size,
            pool_recycle=1800,
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        # autocommit: a read costs its statements only, not BEGIN and ROLLBACK
        # round trips (each statement still sees one consistent snapshot)
        try:
            async with self.engine.connect() as conn:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError as exc:
            raise self.translate(exc) from exc

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        if self._before_commit:  # e.g. the audit row: it must be in the same transaction
            async with self.write() as conn:
                yield conn
            return
        notified: set[str] = set()
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.info["agentos_notified"] = notified
                try:
                    yield conn
                finally:
                    del conn.info["agentos_notified"]
                    conn.info.pop(UNCHANGED, None)
        except DBAPIError as exc:
            raise self.translate(exc) from exc
        for channel in notified:  # committed: wake this process's listeners now
            self.wake(channel)

    async def notify(self, conn: AsyncConnection, channel: str, *, sent: bool = False) -> None:
        if not sent and channel not in conn.info["agentos_notified"]:
            # delivered to every listening process when the transaction commits
            await conn.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})
        await super().notify(conn, channel)

    async def listen(self, channels: list[str]) -> None:
        dsn = libpq_url(self.url)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    for channel in channels:
                        await conn.execute(f'LISTEN "{channel}"')
                    self.listening.update(channels)
                    # whatever happened while we were not listening: re-read
                    for channel in channels:
                        self.wake(channel)
                    while True:
                        async for note in conn.notifies(timeout=LISTEN_SLICE):
                            self.wake(note.channel)
                        raise_if_cancelling()  # psycopg may absorb one while it waits
            except psycopg.OperationalError as exc:
                log.warning("listen connection lost: %s", exc, extra={"action": "listen_lost"})
                await asyncio.sleep(LISTEN_RETRY)
            finally:
                self.listening.difference_update(channels)


def async_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url}")


sync_url = async_url  # psycopg 3 serves both under one dialect name


def libpq_url(url: str) -> str:
    """The URL as libpq (psycopg without SQLAlchemy) understands it."""
    return "postgresql://" + async_url(url).removeprefix("postgresql+psycopg://")
