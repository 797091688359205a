"""The event log's storage: numbering and inserting events, the read horizon, reads.

Numbering differs by backend, and only here. SQLite numbers events under the single
``event_log_head`` row, in the database's one write transaction, so the head is also
the horizon readers stop at. PostgreSQL appenders take numbers from ``events_seq``
without waiting for one another, so they may commit out of order: each marks itself
in flight (``events_numbered``) and readers stop below the lowest mark
(``events_horizon``). Either way listeners are woken (``CHANNEL``), and an event is
queued for routing (``route_queue``) when a published trigger may match its type
(``routable``: one that none names is routed to nobody at once), in the transaction that
appends it.

``store.events`` is the backend's ``Events``; the statements of other concepts that
append their own events (a task's cycle, a lock's grant) share these steps
(``events_numbered``/``events_inserted`` on PostgreSQL, ``insert_rows`` on SQLite).
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import orjson
from sqlalchemy import case, delete, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.errors import InvalidInput
from agentos.store import audit as store_audit
from agentos.store import sql, time_order
from agentos.store.columns import stamp
from agentos.store.tables import event_log_head, events, route_queue
from agentos.store.tables import tasks as tasks_table

if TYPE_CHECKING:
    from agentos.store.base import Store

CHANNEL = "agentos_events"  # notified on every commit that appended events


class Priority(IntEnum):
    """Stored as a rank: lower is more urgent, so ORDER BY priority is urgency order."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3

    @classmethod
    def parse(cls, name: str) -> Priority:
        try:
            return cls[name.upper()]
        except KeyError:
            raise InvalidInput(f"unknown priority {name!r} (critical, high, normal or low)",
                               code="bad_priority") from None


PriorityName = Literal["critical", "high", "normal", "low"]
RANK: dict[str, int] = {p.name.lower(): int(p) for p in Priority}


class Appendable(Protocol):
    """What an appended event gives the log (``events.EventIn`` or a ``Draft``)."""

    @property
    def type(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def priority(self) -> str: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def causation_id(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def dedup_key(self) -> str | None: ...


@dataclass(slots=True)
class Draft:
    """An event AgentOS writes itself (a task's status change): appended like an
    ``EventIn``, but its fields are trusted, so building one skips validation."""

    type: str
    source: str
    payload: dict[str, Any]
    correlation_id: str | None = None
    causation_id: str | None = None
    priority: PriorityName = "normal"
    run_id: str | None = None
    subject: str | None = None
    dedup_key: str | None = None


class Events(ABC):
    """The log's statements; the backend's subclass numbers and inserts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # prunes begun and ended in this process: what was read of the log before one
        # may be gone (the followers' shared reads, ``consumers._events``, start over)
        self.pruned = 0

    @abstractmethod
    async def insert(self, conn: AsyncConnection, fresh: Sequence[Appendable],
                     payloads: list[str], ids: list[str], now: datetime) -> list[int]:
        """Number and insert ``fresh`` (their payloads already JSON text) in the caller's
        write transaction, queue those a trigger may match for routing and wake
        listeners at commit; returns
        their sequence numbers, in order."""

    @abstractmethod
    async def append(self, fresh: Sequence[Appendable], payloads: list[str], ids: list[str],
                     now: datetime, named: Callable[[list[str]], None] | None = None
                     ) -> list[int] | None:
        """``insert`` in a transaction of its own on the store's driver connection, the
        store's before-commit hooks (a request's audit row) in it, ``named(ids)`` told
        within it; then wakes this process's listeners. The sequence numbers, or None
        where no driver block can hold it (the caller takes a write transaction)."""

    @abstractmethod
    async def horizon(self, conn: AsyncConnection) -> int:
        """The number up to which the log is settled: no event at or below it can still
        commit. A read by sequence number stops here and takes its snapshot after this
        (in a later statement)."""

    # -- reads and retention: the same on both backends

    async def by_dedup_keys(self, conn: AsyncConnection, keys: list[str]) -> list[Any]:
        """The events holding ``keys``, under the head row's lock (held to commit), so
        no concurrent append can slip one of these keys in meanwhile."""
        head = event_log_head.c
        await conn.execute(select(head.last_seq).where(head.id == 1).with_for_update())
        return list((await conn.execute(
            select(events).where(events.c.dedup_key.in_(keys)))).all())

    async def after(self, conn: AsyncConnection, after_seq: int, limit: int,
                    type_like: str | None = None) -> list[Any]:
        """Rows with ``seq > after_seq`` in order, at most ``limit``, up to the horizon;
        ``type_like``: a LIKE pattern (escape ``\\``) the type must match."""
        settled = await self.horizon(conn)
        if settled <= after_seq:
            return []
        stmt = select(events).where(events.c.seq > after_seq, events.c.seq <= settled)
        if type_like is not None:
            stmt = stmt.where(events.c.type.like(type_like, escape="\\"))
        return list((await conn.execute(stmt.order_by(events.c.seq).limit(limit))).all())

    async def get(self, conn: AsyncConnection, event_id: str) -> Any:
        return (await conn.execute(select(events).where(events.c.id == event_id))).first()

    async def page(self, conn: AsyncConnection, *, after_seq: int, limit: int,
                   type_like: str | None = None, source: str | None = None,
                   correlation_id: str | None = None, run_id: str | None = None,
                   rank: int | None = None, since: datetime | None = None,
                   until: datetime | None = None, before_seq: int | None = None,
                   newest_first: bool = False) -> list[Any]:
        """Up to ``limit`` rows matching every filter given, in sequence order (or from
        the newest down), up to the horizon (a page never skips one that commits later)."""
        c = events.c
        stmt = select(events).where(c.seq > after_seq)
        if before_seq is not None:
            stmt = stmt.where(c.seq < before_seq)
        for column, value in ((c.source, source), (c.correlation_id, correlation_id),
                              (c.run_id, run_id), (c.priority, rank)):
            if value is not None:
                stmt = stmt.where(column == value)
        if type_like is not None:
            stmt = stmt.where(c.type.like(type_like, escape="\\"))
        if since is not None:
            stmt = stmt.where(c.created_at >= since)
        if until is not None:
            stmt = stmt.where(c.created_at < until)
        low, high = await time_order.seq_window(conn, c.seq, c.created_at, since, until)
        if low is not None:
            stmt = stmt.where(c.seq >= low)
        if high is not None:
            stmt = stmt.where(c.seq < high)
        stmt = stmt.where(c.seq <= await self.horizon(conn))
        order = c.seq.desc() if newest_first else c.seq
        return list((await conn.execute(stmt.order_by(order).limit(limit))).all())

    async def of_correlation(self, conn: AsyncConnection, correlation_id: str
                             ) -> tuple[list[Any], list[Any]]:
        """The events and the tasks sharing ``correlation_id``, each in their order."""
        rows = (await conn.execute(select(events).where(
            events.c.correlation_id == correlation_id).order_by(events.c.seq))).all()
        task_rows = (await conn.execute(select(tasks_table).where(
            tasks_table.c.correlation_id == correlation_id).order_by(tasks_table.c.seq))).all()
        return list(rows), list(task_rows)

    async def prune(self, cutoff: datetime, type_like: str | None, keep: Sequence[Any],
                    dry_run: bool) -> tuple[int, int]:
        """Delete events created before ``cutoff`` (of ``type_like``) but those still
        needed: not routed yet (the log's own queue), or held by any of ``keep``,
        conditions on ``events`` rows made by the store modules of the concepts that
        need old events (``tasks.events_of_unfinished``, ``workflows.events_needed``).
        Returns (deleted, or in a dry run would be; kept)."""
        store = self.store
        old = [events.c.created_at < cutoff]
        if type_like is not None:
            old.append(events.c.type.like(type_like, escape="\\"))
        needed = or_(events.c.seq.in_(select(route_queue.c.seq)), *keep)
        counts = select(func.count(), func.coalesce(func.sum(case((needed, 1), else_=0)), 0)
                        ).select_from(events).where(*old)
        if dry_run:
            async with store.read() as conn:
                matched, kept = (await conn.execute(counts)).one()
            return int(matched) - int(kept), int(kept)
        self.pruned += 1
        try:
            async with store.write() as conn:
                deleted = (await conn.execute(delete(events).where(*old, not_(needed)))
                           ).rowcount
                kept = (await conn.execute(counts)).one()[1]
        finally:
            self.pruned += 1
        return int(deleted), int(kept)


class SqliteEvents(Events):
    async def insert(self, conn: AsyncConnection, fresh: Sequence[Appendable],
                     payloads: list[str], ids: list[str], now: datetime) -> list[int]:
        first = insert_rows(cast(Any, conn).driver(), fresh, payloads, ids, now)
        await self.store.notify(conn, CHANNEL)
        return list(range(first, first + len(fresh)))

    async def append(self, fresh: Sequence[Appendable], payloads: list[str], ids: list[str],
                     now: datetime, named: Callable[[list[str]], None] | None = None
                     ) -> list[int] | None:
        async with self.store.driver(hooked=True) as db:
            if db is None:
                return None
            first = insert_rows(db, fresh, payloads, ids, now)
            if named is not None:
                named(ids)
        self.store.wake(CHANNEL)  # committed
        return list(range(first, first + len(fresh)))

    async def horizon(self, conn: AsyncConnection) -> int:
        return int((await conn.exec_driver_sql(_SQLITE_HORIZON)).scalar_one())


class PostgresEvents(Events):
    async def insert(self, conn: AsyncConnection, fresh: Sequence[Appendable],
                     payloads: list[str], ids: list[str], now: datetime) -> list[int]:
        rows = (await conn.exec_driver_sql(_PG_APPEND, {
            "batch": _pg_batch(fresh, payloads, ids), "created_at": now})).all()
        await self.store.notify(conn, CHANNEL, sent=True)
        return [r.seq for r in rows]

    async def append(self, fresh: Sequence[Appendable], payloads: list[str], ids: list[str],
                     now: datetime, named: Callable[[list[str]], None] | None = None
                     ) -> list[int] | None:
        params = {"batch": _pg_batch(fresh, payloads, ids), "created_at": now}
        async with self.store.folding() as (db, fold):
            if db is None:
                return None
            if named is not None:  # (what the audit row names: known before the write)
                named(ids)
            statement, args = store_audit.carried(fold, _PG_APPEND, _PG_APPEND_AUDITED, params)
            rows = await (await db.execute(statement, args, prepare=True)).fetchall()
        self.store.wake(CHANNEL)  # committed (the statement notified other processes)
        return [r.seq for r in rows]

    async def horizon(self, conn: AsyncConnection) -> int:
        return int((await conn.exec_driver_sql(_PG_HORIZON)).scalar_one())


def _pg_batch(fresh: Sequence[Appendable], payloads: list[str], ids: list[str]) -> str:
    """The events as ``events_append``'s one JSON parameter."""
    return orjson.dumps([{
        "id": i, "type": d.type, "source": d.source, "payload": orjson.Fragment(p),
        "priority": RANK[d.priority], "correlation_id": d.correlation_id or i,
        "causation_id": d.causation_id, "run_id": d.run_id, "subject": d.subject,
        "dedup_key": d.dedup_key} for d, i, p in zip(fresh, ids, payloads, strict=True)]
    ).decode()


def insert_rows(db: sqlite3.Connection, fresh: Sequence[Appendable], payloads: list[str],
                ids: list[str], now: datetime) -> int:
    """Number and insert events with SQLite's own connection ``db``, inside its write
    transaction (the caller wakes this process's listeners once it commits); returns
    the first sequence number."""
    (last,) = db.execute(_SQLITE_TAKE_SEQS, {"n": len(fresh)}).fetchone()
    first: int = last - len(fresh) + 1
    at = stamp(now)
    db.executemany(_SQLITE_APPEND, [
        (first + n, i, d.type, d.source, p, RANK[d.priority], d.correlation_id or i,
         d.causation_id, d.run_id, d.subject, d.dedup_key, at)
        for n, (d, i, p) in enumerate(zip(fresh, ids, payloads, strict=True))])
    db.execute(_SQLITE_QUEUE, (first, last))  # those a published trigger may match
    return first


_PG_APPEND = sql.query("events_append", "postgresql", driver=True, audit="")
# with the request's audit row (``Store.folding``)
_PG_APPEND_AUDITED = sql.query("events_append", "postgresql", driver=True,
                               audit=store_audit.fragment("inserted"))
_PG_HORIZON = sql.query("events_horizon", "postgresql", driver=True)
_SQLITE_HORIZON = sql.query("events_horizon", "sqlite")
_SQLITE_APPEND, _order = sql.qmark(sql.query("events_append", "sqlite"))
assert _order == ("seq", "id", "type", "source", "payload", "priority", "correlation_id",
                  "causation_id", "run_id", "subject", "dedup_key", "created_at"), _order
_SQLITE_TAKE_SEQS = ("UPDATE event_log_head SET last_seq = last_seq + :n WHERE id = 1 "
                     "RETURNING last_seq")
_SQLITE_QUEUE, _order = sql.qmark(sql.query("events_queued", "sqlite"))
assert _order == ("first", "last"), _order
