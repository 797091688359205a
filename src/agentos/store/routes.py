"""The router's storage: the queue of events waiting to be routed, and the routes.

Taking a batch removes its events from ``route_queue`` in the router's write
transaction, most urgent first, and reads back only the events whose type one of the
routable triggers could match (the router checks each exactly); the others are
routed to nobody, and their payloads never leave the database. PostgreSQL takes the
batch in one statement (rows another router holds are skipped); SQLite, whose one
writer is the caller, reads the batch and then deletes it.

``store.routes`` is the backend's ``Routes``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    delete,
    exists,
    null,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import upsert
from agentos.store.tables import agent_versions, route_queue, routes
from agentos.store.tables import events as events_table

if TYPE_CHECKING:
    from agentos.store.base import Store


@dataclass(frozen=True, slots=True)
class Taken:
    """A batch taken from the queue: how many events it removed, and the rows of those
    whose type may match (in urgency order; an event pruned meanwhile has none)."""

    count: int
    rows: list[Any]


def _with_events(stmt: Select[Any], queued: FromClause, seq: ColumnElement[int],
                 type_likes: Sequence[str]) -> Select[Any]:
    """``stmt`` over ``queued`` with the columns of each queued event whose type is LIKE
    one of ``type_likes`` (escape '\\'), NULL for the others. SQLite's LIKE ignores
    ASCII case, so it may read a few more: a superset the router's exact check narrows."""
    if not type_likes:  # no trigger anywhere: read no event at all
        return stmt.add_columns(null().label("id")).select_from(queued)
    may_match = or_(*(events_table.c.type.like(p, escape="\\") for p in type_likes))
    return stmt.add_columns(events_table).select_from(
        queued.outerjoin(events_table, and_(events_table.c.seq == seq, may_match)))


class Routes(ABC):
    """The router's statements; the backend's subclass takes a batch its own way."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @abstractmethod
    async def take(self, conn: AsyncConnection, limit: int,
                   type_likes: Sequence[str]) -> Taken:
        """Remove up to ``limit`` events from the routing queue in the caller's write
        transaction, most urgent first; return the rows of those whose type is LIKE
        one of ``type_likes`` (SqliteRoutes and PostgresRoutes each take it their way)."""

    async def published_agents(self, conn: AsyncConnection) -> list[Any]:
        """(name, version, definition) of every published version, each agent's newest
        first."""
        av = agent_versions.c
        return list((await conn.execute(
            select(av.name, av.version, av.definition).where(av.status == "published")
            .order_by(av.name, av.sort_key.desc()))).all())

    async def record(self, conn: AsyncConnection, new_routes: list[dict[str, Any]]) -> None:
        """Insert routes; one already recorded for (event, agent, trigger) stays as is."""
        await conn.execute(upsert(conn, routes).on_conflict_do_nothing(), new_routes)

    async def of_event(self, conn: AsyncConnection, event_seq: int) -> list[Any]:
        r = routes.c
        return list((await conn.execute(
            select(routes).where(r.event_seq == event_seq).order_by(r.id))).all())

    async def is_queued(self, conn: AsyncConnection, event_seq: int) -> bool:
        return bool((await conn.execute(
            select(exists().where(route_queue.c.seq == event_seq)))).scalar())


class SqliteRoutes(Routes):
    async def take(self, conn: AsyncConnection, limit: int,
                   type_likes: Sequence[str]) -> Taken:
        q = route_queue.c
        taken = (await conn.execute(
            _with_events(select(q.rank.label("queued_rank"), q.seq.label("queued_seq")),
                         route_queue, q.seq, type_likes)
            .order_by(q.rank, q.seq).limit(limit))).all()
        if not taken:
            return Taken(0, [])
        # an event is queued once, at one rank: these name exactly the rows read
        await conn.execute(delete(route_queue).where(
            q.rank.in_(sorted({r.queued_rank for r in taken})),
            q.seq.in_([r.queued_seq for r in taken])))
        return Taken(len(taken), [r for r in taken if r.id is not None])


class PostgresRoutes(Routes):
    async def take(self, conn: AsyncConnection, limit: int,
                   type_likes: Sequence[str]) -> Taken:
        q = route_queue.c
        head = (select(q.rank, q.seq).order_by(q.rank, q.seq).limit(limit)
                .with_for_update(skip_locked=True))
        taken = (delete(route_queue).where(tuple_(q.rank, q.seq).in_(head))
                 .returning(q.rank, q.seq).cte("taken"))
        rows = (await conn.execute(
            _with_events(select(taken.c.rank.label("queued_rank"),
                                taken.c.seq.label("queued_seq")),
                         taken, taken.c.seq, type_likes)
            .order_by(taken.c.rank, taken.c.seq))).all()
        return Taken(len(rows), [r for r in rows if r.id is not None])
