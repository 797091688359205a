"""The router's storage: the queue of events waiting to be routed, and the routes.

An append queues only the events a published trigger may match, in its own statement
(``sql/routable.sql``, against ``route_patterns``, which ``refresh_patterns`` keeps).
Taking a batch removes its events from ``route_queue`` in the router's write
transaction, most urgent first, and reads back only the events whose type one of the
routable triggers could match (the router checks each exactly); the others are
routed to nobody, and their payloads never leave the database. PostgreSQL takes the
batch in one statement (rows another router holds are skipped); SQLite, whose one
writer is the caller, reads the batch and then deletes it.

``store.routes`` is the backend's ``Routes``.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Text,
    and_,
    any_,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable

from agentos import patterns
from agentos.store.agent_config import switches
from agentos.store.columns import upsert
from agentos.store.tables import (
    agent_triggers,
    agent_versions,
    capability_switches,
    route_patterns,
    route_queue,
    routes,
)
from agentos.store.tables import events as events_table

if TYPE_CHECKING:
    from agentos.store.base import Store


# What the router's agents are read from, summed up by one statement: (published
# versions, the sum of their ids, their newest updated_at, capability switches, their
# newest updated_at). Any change to what it routes by moves it: a version entering or
# leaving the published set changes the count or, when one enters as another leaves,
# the ids' sum and the newest time (publishing stamps updated_at; a published version
# cannot change); a switch's upsert stamps its updated_at; a switch deleted changes the
# count.
Stamp = tuple[int, int, Any, int, Any]


@dataclass(frozen=True, slots=True)
class Taken:
    """A batch taken from the queue: how many events it removed, the rows of those
    whose type may match (in urgency order; an event pruned meanwhile has none), and
    the ``Stamp`` of the agents and switches the taking statement saw (None when it
    took nothing)."""

    count: int
    rows: list[Any]
    stamp: Stamp | None


@dataclass(frozen=True, slots=True)
class Routing:
    """What the router routes by: the published versions (each agent's newest first),
    every capability switch, and their ``Stamp``, all from one read."""

    agents: list[Any]
    switches: list[dict[str, Any]]
    stamp: Stamp


@functools.cache
def _stamp_columns() -> tuple[Any, ...]:
    """The ``Stamp``'s parts as scalar subqueries (one snapshot with the statement);
    built once: building them cost more CPU than the router's small batches."""
    av, sw = agent_versions.c, capability_switches.c
    published = av.status == "published"
    return (select(func.count()).where(published).scalar_subquery().label("s_n"),
            select(func.coalesce(func.sum(av.id), 0)).where(published)
            .scalar_subquery().label("s_ids"),
            select(func.max(av.updated_at)).where(published).scalar_subquery().label("s_at"),
            select(func.count()).select_from(capability_switches).scalar_subquery()
            .label("w_n"),
            select(func.max(sw.updated_at)).scalar_subquery().label("w_at"))


def _stamp_of_row(row: Any) -> Stamp:
    # max() keeps the column's type: the times come back as the rows' updated_at do
    return (int(row.s_n), int(row.s_ids), row.s_at, int(row.w_n), row.w_at)


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a queued event must be for one trigger to match it, as far as SQL can tell:
    its type LIKE ``type_like`` (escape '\\') and, for each (path, values) of ``equal``,
    the payload's value at that path (keys from the top) one of those JSON texts (the
    router puts there only values JSON compares as it does: ``router.sql_filter``)."""

    type_like: str
    equal: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()


def _with_events(stmt: Select[Any], queued: FromClause, seq: ColumnElement[int],
                 wanted: Sequence[Wanted], *, postgres: bool) -> Select[Any]:
    """``stmt`` over ``queued`` with the columns of each queued event one of ``wanted``
    may be, NULL for the others. SQLite checks the type only, and its LIKE ignores
    ASCII case, so it may read a few more: a superset the router's exact check narrows.
    PostgreSQL checks ``Wanted.equal`` too, and looks each event up by its number in a
    subquery of one row: judging a filter rare, its planner would otherwise scan the
    whole log for the events that pass it, on every batch."""
    if not wanted:  # no trigger anywhere: read no event at all
        return stmt.add_columns(null().label("id")).select_from(queued)
    e = events_table.c
    # a path and its values as two array parameters each: a parameter per segment and
    # value could pass PostgreSQL's limits (100 arguments a function, 65,535 parameters
    # a statement) with one long filter, and every batch would then fail
    may_match = or_(*(and_(e.type.like(w.type_like, escape="\\"), *(
        e.payload.op("#>")(cast(literal(list(path), ARRAY(Text)), ARRAY(Text))) == any_(
            cast(literal(list(values), ARRAY(Text)), ARRAY(JSONB)))
        for path, values in (w.equal if postgres else ()))) for w in wanted))
    if not postgres:
        return stmt.add_columns(events_table).select_from(
            queued.outerjoin(events_table, and_(e.seq == seq, may_match)))
    found = select(events_table).where(e.seq == seq, may_match).limit(1).lateral("found")
    return stmt.add_columns(*found.c).select_from(queued.outerjoin(found, true()))


def pattern_rewrite(globs: Iterable[str], present: Iterable[str] = ()
                    ) -> list[tuple[Executable, list[dict[str, str]]]]:
    """The statements (each with its rows) that make ``route_patterns`` hold ``globs`` as
    LIKE patterns, the patterns the router itself builds (``patterns.to_like``), where
    it holds ``present`` now: those no glob gives any more deleted, the new ones added."""
    likes, now = {patterns.to_like(g) for g in globs}, set(present)
    gone, new = sorted(now - likes), sorted(likes - now)
    return [*([(delete(route_patterns).where(route_patterns.c.type_like.in_(gone)), [])]
              if gone else []),
            *([(insert(route_patterns), [{"type_like": like} for like in new])]
              if new else [])]


def published_globs() -> Select[Any]:
    """The event types the triggers of published versions name, once each."""
    t, v = agent_triggers.c, agent_versions.c
    return (select(t.event_glob).distinct()
            .join_from(agent_triggers, agent_versions, v.id == t.agent_version_id)
            .where(v.status == "published"))


async def refresh_patterns(conn: AsyncConnection) -> None:
    """Make ``route_patterns`` hold the event types the triggers published now name, in
    the caller's write transaction: call it with every change to what is published (a
    version published, deprecated or archived, an agent deleted). On PostgreSQL under
    the table's lock, taken before reading: a concurrent change waits for this one to
    commit, then reads what it published. Appends only read the table and never wait."""
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("LOCK TABLE route_patterns IN SHARE ROW EXCLUSIVE MODE")
    globs = (await conn.execute(published_globs())).scalars().all()
    present = (await conn.execute(select(route_patterns.c.type_like))).scalars().all()
    for statement, rows in pattern_rewrite(globs, present):
        await conn.execute(statement, rows or None)


class Routes(ABC):
    """The router's statements; the backend's subclass takes a batch its own way."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @abstractmethod
    async def take(self, conn: AsyncConnection, limit: int,
                   wanted: Sequence[Wanted]) -> Taken:
        """Remove up to ``limit`` events from the routing queue in the caller's write
        transaction, most urgent first; return the rows of those one of ``wanted`` may
        be (SqliteRoutes and PostgresRoutes each take it their way)."""

    async def published_agents(self, conn: AsyncConnection) -> list[Any]:
        """(name, version, definition) of every published version, each agent's newest
        first."""
        av = agent_versions.c
        return list((await conn.execute(
            select(av.name, av.version, av.definition).where(av.status == "published")
            .order_by(av.name, av.sort_key.desc()))).all())

    async def routing(self, conn: AsyncConnection) -> Routing:
        """The published versions and the switches, with the ``Stamp`` of the snapshot
        the versions were read in (the stamp's own statement: a row with no version
        when none is published). The switches are read next, as new or newer: what is
        read is never older than the stamp that labels it."""
        av = agent_versions.c
        one = select(literal(1).label("one")).subquery("one")
        rows = (await conn.execute(
            select(av.name, av.version, av.definition, *_stamp_columns())
            .select_from(one.outerjoin(agent_versions, av.status == "published"))
            .order_by(av.name, av.sort_key.desc()))).all()
        return Routing([r for r in rows if r.name is not None], await switches(conn),
                       _stamp_of_row(rows[0]))

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
    """Reads the events by type only: its statements run on the loop, so a row read costs
    no wait, and its JSON functions cannot tell true from 1."""

    async def take(self, conn: AsyncConnection, limit: int,
                   wanted: Sequence[Wanted]) -> Taken:
        q = route_queue.c
        taken = (await conn.execute(
            _with_events(select(q.rank.label("queued_rank"), q.seq.label("queued_seq")),
                         route_queue, q.seq, wanted, postgres=False)
            .order_by(q.rank, q.seq).limit(limit))).all()
        if not taken:
            return Taken(0, [], None)
        # the write transaction holds SQLite's one write lock: no change can come
        # between this read and the one above
        stamp = _stamp_of_row((await conn.execute(select(*_stamp_columns()))).one())
        # an event is queued once, at one rank: these name exactly the rows read
        await conn.execute(delete(route_queue).where(
            q.rank.in_(sorted({r.queued_rank for r in taken})),
            q.seq.in_([r.queued_seq for r in taken])))
        return Taken(len(taken), [r for r in taken if r.id is not None], stamp)


class PostgresRoutes(Routes):
    """Reads back only the events that may pass a trigger's filter too (``Wanted.equal``):
    a busy server's router waits a loop round for each ~16 kB of the result."""

    async def take(self, conn: AsyncConnection, limit: int,
                   wanted: Sequence[Wanted]) -> Taken:
        rows = (await conn.execute(_pg_take(tuple(wanted)), {"take_limit": limit})).all()
        if not rows:
            return Taken(0, [], None)
        return Taken(int(rows[0].taken_n), [r for r in rows if r.id is not None],
                     _stamp_of_row(rows[0]))


@functools.lru_cache(maxsize=64)
def _pg_take(wanted: tuple[Wanted, ...]) -> Select[Any]:
    """PostgreSQL's take, built once per set of ``Wanted`` (building it cost ~2 ms of
    CPU, more than a small batch's own work); the limit is ``take_limit``."""
    # the rows by their physical address, found in the queue's index first: matched on
    # (rank, seq), a batch of thousands was a hash join over the whole queue, its cost
    # growing with the backlog
    taken = (text("DELETE FROM route_queue WHERE ctid = ANY(ARRAY(SELECT ctid FROM route_queue "
                  "ORDER BY rank, seq LIMIT :take_limit FOR UPDATE SKIP LOCKED)) "
                  "RETURNING rank, seq")
             .columns(route_queue.c.rank, route_queue.c.seq).cte("taken"))
    # only the rows of events that may match come back, and the first taken (which
    # carries the count and the stamp): the driver reads a result in slices of
    # ~16 kB, each a wait for the event loop, so the bytes of a batch of events no
    # trigger names would cost a busy server's router one loop round each
    # (the stamp's subqueries share the statement's snapshot with the take)
    x = _with_events(select(taken.c.rank.label("queued_rank"),
                            taken.c.seq.label("queued_seq"),
                            func.count().over().label("taken_n"),
                            func.row_number().over(order_by=(taken.c.rank, taken.c.seq))
                            .label("nth"), *_stamp_columns()),
                     taken, taken.c.seq, wanted, postgres=True).subquery("x")
    return (select(x).where(or_(x.c.id.is_not(None), x.c.nth == 1))
            .order_by(x.c.queued_rank, x.c.queued_seq))
