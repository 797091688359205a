"""Locks' storage: the statements of ``locks`` and ``lock_waiters``, behind ``store.locks``.

Rules the statements keep (the named SQL files refer to them by number):

1. A free lock has no live waiter: whatever frees a lock grants the next live waiter
   (priority, then arrival) in the same transaction, or says it found none.
2. ``locks.queued`` says a waiter may be queued: set by every waiter that joins while
   it holds the lock row, reset by every change that frees the lock. A release in one
   statement reads it on the row's newest version, so it never misses a waiter.
3. The token grows with every grant and is never reused (the row outlives releases).
4. Only the database clock decides expiry: leases compare with its ``now``.

The common cases are one statement each, on the store's driver connection (the
``hot`` methods: ``acquire``, ``release``, ``renew``, ``join`` and ``handover``; on
PostgreSQL the last two after a statement that locks the lock row, in the same round
trip) or, while a before-commit hook must see every write (the API's audit row), in a
write transaction; each appends its ``lock.*`` event. A hot method answers None (or
False) when it changed nothing: the caller then takes the full path, a transaction
of the step methods below (expiry, the queue, acquire-many, the error to explain).
On SQLite a ``release``, ``join`` or ``handover`` is a few statements on SQLite's own
connection in one transaction.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store import audit as store_audit
from agentos.store import sql
from agentos.store.columns import (
    database_now,
    iso_text,
    json_dumps,
    json_loads,
    later,
    upsert,
    utc_from_text,
    utcnow,
)
from agentos.store.events import CHANNEL as EVENTS_CHANNEL
from agentos.store.events import Draft, insert_rows
from agentos.store.tables import lock_waiters, locks
from agentos.store.tables import tasks as tasks_table
from agentos.store.tasks import CHANNEL as TASKS_CHANNEL

if TYPE_CHECKING:
    from agentos.store.base import Fold, Store

CHANNEL = "agentos_locks"  # notified when a lock is granted to a waiter
L = locks.c
W = lock_waiters.c


class Look(NamedTuple):
    """A waiter's look at a lock (``Locks.look``)."""

    owner: str | None
    token: int
    expires_at: datetime | None
    now: datetime
    waiter: int | None  # the looking owner's queue entry, if it has one


class Joined(NamedTuple):
    """A queue join's answer (``Locks.join``)."""

    position: int  # 1 = next
    entry: int  # the queue entry's id (the grant's notification names it)


@dataclass(frozen=True)
class Handover:
    """A hand-over's answer: whether a waiter was granted the lock, and its task."""

    granted: bool
    waiter_task: str | None


class Locks(ABC):
    """The lock statements; a backend's subclass runs the one-statement paths its way."""

    # whether a hand-over that finds nobody waiting costs what the plain release does
    # (SQLite: each is a few statements in one transaction), so a release need not
    # guess which one the lock wants (PostgreSQL's hand-over locks the lock row first)
    handover_frees = False

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- one statement each (None / False: nothing changed, take the full path) --

    @abstractmethod
    async def acquire(self, params: dict[str, Any]) -> tuple[int, datetime] | None:
        """Take a free (or new) lock and append ``lock.acquired``: (token, expiry)."""

    @abstractmethod
    async def release(self, params: dict[str, Any]) -> bool:
        """Free a lock nobody waits for (rule 2) and append ``lock.released``."""

    @abstractmethod
    async def renew(self, params: dict[str, Any]) -> datetime | None:
        """Extend a live lease the owner holds with this token: the new expiry."""

    @abstractmethod
    async def join(self, params: dict[str, Any]) -> tuple[int, int] | None:
        """Join the queue of a lock another owner holds (or stretch the place the owner
        has there) and append ``lock.queued`` for a new entry: the position (1 = next)
        and the queue entry's id (the grant's notification names it)."""

    async def acquire_or_join(self, params: dict[str, Any], held_first: bool = False
                              ) -> tuple[int, datetime] | Joined | None:
        """``acquire``, or when the lock is held ``join``: (token, expiry) or where
        the queue entry stands (None: neither, take the full path). The parameters are
        the join's (the event's payload with ``token`` None, ``queue_s``).
        ``held_first``: the caller expects the lock held, so the join goes first and
        the acquire only where the join found no holder (a refused acquire is a round
        trip of its own on PostgreSQL, and two to three times the join's holder
        ``SELECT`` on SQLite)."""
        if held_first and (joined := await self.join(params)):
            return Joined(*joined)
        if (got := await self.acquire(params)) or held_first:
            return got
        joined = await self.join(params)
        return Joined(*joined) if joined else None

    @abstractmethod
    async def handover(self, params: dict[str, Any]) -> Handover | None:
        """Release a lock and grant it to its next live waiter (or free it)."""

    # -- steps of the full path, within the caller's write transaction --------

    async def now(self, conn: AsyncConnection) -> datetime:
        now: datetime = await database_now(conn)
        return now

    async def locked_row(self, conn: AsyncConnection, resource: str) -> Any:
        return (await conn.execute(select(locks).where(L.resource == resource)
                                   .with_for_update())).first()

    async def locked_rows(self, conn: AsyncConnection, resources: list[str] | None = None,
                          owners: Sequence[str] | None = None,
                          tokens: list[int] | None = None) -> list[Any]:
        """The lock rows of these resources and/or owners (and tokens), locked, in
        resource order (every transaction locks rows in that order: no deadlock)."""
        stmt = select(locks)
        if resources is not None:
            stmt = stmt.where(L.resource.in_(resources))
        if owners is not None:
            stmt = stmt.where(L.owner.in_(owners))
        if tokens is not None:
            stmt = stmt.where(L.token.in_(tokens))
        return list((await conn.execute(stmt.order_by(L.resource).with_for_update())).all())

    async def held(self, conn: AsyncConnection, resource: str) -> Any:
        """The lock row, locked, with the database's ``now`` and ``waiting`` (a waiter's
        id or None)."""
        waiting = select(W.id).where(W.resource == L.resource).limit(1).scalar_subquery()
        return (await conn.execute(select(locks, utcnow().label("now"),
                                          waiting.label("waiting"))
                                   .where(L.resource == resource).with_for_update(of=locks))
                ).first()

    async def grant_free(self, conn: AsyncConnection, resource: str, type_: str,
                         holder: dict[str, Any], ttl_s: float) -> tuple[int, datetime] | None:
        """Take the lock if it is free (or new) in one statement: (token, expiry); None
        if held. A conflict locks the row even when the WHERE refuses the update."""
        values = {**holder, "acquired_at": utcnow(), "expires_at": later(ttl_s),
                  "updated_at": utcnow()}
        new = upsert(conn, locks).values(resource=resource, type=type_, token=1, **values)
        stmt = new.on_conflict_do_update(index_elements=["resource"],
                                          set_={"token": L.token + 1, **values},
                                          where=L.owner.is_(None)).returning(L.token,
                                                                             L.expires_at)
        row = (await conn.execute(stmt)).first()
        return None if row is None else (int(row.token), row.expires_at)

    async def free(self, conn: AsyncConnection, resource: str, now: datetime) -> None:
        """Free the lock (the caller holds its row); ``queued`` says again whether anyone
        waits (rule 2; a waiter ``grant_next`` then takes leaves it stale, which costs the
        next release a look at the queue once)."""
        anyone = select(W.id).where(W.resource == resource).exists()
        await conn.execute(update(locks).where(L.resource == resource).values(
            owner=None, priority=None, acquired_at=None, expires_at=None, metadata=None,
            task_id=None, agent=None, updated_at=now, queued=anyone))

    async def extend(self, conn: AsyncConnection, resource: str, expires: datetime,
                     now: datetime) -> None:
        await conn.execute(update(locks).where(L.resource == resource).values(
            expires_at=expires, updated_at=now))

    async def mark_queued(self, conn: AsyncConnection, resource: str) -> None:
        """A waiter joined (or stretched its entry): the lock's release takes the full
        path (rule 2)."""
        await conn.execute(update(locks).where(L.resource == resource, L.queued.is_(False))
                           .values(queued=True))

    async def grant_next(self, conn: AsyncConnection, resource: str, now: datetime
                         ) -> tuple[Any, int] | None:
        """The lock was just freed: grant it to the best live waiter (rule 1), lapsed
        entries skipped (the sweeper drops them); (the waiter's entry, the new token),
        or None. A waiting task is made due at once; the waiters are woken."""
        best = (select(W.id).where(W.resource == resource, W.expires_at >= now)
                .order_by(W.priority.desc(), W.id).limit(1).scalar_subquery())
        nxt = (await conn.execute(delete(lock_waiters).where(W.id == best)
                                  .returning(*lock_waiters.c))).first()
        if nxt is None:
            return None
        grant = update(locks).where(L.resource == resource).values(
            token=L.token + 1, owner=nxt.owner, priority=nxt.priority, acquired_at=now,
            expires_at=now + timedelta(seconds=nxt.ttl_s), metadata=nxt.metadata,
            task_id=nxt.task_id, agent=nxt.agent, updated_at=now).returning(L.token)
        token = (await conn.execute(self._notifying(grant, nxt.id))).one()[0]
        if nxt.task_id:  # a task that was handed back to wait for this lock: run it now
            tc = tasks_table.c
            await conn.execute(update(tasks_table).where(
                tc.id == nxt.task_id, tc.status == "scheduled").values(run_at=now,
                                                                        updated_at=now))
            await self.store.notify(conn, TASKS_CHANNEL)
        await self.store.notify(conn, CHANNEL, sent=self._notifies)
        return nxt, int(token)

    _notifies = False  # whether ``_notifying`` sends NOTIFY in the grant's own statement

    def _notifying(self, grant: Any, entry: int) -> Any:
        return grant

    @staticmethod
    def noted_grant(notes: Sequence[str], entry: int) -> tuple[int, datetime] | None:
        """(token, expiry) of the grant to queue entry ``entry`` that one of ``notes``
        (the payloads of this channel's notifications) announces, or None.

        The grant's notification is sent from the granting transaction, so it is
        delivered only once the grant is committed; an entry's id is never reused
        and the grant deletes the entry, so no other grant can name it."""
        for note in notes:
            if note.startswith(_NOTE):
                parts = note.split(" ")
                if len(parts) == 4 and parts[1] == str(entry):
                    return int(parts[2]), utc_from_text(parts[3])
        return None

    async def waiter(self, conn: AsyncConnection, resource: str, owner: str) -> Any:
        return (await conn.execute(select(lock_waiters).where(
            W.resource == resource, W.owner == owner))).first()

    async def add_waiter(self, conn: AsyncConnection, resource: str, owner: str,
                         entry: dict[str, Any]) -> Any:
        """Queue ``owner`` for ``resource`` (and mark the lock queued): its entry."""
        await conn.execute(insert(lock_waiters).values(resource=resource, owner=owner, **entry))
        await self.mark_queued(conn, resource)
        return (await conn.execute(select(lock_waiters).where(
            W.resource == resource, W.owner == owner))).one()

    async def stretch_waiter(self, conn: AsyncConnection, resource: str, owner: str,
                             expires: datetime, ttl_s: float | None = None) -> None:
        """Keep ``owner``'s place in the queue until ``expires`` (and mark the lock
        queued; a ``ttl_s`` given is the lease it gets when granted)."""
        values: dict[str, Any] = {"expires_at": expires}
        if ttl_s is not None:
            values["ttl_s"] = ttl_s
        await conn.execute(update(lock_waiters).where(W.resource == resource, W.owner == owner)
                           .values(**values))

    async def leave_queue(self, conn: AsyncConnection, resource: str, owner: str) -> None:
        await conn.execute(delete(lock_waiters).where(W.resource == resource, W.owner == owner))

    async def leave_queues(self, conn: AsyncConnection, owners: Sequence[str],
                           resources: Sequence[str] | None = None) -> None:
        """Take ``owners`` out of every queue (or only those of ``resources``)."""
        stmt = delete(lock_waiters).where(W.owner.in_(owners))
        if resources is not None:
            stmt = stmt.where(W.resource.in_(resources))
        await conn.execute(stmt)

    async def position(self, conn: AsyncConnection, resource: str, priority: int,
                       before_id: int | None, now: datetime) -> int:
        """1 + the live waiters served before a waiter of ``priority`` (arrived as
        ``before_id``)."""
        ahead = W.priority > priority
        ahead = or_(ahead, W.priority == priority) if before_id is None else or_(
            ahead, and_(W.priority == priority, W.id < before_id))
        n = (await conn.execute(select(func.count()).select_from(lock_waiters).where(
            W.resource == resource, W.expires_at >= now, ahead))).scalar_one()
        return int(n) + 1

    async def attempt(self, conn: AsyncConnection, task_id: str) -> Any:
        """(status, attempt) of a task, or None."""
        tc = tasks_table.c
        return (await conn.execute(select(tc.status, tc.attempt).where(tc.id == task_id))
                ).first()

    async def renew_owner(self, conn: AsyncConnection, owner: str, ttl_s: float,
                          now: datetime) -> None:
        """Extend every live lease ``owner`` holds."""
        await conn.execute(update(locks).where(L.owner == owner, L.expires_at >= now).values(
            expires_at=now + timedelta(seconds=ttl_s), updated_at=now))

    async def lapsed(self, conn: AsyncConnection, now: datetime, limit: int) -> list[Any]:
        """Held locks whose lease lapsed, locked (others' skipped), in resource order."""
        return list((await conn.execute(select(locks).where(
            L.owner.is_not(None), L.expires_at < now).order_by(L.resource).limit(limit)
            .with_for_update(skip_locked=True))).all())

    async def drop_lapsed_waiters(self, conn: AsyncConnection, now: datetime) -> None:
        await conn.execute(delete(lock_waiters).where(W.expires_at < now))

    async def next_expiry(self, conn: AsyncConnection) -> datetime | None:
        expiry: datetime | None = (await conn.execute(select(func.min(L.expires_at)).where(
            L.owner.is_not(None)))).scalar()
        return expiry

    # -- acquire-any: a pool of resources ---------------------------------

    async def names_under(self, conn: AsyncConnection, prefix: str, limit: int) -> list[str]:
        """The resources ever locked whose id starts with ``prefix``, in id order: a
        range over the primary key (ids compare byte by byte on both backends, and
        their characters are ASCII, so the range ends at the prefix's last character
        plus one)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return list((await conn.execute(select(L.resource).where(
            L.resource >= prefix, L.resource < end).order_by(L.resource).limit(limit))
        ).scalars())

    async def positions(self, conn: AsyncConnection, resources: list[str], priority: int,
                        now: datetime) -> dict[str, int]:
        """For each of ``resources``, the place a new waiter of ``priority`` would take in
        its queue (1 + the live waiters of that priority or higher), in one statement."""
        counts: dict[str, int] = {str(r): int(n) for r, n in (await conn.execute(
            select(W.resource, func.count()).where(
                W.resource.in_(resources), W.expires_at >= now, W.priority >= priority)
            .group_by(W.resource))).all()}
        return {r: int(counts.get(r, 0)) + 1 for r in resources}

    async def look_any(self, conn: AsyncConnection, resources: list[str], owner: str
                       ) -> list[Any]:
        """For each of ``resources`` ever locked: its holder, token and lease, the
        database's now and ``owner``'s place in its queue (``waiter``: the entry's id
        or None), in one read."""
        mine = (select(W.id).where(W.resource == L.resource, W.owner == owner)
                .scalar_subquery())
        return list((await conn.execute(select(
            L.resource, L.owner, L.token, L.expires_at, utcnow().label("now"),
            mine.label("waiter")).where(L.resource.in_(resources)))).all())

    # -- reads ------------------------------------------------------------

    async def look(self, resource: str, owner: str) -> Look | None:
        """``peek`` in one statement of its own, outside any transaction (a waiter's
        look after a wake-up: several a hand-over under contention, so the backends
        send it as named SQL on the driver's connection)."""
        async with self.store.read() as conn:
            row = await self.peek(conn, resource, owner)
        return None if row is None else Look(row.owner, int(row.token), row.expires_at,
                                             row.now, row.waiter)

    async def peek(self, conn: AsyncConnection, resource: str, owner: str) -> Any:
        """The lock's holder, token and lease, the database's now and ``owner``'s place
        in the queue (``waiter``: its entry's id or None); None for a lock never taken."""
        return (await conn.execute(select(
            L.owner, L.token, L.expires_at, utcnow().label("now"),
            select(W.id).where(W.resource == resource, W.owner == owner).scalar_subquery()
            .label("waiter")).where(L.resource == resource))).first()

    async def get(self, conn: AsyncConnection, resource: str) -> tuple[Any, list[Any]]:
        """The lock's row (or None) and its queue in serving order."""
        row = (await conn.execute(select(locks).where(L.resource == resource))).first()
        waiters = (await conn.execute(select(lock_waiters).where(W.resource == resource)
                                      .order_by(W.priority.desc(), W.id))).all()
        return row, list(waiters)

    async def listing(self, conn: AsyncConnection, type_: str | None, after: str | None,
                      limit: int | None) -> tuple[list[Any], list[Any]]:
        """Held locks and locks with waiters, by resource after ``after``, at most
        ``limit`` (None: all), and their waiters in order."""
        queued = select(W.resource).distinct()
        stmt = select(locks).where(or_(L.owner.is_not(None), L.resource.in_(queued)))
        if type_:
            stmt = stmt.where(L.type == type_)
        if after is not None:
            stmt = stmt.where(L.resource > after)
        rows = (await conn.execute(stmt.order_by(L.resource).limit(limit))).all()
        waiters = (await conn.execute(select(lock_waiters).where(
            W.resource.in_([r.resource for r in rows])).order_by(
            W.resource, W.priority.desc(), W.id))).all() if rows else []
        return list(rows), list(waiters)

    async def held_by_workers(self, conn: AsyncConnection, worker_ids: list[str]) -> list[Any]:
        """The locks held for the running tasks of these workers (with ``worker_id``)."""
        tc = tasks_table.c
        return list((await conn.execute(select(locks, tc.worker_id).join(
            tasks_table, tc.id == L.task_id).where(
            tc.status == "running", tc.worker_id.in_(worker_ids), L.owner.is_not(None))
            .order_by(L.resource))).all())


# ------------------------------------------------------------------ SQLite


class SqliteLocks(Locks):
    handover_frees = True

    async def acquire(self, params: dict[str, Any]) -> tuple[int, datetime] | None:
        got: tuple[int, datetime] | None = await self._one(_acquire_sqlite, params)
        return got

    async def release(self, params: dict[str, Any]) -> bool:
        return bool(await self._one(_release_sqlite, params))

    async def join(self, params: dict[str, Any]) -> tuple[int, int] | None:
        joined: tuple[int, int] | None = await self._one(_join_sqlite, params)
        return joined

    async def acquire_or_join(self, params: dict[str, Any], held_first: bool = False
                              ) -> tuple[int, datetime] | Joined | None:
        # one write transaction, not two turns at the write lock
        got: tuple[int, datetime] | Joined | None = await self._one(
            partial(_acquire_or_join_sqlite, held_first=held_first), params)
        return got

    async def handover(self, params: dict[str, Any]) -> Handover | None:
        got = await self._one(_handover_sqlite, params)
        if not got:
            return None
        waiter, waiter_task, token, expires = got
        if waiter is not None:  # committed: wake this process's waiters, naming the grant
            self.store.wake(CHANNEL, f"{_NOTE} {waiter} {token} {iso_text(expires)}")
            if waiter_task is not None:
                self.store.wake(TASKS_CHANNEL)
        return Handover(waiter is not None, waiter_task)

    async def renew(self, params: dict[str, Any]) -> datetime | None:
        rows = await self._one(lambda db, p: db.execute(_SQLITE_RENEW, p).fetchall(), params,
                               appends=False)
        return utc_from_text(rows[0][0]) if rows else None

    async def look(self, resource: str, owner: str) -> Look | None:
        row = cast(Any, self.store).read_row(_SQLITE_PEEK, {"resource": resource,
                                                           "owner": owner})
        if row is None:
            return None
        return Look(row[0], int(row[1]), None if row[2] is None else utc_from_text(row[2]),
                    utc_from_text(row[3]), row[4])

    async def _one(self, run: Callable[[sqlite3.Connection, dict[str, Any]], Any],
                   params: dict[str, Any], appends: bool = True) -> Any:
        """``run(db, params)`` on SQLite's own connection, in its write transaction, with
        the request's audit row where it changed something (or in a write transaction of
        the store's while a hook has no driver form)."""
        async with self.store.driver(hooked=True) as db:
            if db is not None:
                out = run(db, params)
                if not out:
                    self.store.nothing_changed(db)
        if db is None:
            async with self.store.write() as conn:
                out = run(cast(Any, conn).driver(), params)
                if not out:
                    self.store.nothing_changed(conn)  # the full path's transaction is audited
                elif appends:
                    await self.store.notify(conn, EVENTS_CHANNEL)
        elif out and appends:
            self.store.wake(EVENTS_CHANNEL)  # committed: this process's listeners too
        return out


def _acquire_sqlite(db: sqlite3.Connection, params: dict[str, Any]
                    ) -> tuple[int, datetime] | None:
    take, settle = _SQLITE_ACQUIRE
    row = db.execute(take, params).fetchone()
    if row is None:
        return None
    db.execute(settle, params)
    token, expires = int(row[0]), utc_from_text(row[1])
    _event_sqlite(db, params, "acquired", params["task_id"], token=token,
                  expires_at=iso_text(expires))
    return token, expires


def _release_sqlite(db: sqlite3.Connection, params: dict[str, Any]) -> bool:
    held, free = _SQLITE_RELEASE
    row = db.execute(held, params).fetchone()
    if row is None:
        return False
    task_id, acquired_at, now = row
    db.execute(free, {"resource": params["resource"], "now": now})
    held_ms = (utc_from_text(now) - utc_from_text(acquired_at)).total_seconds() * 1000
    _event_sqlite(db, params, "released", task_id,
                  **({"task_id": task_id} if task_id else {}), held_ms=round(held_ms, 1))
    return True


def _acquire_or_join_sqlite(db: sqlite3.Connection, params: dict[str, Any],
                            held_first: bool) -> tuple[int, datetime] | Joined | None:
    if held_first and (joined := _join_sqlite(db, params)):
        return Joined(*joined)
    if (got := _acquire_sqlite(db, params)) or held_first:
        return got
    joined = _join_sqlite(db, params)
    return Joined(*joined) if joined else None


def _join_sqlite(db: sqlite3.Connection, params: dict[str, Any]) -> tuple[int, int] | None:
    """SQLite's queue join (locks_join.sqlite) with its lock.queued event for a new
    entry: (the position, the entry's id), or None when the lock is not another's."""
    held, stretch, add, mark, place = _SQLITE_JOIN
    row = db.execute(held, params).fetchone()
    if row is None:
        return None
    holder, now = row
    at = {**params, "now": now}
    entry = db.execute(stretch, at).fetchone()
    joined = entry is None
    if joined:
        entry = db.execute(add, at).fetchone()
    entry_id, priority = entry
    db.execute(mark, at)
    position = int(db.execute(place, {"resource": params["resource"], "now": now,
                                      "entry": entry_id, "w_priority": priority}
                              ).fetchone()[0])
    if joined:
        _event_sqlite(db, params, "queued", params["task_id"], position=position,
                      holder=holder)
    return position, int(entry_id)


def _handover_sqlite(db: sqlite3.Connection, params: dict[str, Any]
                     ) -> tuple[int | None, str | None, int | None, datetime | None] | None:
    """SQLite's hand-over (locks_handover.sqlite) with its events: (the waiter's entry,
    its task, the new token, the lease's end), all None when the lock was freed."""
    held, take, grant, free, due = _SQLITE_HANDOVER
    row = db.execute(held, params).fetchone()
    if row is None:
        return None
    task_id, acquired_at, now, queued = row
    at = utc_from_text(now)
    nxt = db.execute(take, {"resource": params["resource"], "now": now}).fetchone() \
        if queued else None  # (rule 2: nobody waits; a release's statements then)
    out: tuple[int | None, str | None, int | None, datetime | None] = (None, None, None, None)
    if nxt is None:  # freed: a plain release's update when nobody was queued
        db.execute(free if queued else _SQLITE_FREE,
                   {"resource": params["resource"], "now": now})
    else:
        entry, owner, priority, ttl_s, metadata, waiter_task, agent, created_at = nxt
        token, expires_text = db.execute(grant, {
            "resource": params["resource"], "now": now, "w_owner": owner,
            "w_priority": priority, "w_ttl_s": ttl_s, "w_metadata": metadata,
            "w_task_id": waiter_task, "w_agent": agent}).fetchone()
        if waiter_task is not None:
            db.execute(due, {"now": now, "w_task_id": waiter_task})
        out = (int(entry), waiter_task, int(token), utc_from_text(expires_text))
    held_ms = (at - utc_from_text(acquired_at)).total_seconds() * 1000
    released, payload = _drafted(params, "released", task_id,
                                 **({"task_id": task_id} if task_id else {}),
                                 held_ms=round(held_ms, 1))
    drafts, payloads, ids = [released], [payload], [params["event_id"]]
    if nxt is not None:
        waited_ms = (at - utc_from_text(created_at)).total_seconds() * 1000
        drafts.append(Draft("lock.acquired", "locks", {}, causation_id=waiter_task))
        payloads.append(json_dumps({
            "resource": params["resource"], "type": params["type"], "owner": owner,
            "token": out[2], **({"task_id": waiter_task} if waiter_task else {}),
            "priority": priority, "expires_at": iso_text(cast(datetime, out[3])),
            "waited_ms": round(waited_ms, 1)}))
        ids.append(params["grant_event_id"])
    insert_rows(db, drafts, payloads, ids, params["created_at"])  # one insert for both
    return out


def _event_sqlite(db: sqlite3.Connection, params: dict[str, Any], kind: str,
                  cause: str | None, **extra: Any) -> None:
    """Append the event of a one-statement path on SQLite's own connection: the
    caller's payload with what only the statement knows."""
    draft, payload = _drafted(params, kind, cause, **extra)
    insert_rows(db, [draft], [payload], [params["event_id"]], params["created_at"])


def _drafted(params: dict[str, Any], kind: str, cause: str | None, **extra: Any
             ) -> tuple[Draft, str]:
    """A one-statement path's ``lock.<kind>`` event and its payload: the caller's with
    what only the statement knows."""
    return (Draft(f"lock.{kind}", "locks", {}, causation_id=cause),
            json_dumps({**json_loads(params["payload"]), **extra}))


# -------------------------------------------------------------- PostgreSQL


class PostgresLocks(Locks):
    _notifies = True

    async def acquire(self, params: dict[str, Any]) -> tuple[int, datetime] | None:
        rows = await self._one("acquire", params)
        return (int(rows[0].token), rows[0].expires_at.astimezone(UTC)) if rows else None

    async def release(self, params: dict[str, Any]) -> bool:
        return bool(await self._one("release", params))

    async def renew(self, params: dict[str, Any]) -> datetime | None:
        rows = await self._one("renew", params, appends=False)
        return rows[0].expires_at.astimezone(UTC) if rows else None

    async def join(self, params: dict[str, Any]) -> tuple[int, int] | None:
        rows = await self._one("join", params)
        return (int(rows[0].position), int(rows[0].entry)) if rows else None

    async def handover(self, params: dict[str, Any]) -> Handover | None:
        rows = await self._one("handover", params)
        if not rows:
            return None
        if rows[0].waiter is not None:  # committed: wake this process's waiters too
            self.store.wake(CHANNEL, rows[0].note)
            if rows[0].waiter_task is not None:
                self.store.wake(TASKS_CHANNEL)
        return Handover(rows[0].waiter is not None, rows[0].waiter_task)

    async def look(self, resource: str, owner: str) -> Look | None:
        async with self.store.driver() as db:
            if db is not None:
                rows = await (await db.execute(_PG["peek"], {"resource": resource,
                                                             "owner": owner}, prepare=True)
                              ).fetchall()
        if db is None:  # a hook must see every write: this process's driver is not used
            return await super().look(resource, owner)
        if not rows:
            return None
        row = rows[0]
        return Look(row.owner, int(row.token),
                    None if row.expires_at is None else row.expires_at.astimezone(UTC),
                    row.now.astimezone(UTC), row.waiter)

    def _notifying(self, grant: Any, entry: int) -> Any:
        # wake the waiters of every server in the same round trip, naming the grant
        return grant.returning(func.pg_notify(CHANNEL, func.concat_ws(
            " ", _NOTE, entry, L.token, func.to_char(func.timezone("UTC", L.expires_at),
                                                     _PG_ISO))))

    async def _one(self, name: str, params: dict[str, Any], appends: bool = True
                   ) -> list[Any]:
        """``locks_<name>`` on the driver connection in autocommit (a join and a
        hand-over: in a transaction, after a statement that locks the lock row, so
        theirs sees every waiter queued before). With the request's audit row where
        one is pending: written by the statement itself where it is one (acquire,
        release, and join and hand-over after the lock row's: ``Store.folding``), else
        the block is one transaction with it (``Store.driver(hooked=True)``); the row
        left out when the statement changed nothing. In a write transaction of the
        store's while a hook has no driver form."""
        statement, lock_row = _PG[name], name in _PG_AFTER_LOCK_ROW
        async with self.store.folding(name in _WRITTEN_BY) as (db, fold):
            if db is not None:
                if lock_row:
                    out = await _after_lock_row(db, name, params, fold)
                else:
                    # (fold is None for a write without an audit row of its own:
                    # folding's argument; so the plain statement never takes a row it
                    # cannot write)
                    text, args = store_audit.carried(fold, statement,
                                                     _PG_AUDITED.get(name, statement), params)
                    out = await (await db.execute(text, args, prepare=True)).fetchall()
                if not out:
                    self.store.nothing_changed(db)  # (a folded audit row was not written)
        if db is None:
            async with self.store.write() as conn:
                if lock_row:
                    await conn.exec_driver_sql(_PG_LOCK_ROW, params)
                out = list((await conn.exec_driver_sql(statement, params)).all())
                if not out:
                    self.store.nothing_changed(conn)  # the full path's transaction is audited
                elif appends:
                    await self.store.notify(conn, EVENTS_CHANNEL, sent=True)
        elif out and appends:
            self.store.wake(EVENTS_CHANNEL)  # committed: this process's listeners too
        return list(out)


async def _after_lock_row(db: Any, name: str, params: dict[str, Any],
                          fold: Fold | None) -> list[Any]:
    """The statement that locks the lock row, then ``locks_<name>`` (with the request's
    audit row where ``fold`` offers it), in one transaction and one round trip:
    psycopg's pipeline sends both before it waits for an answer, and one Sync after
    them. Outside a transaction block the two are one implicit transaction, which that
    Sync commits (or rolls back whole, when one fails: the statements after it are not
    run); in a block that is a transaction already (``Store.driver(hooked=True)`` with
    work that does not fold) the block's own end commits. Each statement still takes
    its own snapshot when it runs (READ COMMITTED), so the second one sees every waiter
    that queued before the first got the row. (psycopg's ``transaction()`` in a
    pipeline waits for the BEGIN and the COMMIT, each a round trip.) Sent as
    PostgreSQL's own text (``$1``...): the hand-over's is over 4 kB (see
    ``sql.numbered``).

    A cancellation while it waits for the answer leaves the outcome unknown, as for
    every one-statement write: the statements and the Sync are sent by then, and the
    transaction commits unless psycopg's cancel request reaches the server while a
    statement still runs. A wait that ends in an error leaves the queue by its owner
    (``locks.waiting``); a release sent again may find the lock handed over."""
    # (in autocommit, transaction or not: else psycopg would send a BEGIN and a Sync of
    # its own before the first statement, and the lock row would be let go after it)
    assert db.autocommit

    plain, audited = _PG_AFTER_LOCK_ROW[name]
    statement, args = store_audit.carried(fold, plain, audited, params)
    async with db.pipeline():
        await sql.send_numbered(db, _PG_LOCK_ROW_NUMBERED, params)
        cursor = await sql.send_numbered(db, statement, args)
    # (the pipeline's end waited for every answer: an error was raised there)
    return list(await cursor.fetchall())


_NOTE = "granted"  # a grant's notification: "granted ENTRY TOKEN EXPIRY" (ISO, UTC)
_PG_ISO = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'
_PG = {name: sql.query(f"locks_{name}", "postgresql", driver=True, audit="")
       for name in ("acquire", "release", "join", "handover", "renew", "peek")}
# a write's CTE whose rows say it changed something (the request's audit row is
# written then: ``store_audit.fragment``), and the CTEs it updates or deletes rows in
_WRITTEN_BY = {"acquire": ("inserted", "settled"), "release": ("inserted",),
               "join": ("mine", "marked"), "handover": ("inserted", "nxt", "moved", "due")}
# the one-statement writes with the request's audit row (``Store.folding``)
_PG_AUDITED = {name: sql.query(f"locks_{name}", "postgresql", driver=True,
                               audit=store_audit.fragment(*_WRITTEN_BY[name]))
               for name in ("acquire", "release")}
_LOCK_ROW = "SELECT 1 FROM locks WHERE resource = :resource FOR UPDATE"
_PG_LOCK_ROW = sql.driver_text(_LOCK_ROW)
# the same, then the join's or hand-over's statement, plain and with the audit row, as
# PostgreSQL's own text for the driver's raw cursor (_after_lock_row)
_PG_LOCK_ROW_NUMBERED = sql.numbered(_LOCK_ROW)
_PG_AFTER_LOCK_ROW = {
    name: (sql.numbered(sql.query(f"locks_{name}", "postgresql", audit="")),
           sql.numbered(sql.query(f"locks_{name}", "postgresql",
                                  audit=store_audit.fragment(*_WRITTEN_BY[name]))))
    for name in ("join", "handover")}
_SQLITE_ACQUIRE = sql.statements("locks_acquire", "sqlite")
_SQLITE_RELEASE = sql.statements("locks_release", "sqlite")
_SQLITE_FREE = _SQLITE_RELEASE[1]  # the plain release's update (its second statement)
_SQLITE_RENEW = sql.query("locks_renew", "sqlite")
_SQLITE_HANDOVER = sql.statements("locks_handover", "sqlite")
_SQLITE_JOIN = sql.statements("locks_join", "sqlite")
_SQLITE_PEEK = sql.query("locks_peek", "sqlite")
