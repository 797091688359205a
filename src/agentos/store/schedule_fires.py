"""Schedule fires' statements (``agentos.schedules``): a row per tick a schedule fired,
written in the firing transaction, read newest first by id (UUIDv7: the order they
were written in).

Retention: each time a schedule fires, its fires past the newest ``keep`` are deleted
in the same transaction, so a schedule holds at most ``keep`` of them however long it
runs; deleting the schedule deletes its fires (the foreign key cascades).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.ids import uuid7_many
from agentos.store.columns import upsert
from agentos.store.tables import schedule_fires

c = schedule_fires.c


async def record(conn: AsyncConnection, fires: list[dict[str, Any]], keep: int) -> None:
    """Write ``fires`` (each: schedule, scheduled_for, fired_at, catch_up, missed,
    event_id, task_id, error) in the caller's transaction; a tick recorded already (a
    second scheduler fired it too) is left as it was. Then prune each schedule's to
    its newest ``keep``."""
    if not fires:
        return
    rows = [{**fire, "id": new_id} for fire, new_id in zip(fires, uuid7_many(len(fires)),
                                                             strict=True)]
    await conn.execute(upsert(conn, schedule_fires).on_conflict_do_nothing(
        index_elements=[c.schedule, c.scheduled_for]), rows)
    await prune(conn, {fire["schedule"] for fire in fires}, keep)


async def prune(conn: AsyncConnection, names: Iterable[str], keep: int) -> None:
    """Delete the fires of the schedules ``names`` older than each one's newest ``keep``."""
    for name in sorted(names):
        oldest_kept = (select(c.id).where(c.schedule == name).order_by(c.id.desc())
                       .offset(keep - 1).limit(1).scalar_subquery())
        await conn.execute(delete(schedule_fires).where(c.schedule == name,
                                                        c.id < oldest_kept))


async def page(conn: AsyncConnection, schedule: str, before: str | None,
               limit: int | None) -> list[Any]:
    """A schedule's fires newest first, those older than the fire ``before``, at most
    ``limit`` (the caller asks for one more than a page to know if more follow)."""
    stmt = select(schedule_fires).where(c.schedule == schedule)
    if before is not None:
        stmt = stmt.where(c.id < before)
    return list((await conn.execute(stmt.order_by(c.id.desc()).limit(limit))).all())
