"""The event log's consumers: cursors (``consumers``) and the events after one.

A follower's batch (``news``, ``claim_batch``, ``events_after``, ``advance``) runs
named SQL on the driver where it can: its statements are the same few at every
gathering of every read model, and building them with SQLAlchemy cost most of a
batch (a server appending single events paid 5-6 ms a batch, two read models ten
batches a second each, on its loop with SQLite).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store import sql, sqlite_rows
from agentos.store.columns import database_now, upsert, utcnow
from agentos.store.tables import consumers, events

if TYPE_CHECKING:
    from agentos.store.base import Store

c = consumers.c
T = TypeVar("T")


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

    async def read() -> Any | None:
        return (await conn.execute(stmt)).first()

    return await _made_if_missing(conn, name, read)


async def _made_if_missing(conn: AsyncConnection, name: str,
                           read: Callable[[], Awaitable[T | None]]) -> T | None:
    """``read()``'s row of the consumer's cursor; if none, the row made at 0 and read
    again (the row was missing, or held: SKIP LOCKED; then the making does nothing)."""
    if (row := await read()) is not None:
        return row
    await ensure(conn, name)
    return await read()


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


async def news(store: Store, name: str) -> bool:
    """Whether the log's horizon is past the consumer's cursor: a follower's look before
    it takes a write transaction (one statement outside any transaction: SQLite's on
    the store's own read connection, PostgreSQL's on its driver connection)."""
    if store.dialect == "sqlite":
        row = cast(Any, store).read_row(sql.query("consumers_news", "sqlite"), {"name": name})
        return bool(row[0])
    async with store.driver_read() as db:
        found = await (await db.execute(sql.query("consumers_news", "postgresql",
                                                  driver=True),
                                        {"name": name}, prepare=True)).fetchone()
    return bool(found[0])


async def claim_batch(conn: AsyncConnection, name: str) -> tuple[int, int] | None:
    """A batch's claim: the consumer's cursor, locked to the end of the transaction (its
    row made at 0 the first time), and the log's horizon, which the batch's reads come
    after; None when another transaction holds the cursor (see ``claim``)."""
    statement = sql.query("consumers_claim", conn.dialect.name, driver=True)

    async def read() -> tuple[int, int] | None:
        row = (await sql.run(conn, statement, {"name": name})).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    return await _made_if_missing(conn, name, read)


async def events_after(conn: AsyncConnection, after: int, settled: int, likes: Sequence[str],
                       limit: int) -> list[Any]:
    """Events with ``after < seq <= settled`` whose type is LIKE one of ``likes`` (all
    when empty; ``\\`` escapes), in order, at most ``limit``: rows as SQLAlchemy gives
    them (JSON parsed, times as aware UTC datetimes)."""
    dialect = conn.dialect.name
    statement = sql.query("consumers_events", dialect, driver=True, columns=_EVENT_COLUMNS,
                          types=_types_test(len(likes)))
    params: dict[str, Any] = {"after": after, "settled": settled, "limit": limit}
    params.update((f"like{n}", like) for n, like in enumerate(likes))
    rows = (await sql.run(conn, statement, params)).fetchall()
    if dialect == "sqlite":
        return [_sqlite_event(r) for r in rows]
    # psycopg parses the JSON; its times are in the session's zone
    return [_Event(*r[:_AT], r[_AT].astimezone(UTC), *r[_AT + 1:]) for r in rows]


_EVENT_COLUMNS = ", ".join(col.name for col in events.columns)
_sqlite_event = sqlite_rows.reader(list(events.columns))
_Event: Any = cast(Any, namedtuple)("_Event", [col.name for col in events.columns])
_AT = [col.name for col in events.columns].index("created_at")


def _types_test(likes: int) -> str:
    """``consumers_events``' test of an event's type: LIKE one of ``likes`` patterns."""
    if not likes:
        return "TRUE"
    return "(" + " OR ".join(f"type LIKE :like{n} ESCAPE '\\'" for n in range(likes)) + ")"


async def relax_durability(conn: AsyncConnection) -> None:
    """Let this transaction commit without waiting for its WAL to reach the disk
    (PostgreSQL's synchronous_commit off; SQLite's WAL commits need no fsync already):
    for a cursor's move over events that changed nothing."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SET LOCAL synchronous_commit TO off"))


async def advance(conn: AsyncConnection, name: str, cursor: int, applied: int) -> None:
    """Move the cursor to ``cursor`` after ``applied`` events; a rebuild whose target
    it reaches is over."""
    await sql.run(conn, sql.query("consumers_advance", conn.dialect.name, driver=True),
                   {"name": name, "cursor": cursor, "applied": applied})


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
