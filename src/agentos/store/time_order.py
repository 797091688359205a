"""A window of creation time as a range of sequence numbers, for the tables whose
rows are numbered as they are written (tasks, events): neither indexes its
``created_at``, so "created between A and B, newest first" would otherwise read
every row newer than B to find the first one that matches.

A row's time is taken when its transaction writes it, and its number then too, so
the two grow together except for rows written by transactions that overlap, whose
times can be out of order by at most how long such a transaction runs. A binary
search over the primary key (about 20 steps of one-row reads on a million rows, in
one statement) finds where
a time falls in the numbering; searched for ``since - SLACK`` and ``until + SLACK``
it gives bounds no matching row lies outside of, as long as no writing transaction
ran for longer than ``SLACK``. The caller keeps the exact time conditions as well,
so the bounds only say where to read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

SLACK = timedelta(minutes=10)  # longer than any transaction that writes a row


async def first_at_or_after(conn: AsyncConnection, seq: Column[int], at: Column[datetime],
                            moment: datetime) -> int | None:
    """The number of the row where ``at`` reaches ``moment`` (rows before it are
    earlier, were the times in order); None when every row is earlier. The search is
    one recursive statement: each step reads one row by the primary key."""
    table = seq.table
    # each of min and max alone, so that each reads one end of the primary key (SQLite
    # scans a whole index for the two in one SELECT)
    start = select(select(func.min(seq)).scalar_subquery().label("lo"),
                   (select(func.max(seq)).scalar_subquery() + 1).label("hi")).cte(
        "search", recursive=True)
    middle = (start.c.lo + start.c.hi) // 2
    probe = select(seq).where(seq >= middle).order_by(seq).limit(1).scalar_subquery()
    probe_at = select(at).where(seq >= middle).order_by(seq).limit(1).scalar_subquery()
    before = and_(probe_at.is_not(None), probe_at < literal(moment, at.type))
    search = start.union_all(select(
        case((before, probe + 1), else_=start.c.lo),
        case((before, start.c.hi), else_=middle)).where(start.c.lo < start.c.hi))
    found = (await conn.execute(select(search.c.lo, select(func.max(seq)).select_from(table)
                                       .scalar_subquery()).where(search.c.lo >= search.c.hi)
                                )).first()  # the last step, and the last row's number
    if found is None or found[0] is None or found[0] > found[1]:
        return None
    return int(found[0])


async def seq_window(conn: AsyncConnection, seq: Column[int], at: Column[datetime],
                     since: datetime | None, until: datetime | None
                     ) -> tuple[int | None, int | None]:
    """(the least, the one past the greatest) number a row created in [since, until)
    can have, each None when that side is open; an empty table or a window past the
    last row gives a range with nothing in it."""
    low = high = None
    if since is not None:
        found = await first_at_or_after(conn, seq, at, since - SLACK)
        low = found if found is not None else await _past_last(conn, seq)
    if until is not None:
        high = await first_at_or_after(conn, seq, at, until + SLACK)
    return low, high


async def _past_last(conn: AsyncConnection, seq: Column[int]) -> int:
    last = (await conn.execute(select(func.max(seq)))).scalar()
    return int(last or 0) + 1
