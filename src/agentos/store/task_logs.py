"""Task logs' statements (``agentos.task_logs``): the lines of an attempt, written in the
caller's transaction (the worker's round trip that ends the attempt adds them to its own
statement: ``store.tasks``), read in (attempt, line) order through the primary key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import LargeBinary, and_, cast, delete, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import upsert
from agentos.store.tables import task_logs, tasks

c = task_logs.c


class LogLine(Protocol):
    """A line to write (``task_logs.Line``)."""

    @property
    def task_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def line(self) -> int: ...
    @property
    def at(self) -> Any: ...
    @property
    def level(self) -> str: ...
    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class Kept:
    """What an attempt's log holds already."""

    lines: int  # the last line's number
    bytes: int
    capped: bool  # its truncated line is written


def rows(lines: Sequence[LogLine]) -> list[dict[str, Any]]:
    return [{"task_id": x.task_id, "attempt": x.attempt, "line": x.line, "at": x.at,
             "level": x.level, "message": x.message} for x in lines]


async def insert_in(conn: AsyncConnection, lines: Sequence[LogLine]) -> None:
    """Write ``lines`` in the caller's transaction (one statement; a line written
    already, by a request sent again, is left as it is)."""
    if lines:
        await conn.execute(upsert(conn, task_logs).on_conflict_do_nothing(), rows(lines))


async def attempt_state(conn: AsyncConnection, task_id: str, attempt: int) -> Kept:
    """How many lines and bytes the attempt's log holds, and whether it is capped."""
    size = func.octet_length(c.message) if conn.dialect.name == "postgresql" else \
        func.length(cast(c.message, LargeBinary))  # SQLite's length of a blob: bytes
    row = (await conn.execute(select(
        func.coalesce(func.max(c.line), 0), func.coalesce(func.sum(size), 0),
        func.count().filter(c.level == "truncated"))
        .where(c.task_id == task_id, c.attempt == attempt))).one()
    return Kept(int(row[0]), int(row[1]), bool(row[2]))


async def task_state(conn: AsyncConnection, task_id: str) -> Any | None:
    """The task's status and current attempt, or None."""
    t = tasks.c
    return (await conn.execute(select(t.status, t.attempt).where(t.id == task_id))).first()


async def page(conn: AsyncConnection, task_id: str, attempt: int | None,
               after: tuple[int, int] | None, limit: int) -> list[Any]:
    """Up to ``limit`` lines of the task after ``after`` (attempt, line), in order."""
    stmt = select(task_logs).where(c.task_id == task_id)
    if attempt is not None:
        stmt = stmt.where(c.attempt == attempt)
    if after is not None:
        stmt = stmt.where(or_(c.attempt > after[0],
                              and_(c.attempt == after[0], c.line > after[1])))
    return list((await conn.execute(stmt.order_by(c.attempt, c.line).limit(limit))).all())


async def delete_old(conn: AsyncConnection, cutoff: Any, ended: Sequence[str], limit: int
                     ) -> int:
    """Delete up to ``limit`` lines written before ``cutoff`` whose task has ended (its
    status in ``ended``), oldest first through the ``at`` index; how many went."""
    t = tasks.c
    oldest = (select(c.task_id, c.attempt, c.line)
              .where(c.at < cutoff,
                     exists().where(t.id == c.task_id, t.status.in_(list(ended))))
              .order_by(c.at).limit(limit))
    result = await conn.execute(delete(task_logs).where(
        tuple_(c.task_id, c.attempt, c.line).in_(oldest)))
    return int(result.rowcount or 0)
