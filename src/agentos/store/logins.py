"""Failed-login counters (``login_failures``): an attempt takes its number for every key
in one statement, before its password is looked at, so parallel guesses cannot all
pass the check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, literal
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import UTCDateTime, database_now, upsert
from agentos.store.tables import login_failures

f = login_failures.c


@dataclass(frozen=True)
class Taken:
    """What the counters said once this attempt was counted."""

    now: datetime  # the database's clock
    attempts: int  # this attempt's number on its busiest key (1: the first since a reset)
    locked_until: datetime | None  # the latest lockout in force on any key


async def take(conn: AsyncConnection, keys: list[str], *, max_failures: int,
               lockout_s: float, window_s: float) -> Taken:
    """Count one attempt on each key, atomically (one upsert: concurrent attempts get
    distinct numbers). The attempt that goes past ``max_failures`` starts a lockout of
    ``lockout_s``; during a lockout nothing is counted; after it, or after ``window_s``
    without an attempt, counting starts over."""
    now: datetime = await database_now(conn)
    at = literal(now, UTCDateTime)
    restart = (f.last_failed_at < literal(now - timedelta(seconds=window_s), UTCDateTime)) | (
        f.locked_until.is_not(None) & (f.locked_until <= at))
    locked = f.locked_until.is_not(None) & (f.locked_until > at)
    until = literal(now + timedelta(seconds=lockout_s), UTCDateTime)
    stmt: Any = upsert(conn, login_failures).values(
        [{"key": key, "failures": 1, "last_failed_at": now, "locked_until": None}
         for key in sorted(keys)])  # one order: two attempts never lock rows crosswise
    rows = (await conn.execute(stmt.on_conflict_do_update(
        index_elements=[f.key],
        set_={"failures": case((restart, 1), (locked, f.failures), else_=f.failures + 1),
              "last_failed_at": now,
              "locked_until": case((restart, None), (locked, f.locked_until),
                                   (f.failures + 1 > max_failures, until), else_=None)})
        .returning(f.failures, f.locked_until))).all()
    in_force = [r.locked_until for r in rows if r.locked_until is not None and
                r.locked_until > now]
    return Taken(now, max(r.failures for r in rows), max(in_force) if in_force else None)


async def forget(conn: AsyncConnection, keys: list[str]) -> None:
    """A right password: the keys' counts start over."""
    await conn.execute(delete(login_failures).where(f.key.in_(keys)))
