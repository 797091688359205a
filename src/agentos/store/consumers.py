"""The event log's consumers: cursors (``consumers``) and the events after one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, null, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import database_now, upsert, utcnow
from agentos.store.tables import consumers, events

c = consumers.c


async def ensure(conn: AsyncConnection, name: str) -> None:
    """Create the consumer's cursor at 0 unless it exists."""
    await conn.execute(upsert(conn, consumers).values(name=name, cursor_seq=0, applied=0)
                       .on_conflict_do_nothing(index_elements=[c.name]))


async def claim(conn: AsyncConnection, name: str, *, wait: bool = False) -> Any | None:
    """The consumer's row (made at cursor 0 the first time), locked to the end of the
    transaction; None when another transaction holds it and ``wait`` is false
    (PostgreSQL: SKIP LOCKED; on SQLite the write transaction holds the whole database
    already). One statement once the row exists: a follower claims it every batch."""
    stmt = select(consumers).where(c.name == name)
    stmt = stmt.with_for_update() if wait else stmt.with_for_update(skip_locked=True)
    if (row := (await conn.execute(stmt)).first()) is not None:
        return row
    await ensure(conn, name)  # missing, or (SKIP LOCKED) held: then this does nothing
    return (await conn.execute(stmt)).first()


async def hold(conn: AsyncConnection, name: str) -> None:
    """Keep the consumer from applying a batch until this transaction ends: its cursor
    row is locked FOR SHARE (made first if the consumer never ran), so ``claim`` skips
    the round while this transaction is open, and a batch under way is waited for.
    What this transaction writes is then there for the consumer before it reads any
    event that commits meanwhile. (On SQLite the write transaction holds the whole
    database already.) Take it before locking anything a batch locks: a batch holds
    the row while it locks runs and waits."""
    if conn.dialect.name != "postgresql":
        return
    stmt = select(c.name).where(c.name == name).with_for_update(read=True)
    if (await conn.execute(stmt)).first() is None:
        await ensure(conn, name)
        await conn.execute(stmt)


async def fetch(conn: AsyncConnection, name: str) -> Any | None:
    return (await conn.execute(select(consumers).where(c.name == name))).first()


async def fetch_all(conn: AsyncConnection, names: Sequence[str]) -> dict[str, Any]:
    rows = (await conn.execute(select(consumers).where(c.name.in_(names)))).all()
    return {r.name: r for r in rows}


async def events_after(conn: AsyncConnection, after: int, settled: int, likes: Sequence[str],
                       limit: int) -> list[Any]:
    """Events with ``after < seq <= settled`` whose type is LIKE one of ``likes`` (all
    when empty; ``\\`` escapes), in order, at most ``limit``."""
    stmt = select(events).where(events.c.seq > after, events.c.seq <= settled)
    if likes:
        stmt = stmt.where(or_(*(events.c.type.like(p, escape="\\") for p in likes)))
    return list((await conn.execute(stmt.order_by(events.c.seq).limit(limit))).all())


async def relax_durability(conn: AsyncConnection) -> None:
    """Let this transaction commit without waiting for its WAL to reach the disk
    (PostgreSQL's synchronous_commit off; SQLite's WAL commits need no fsync already):
    for a cursor's move over events that changed nothing."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SET LOCAL synchronous_commit TO off"))


async def advance(conn: AsyncConnection, name: str, cursor: int, applied: int) -> None:
    """Move the cursor to ``cursor`` after ``applied`` events; a rebuild whose target
    it reaches is over."""
    caught_up = c.rebuild_target.is_not(None) & (c.rebuild_target <= cursor)
    await conn.execute(update(consumers).where(c.name == name).values(
        cursor_seq=cursor, applied=c.applied + applied, updated_at=utcnow(),
        rebuild_target=case((caught_up, null()), else_=c.rebuild_target),
        rebuild_started_at=case((caught_up, null()), else_=c.rebuild_started_at)))


async def reset(conn: AsyncConnection, name: str, target: int) -> None:
    """Back to the start of the log, rebuilding up to ``target``."""
    await conn.execute(update(consumers).where(c.name == name).values(
        cursor_seq=0, applied=0, updated_at=utcnow(), rebuild_started_at=utcnow(),
        rebuild_target=target if target > 0 else None))


async def first_after(conn: AsyncConnection, cursor: int) -> datetime | None:
    """When the first event after ``cursor`` was appended (None: none is)."""
    return (await conn.execute(select(events.c.created_at).where(events.c.seq > cursor)
                               .order_by(events.c.seq).limit(1))).scalar()


async def now(conn: AsyncConnection) -> datetime:
    value: datetime = await database_now(conn)
    return value
