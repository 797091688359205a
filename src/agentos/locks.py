"""Resource locks (SPEC §2.6): leases, fencing tokens and a durable priority queue.

State lives in two tables. ``locks`` has one row per resource ever locked: the
holder (owner, priority, lease, metadata, the task that holds it) and ``token``,
the last fencing token handed out; the row outlives releases, so the token grows
with every grant and is never reused, across restarts. ``lock_waiters`` is the
queue, served by priority (higher first), then arrival.

One invariant keeps the hot path short: **a free lock has no live waiter.**
Every change that frees a lock (release, expiry, force-release, the end of a
task attempt) grants the next live waiter in the same transaction, and wakes
the waiters (``CHANNEL``: NOTIFY on PostgreSQL, polling across SQLite
processes). So an uncontended acquire reads and writes the lock row only, and a
long-polling waiter only reads until the row names it as holder.

Every change is one write transaction that appends its ``lock.*`` events as its
last step. Only the database clock decides expiry. Lapsed leases are reclaimed
by ``run_sweeper`` and by whoever touches the lock next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from agentos import events, ids, resources
from agentos.aio import wait_wakeup
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.events import EventIn
from agentos.store import Store, sql
from agentos.store.columns import UTCDateTime, json_loads, utc_from_text, utcnow
from agentos.store.events import insert_rows
from agentos.store.sqlite import SqliteConnection
from agentos.store.tables import lock_waiters, locks
from agentos.store.tables import tasks as tasks_table

log = logging.getLogger("agentos.locks")
CHANNEL = "agentos_locks"  # notified when a lock is granted to a waiter
TASKS_CHANNEL = "agentos_tasks"  # queue.CHANNEL: a deferred task got its lock
DEFAULT_TTL = 30.0  # seconds
DEFAULT_PRIORITY = 5
MAX_TTL = 3600.0  # seconds; the server's limit is AGENTOS_LOCK_MAX_TTL_S
MAX_RESOURCES = 100  # per acquire-many
WAIT_SLACK = 5.0  # seconds a waiter's entry outlives its wait (a vanished client's then lapses)
# seconds between a waiter's looks when no NOTIFY can wake it (SQLite, or a PostgreSQL
# process without a LISTEN connection: from POLL_FIRST, growing by half each look up to
# POLL, so a lock handed over soon is seen soon and a long wait costs few reads), and
# when one can (polling is only a safety net)
POLL_FIRST = 0.002
POLL = 0.02
POLL_LISTENING = 1.0
SWEEP_INTERVAL = 1.0  # longest sleep of the sweeper (it wakes earlier for the next expiry)
SWEEP_BATCH = 500
L = locks.c
W = lock_waiters.c


@dataclass(frozen=True)
class Claim:
    """Who asks for a lock, and on what terms."""

    owner: str
    priority: int = DEFAULT_PRIORITY
    ttl_s: float = DEFAULT_TTL
    metadata: dict[str, Any] | None = None
    task_id: str | None = None  # held for this task (released when its attempt ends)
    agent: str | None = None
    attempt: int | None = None  # with task_id: refused unless this attempt is running


@dataclass(frozen=True)
class Grant:
    resource: str
    token: int
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "token": self.token,
                "expires_at": self.expires_at.isoformat()}


@dataclass(frozen=True)
class Result:
    """An acquire's answer: every grant, or the queue position on the resource it waits for."""

    grants: tuple[Grant, ...] = ()
    position: int | None = None
    waiting_for: str | None = None

    @property
    def granted(self) -> bool:
        return self.position is None

    def to_dict(self, many: bool = False) -> dict[str, Any]:
        if not self.granted:
            return {"granted": False, "position": self.position, "resource": self.waiting_for}
        if not many:
            return {"granted": True, **self.grants[0].to_dict()}
        return {"granted": True, "locks": [g.to_dict() for g in self.grants]}


def validate(resource: str, claim: Claim, wait_s: float = 0, *, max_ttl_s: float = MAX_TTL,
             max_wait_s: float | None = None) -> None:
    """400 for a request that could never be right; nothing is written before this."""
    resources.check(resource)
    if not claim.owner or len(claim.owner) > 255:
        raise InvalidInput("owner must be 1 to 255 characters", code="bad_owner")
    if not 1 <= claim.priority <= 10:
        raise InvalidInput(f"priority must be between 1 and 10, not {claim.priority}",
                           code="bad_priority")
    if not 0 < claim.ttl_s <= max_ttl_s:
        raise InvalidInput(f"ttl_s must be above 0 and at most {max_ttl_s:g}, not "
                           f"{claim.ttl_s:g}", code="bad_ttl",
                           details={"max_ttl_s": max_ttl_s})
    if wait_s < 0 or (max_wait_s is not None and wait_s > max_wait_s):
        raise InvalidInput(f"wait_s must be between 0 and {max_wait_s:g}", code="bad_wait",
                           details={"max_wait_s": max_wait_s})


# ----------------------------------------------------------------- events


def _event(kind: str, resource: str, owner: str | None, token: int | None,
           task_id: str | None = None, **payload: Any) -> EventIn:
    body = {"resource": resource, "type": resources.type_of(resource), "owner": owner,
            "token": token, **({"task_id": task_id} if task_id else {}), **payload}
    return EventIn(type=f"lock.{kind}", source="locks", payload=body, causation_id=task_id)


# ---------------------------------------------------------------- hot path
# An acquire of a free lock, a release nobody waits for and a renewal are one
# statement each (store/sql/locks_*), on the store's driver connection where it has
# one (else in a write transaction, with the request's audit row); on PostgreSQL so
# are joining the queue of a held lock and the hand-over to the next waiter, after a
# statement that locks the lock row. When one finds nothing to do, the full path
# below does it: expiry, the rest of the queue, or the error that says why.


async def _hot(store: Store, name: str, params: dict[str, Any],
               on_sqlite: Callable[[Any, dict[str, Any]], Any] | None) -> Any:
    """Run ``locks_<name>``: PostgreSQL's rows, or what ``on_sqlite(db, params)``
    returns on SQLite's own connection; empty or None when it changed nothing.
    ``on_sqlite`` None: a PostgreSQL statement that must see every waiter queued
    before it, sent in a transaction after one that locks the lock row."""
    appends = name != "renew"
    async with store.driver() as db:
        if db is not None:
            if on_sqlite is not None and store.dialect == "sqlite":
                out = on_sqlite(db, params)
            elif on_sqlite is not None:
                out = await (await db.execute(_PG[name], params, prepare=True)).fetchall()
            else:
                async with db.transaction():
                    await db.execute(_LOCK_ROW, params, prepare=True)
                    out = await (await db.execute(_PG[name], params, prepare=True)).fetchall()
    if db is None:
        async with store.write() as conn:
            if on_sqlite is not None and store.dialect == "sqlite":
                out = on_sqlite(cast(SqliteConnection, conn).driver(), params)
            else:
                if on_sqlite is None:
                    await conn.exec_driver_sql(_LOCK_ROW, params)
                out = (await conn.exec_driver_sql(_PG[name], params)).all()
            if not out:
                store.nothing_changed(conn)  # the full path's transaction is audited
            elif appends:
                await store.notify(conn, events.CHANNEL, sent=store.dialect == "postgresql")
    elif out and appends:
        store.wake(events.CHANNEL)  # committed: this process's listeners too
    return out


def _hot_event(kind: str, resource: str, owner: str, **payload: Any) -> dict[str, Any]:
    """The parameters of the event a hot-path statement appends, but for what only the
    statement knows (on PostgreSQL it adds that to the payload itself)."""
    return {"event_id": ids.uuid7(), "rank": int(events.Priority.NORMAL),
            "created_at": datetime.now(UTC),
            "payload": events.dump_json({"resource": resource,
                                         "type": resources.type_of(resource),
                                         "owner": owner, **payload})}


def _claim_params(kind: str, resource: str, claim: Claim, **payload: Any) -> dict[str, Any]:
    """The parameters of a statement that takes or queues for a lock for ``claim``."""
    return {"resource": resource, "type": resources.type_of(resource), "owner": claim.owner,
            "priority": claim.priority, "ttl_s": float(claim.ttl_s),
            "metadata": None if claim.metadata is None else events.dump_json(claim.metadata),
            "task_id": claim.task_id, "agent": claim.agent,
            **_hot_event(kind, resource, claim.owner, **payload,
                         **({"task_id": claim.task_id} if claim.task_id else {}),
                         priority=claim.priority)}


async def _fast_acquire(store: Store, resource: str, claim: Claim) -> Grant | None:
    params = {**_claim_params("acquired", resource, claim),
              "attempt": claim.attempt if claim.task_id else None}
    out = await _hot(store, "acquire", params, _acquire_sqlite)
    if not out:
        return None
    if isinstance(out, Grant):
        return out
    return Grant(resource, int(out[0].token), out[0].expires_at.astimezone(UTC))


def _acquire_sqlite(db: Any, params: dict[str, Any]) -> Grant | None:
    row = db.execute(_SQLITE_ACQUIRE, params).fetchone()
    if row is None:
        return None
    grant = Grant(params["resource"], int(row[0]), utc_from_text(row[1]))
    _insert_sqlite(db, params, "acquired", params["task_id"],
                   token=grant.token, expires_at=grant.expires_at.isoformat())
    return grant


async def _fast_release(store: Store, resource: str, owner: str, token: int) -> bool:
    params = {"resource": resource, "owner": owner, "token": token,
              **_hot_event("released", resource, owner, token=token)}
    return bool(await _hot(store, "release", params, _release_sqlite))


def _release_sqlite(db: Any, params: dict[str, Any]) -> bool:
    held, free = _SQLITE_RELEASE
    row = db.execute(held, params).fetchone()
    if row is None:
        return False
    task_id, acquired_at, now = row
    db.execute(free, {"resource": params["resource"], "now": now})
    held_ms = (utc_from_text(now) - utc_from_text(acquired_at)).total_seconds() * 1000
    _insert_sqlite(db, params, "released", task_id,
                   **({"task_id": task_id} if task_id else {}), held_ms=round(held_ms, 1))
    return True


async def _fast_join(store: Store, resource: str, claim: Claim, queue_for: float) -> int | None:
    """PostgreSQL: join the queue of a lock another owner holds; the position, or None."""
    params = {**_claim_params("queued", resource, claim, token=None),
              "queue_s": float(queue_for + WAIT_SLACK)}
    rows = await _hot(store, "join", params, None)
    return int(rows[0].position) if rows else None


async def _fast_handover(store: Store, resource: str, owner: str, token: int) -> bool:
    """PostgreSQL: release a lock and grant it to its next live waiter (or free it)."""
    params = {"resource": resource, "owner": owner, "token": token,
              "type": resources.type_of(resource), "grant_event_id": ids.uuid7(),
              **_hot_event("released", resource, owner, token=token)}
    rows = await _hot(store, "handover", params, None)
    if rows and rows[0].waiter is not None:  # committed: wake this process's waiters too
        store.wake(CHANNEL)
        if rows[0].waiter_task is not None:
            store.wake(TASKS_CHANNEL)
    return bool(rows)


async def _fast_renew(store: Store, resource: str, owner: str, token: int, ttl_s: float
                      ) -> Grant | None:
    params = {"resource": resource, "owner": owner, "token": token, "ttl_s": float(ttl_s)}
    out = await _hot(store, "renew", params,
                     lambda db, p: db.execute(_SQLITE_RENEW, p).fetchall())
    if not out:
        return None
    expires = out[0][0]
    return Grant(resource, token, utc_from_text(expires) if isinstance(expires, str)
                 else expires.astimezone(UTC))


def _insert_sqlite(db: Any, params: dict[str, Any], kind: str, cause: str | None,
                   **extra: Any) -> None:
    """Append the event of a hot-path statement on SQLite's own connection."""
    payload = events.dump_json({**json_loads(params["payload"]), **extra})
    draft = events.Draft(f"lock.{kind}", "locks", {}, causation_id=cause)
    insert_rows(db, [draft], [payload], [params["event_id"]], params["created_at"])


_PG = {name: sql.query(f"locks_{name}", "postgresql", driver=True)
       for name in ("acquire", "release", "join", "handover", "renew")}
_LOCK_ROW = "SELECT 1 FROM locks WHERE resource = %(resource)s FOR UPDATE"
_SQLITE_ACQUIRE = sql.query("locks_acquire", "sqlite")
_SQLITE_RELEASE = sql.statements("locks_release", "sqlite")
_SQLITE_RENEW = sql.query("locks_renew", "sqlite")


# ------------------------------------------------------ one transaction's steps


async def _now(conn: AsyncConnection) -> datetime:
    now: datetime = (await conn.execute(select(utcnow()))).scalar_one()
    return now


class later(FunctionElement[datetime]):
    """The database's current UTC time plus ``seconds`` (a bound number)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(later, "postgresql")
def _pg_later(element: later, compiler: SQLCompiler, **kw: Any) -> str:
    (seconds,) = element.clauses
    return f"statement_timestamp() + make_interval(secs => {compiler.process(seconds, **kw)})"


@compiles(later, "sqlite")
def _sqlite_later(element: later, compiler: SQLCompiler, **kw: Any) -> str:
    (seconds,) = element.clauses
    shift = f"printf('%+.6f seconds', {compiler.process(seconds, **kw)})"
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', {shift})"


def _upsert(store: Store) -> Any:
    return pg_insert(locks) if store.dialect == "postgresql" else sqlite_insert(locks)


async def _grant_free(store: Store, conn: AsyncConnection, resource: str, claim: Claim
                      ) -> Grant | None:
    """The hot path: take the lock if it is free (or new) in one statement; None if held."""
    holder = {"owner": claim.owner, "priority": claim.priority, "acquired_at": utcnow(),
              "expires_at": later(claim.ttl_s), "metadata": claim.metadata,
              "task_id": claim.task_id, "agent": claim.agent, "updated_at": utcnow()}
    stmt = _upsert(store).values(resource=resource, type=resources.type_of(resource), token=1,
                                 **holder)
    # a conflict locks the row even when the WHERE refuses the update
    stmt = stmt.on_conflict_do_update(index_elements=["resource"],
                                      set_={"token": L.token + 1, **holder},
                                      where=L.owner.is_(None)).returning(L.token, L.expires_at)
    row = (await conn.execute(stmt)).first()
    return None if row is None else Grant(resource, int(row.token), row.expires_at)


async def _locked_row(conn: AsyncConnection, resource: str) -> Any:
    return (await conn.execute(select(locks).where(L.resource == resource).with_for_update())
            ).first()


async def _free(conn: AsyncConnection, resource: str, now: datetime) -> None:
    """Free the lock (the caller holds its row); ``queued`` says again whether anyone
    waits (a waiter ``_grant_next`` then takes leaves it stale, which costs the next
    release the full path once)."""
    anyone = select(W.id).where(W.resource == resource).exists()
    await conn.execute(update(locks).where(L.resource == resource).values(
        owner=None, priority=None, acquired_at=None, expires_at=None, metadata=None,
        task_id=None, agent=None, updated_at=now, queued=anyone))


async def _mark_queued(conn: AsyncConnection, resource: str) -> None:
    """A waiter joined (or stretched its entry): the lock's release takes the full path."""
    await conn.execute(update(locks).where(L.resource == resource, L.queued.is_(False))
                       .values(queued=True))


async def _grant_next(store: Store, conn: AsyncConnection, resource: str, now: datetime,
                      drafts: list[EventIn]) -> None:
    """The lock was just freed: grant it to the best live waiter, if any (lapsed
    entries are skipped here and dropped by the sweeper)."""
    best = (select(W.id).where(W.resource == resource, W.expires_at >= now)
            .order_by(W.priority.desc(), W.id).limit(1).scalar_subquery())
    nxt = (await conn.execute(delete(lock_waiters).where(W.id == best)
                              .returning(*lock_waiters.c))).first()
    if nxt is None:
        return
    expires = now + timedelta(seconds=nxt.ttl_s)
    grant = update(locks).where(L.resource == resource).values(
        token=L.token + 1, owner=nxt.owner, priority=nxt.priority, acquired_at=now,
        expires_at=expires, metadata=nxt.metadata, task_id=nxt.task_id, agent=nxt.agent,
        updated_at=now).returning(L.token)
    if store.dialect == "postgresql":  # wake the waiters of every server in the same trip
        grant = grant.returning(func.pg_notify(CHANNEL, ""))
    token = (await conn.execute(grant)).first()[0]
    if nxt.task_id:  # a task that was handed back to wait for this lock: run it now
        tc = tasks_table.c
        await conn.execute(update(tasks_table).where(
            tc.id == nxt.task_id, tc.status == "scheduled").values(run_at=now, updated_at=now))
        await store.notify(conn, TASKS_CHANNEL)
    await store.notify(conn, CHANNEL, sent=True)
    drafts.append(_event("acquired", resource, nxt.owner, int(token), nxt.task_id,
                         priority=nxt.priority, expires_at=expires.isoformat(),
                         waited_ms=round((now - nxt.created_at).total_seconds() * 1000, 1)))


async def _expire(store: Store, conn: AsyncConnection, row: Any, now: datetime,
                  drafts: list[EventIn]) -> None:
    await _free(conn, row.resource, now)
    drafts.append(_event("expired", row.resource, row.owner, row.token, row.task_id,
                         expired_at=row.expires_at.isoformat()))
    log.info("lock %s of %s expired", row.resource, row.owner, extra={"action": "lock_expired"})
    await _grant_next(store, conn, row.resource, now, drafts)


async def _position(conn: AsyncConnection, resource: str, priority: int, before_id: int | None,
                    now: datetime) -> int:
    """1 + the live waiters served before a waiter of ``priority`` (arrived as ``before_id``)."""
    ahead = W.priority > priority
    ahead = or_(ahead, W.priority == priority) if before_id is None else or_(
        ahead, and_(W.priority == priority, W.id < before_id))
    n = (await conn.execute(select(func.count()).select_from(lock_waiters).where(
        W.resource == resource, W.expires_at >= now, ahead))).scalar_one()
    return int(n) + 1


async def _try(store: Store, conn: AsyncConnection, resource: str, claim: Claim,
               drafts: list[EventIn], queue_for: float | None) -> Grant | int:
    """Grant ``resource`` now, or say where ``claim`` stands in its queue (joining the
    queue for ``queue_for`` seconds when given)."""
    grant = await _grant_free(store, conn, resource, claim)
    if grant is not None:
        if queue_for is not None:  # it may have been queued here before
            await conn.execute(delete(lock_waiters).where(W.resource == resource,
                                                          W.owner == claim.owner))
        drafts.append(_event("acquired", resource, claim.owner, grant.token, claim.task_id,
                             priority=claim.priority, expires_at=grant.expires_at.isoformat()))
        return grant
    now = await _now(conn)
    queue_until = (now + timedelta(seconds=queue_for + WAIT_SLACK)
                   if queue_for is not None else None)
    row = await _locked_row(conn, resource)
    if row.expires_at < now:
        await _expire(store, conn, row, now, drafts)
        row = await _locked_row(conn, resource)
        if row.owner is None:  # nobody was waiting
            return await _try(store, conn, resource, claim, drafts, queue_for)
    if row.owner == claim.owner:  # already ours (granted from the queue, or asked twice)
        expires = max(row.expires_at, now + timedelta(seconds=claim.ttl_s))
        await conn.execute(update(locks).where(L.resource == resource).values(
            expires_at=expires, updated_at=now))
        await conn.execute(delete(lock_waiters).where(W.resource == resource,
                                                      W.owner == claim.owner))
        return Grant(resource, int(row.token), expires)
    mine = (await conn.execute(select(lock_waiters).where(
        W.resource == resource, W.owner == claim.owner))).first()
    if queue_until is None:
        return await _position(conn, resource, claim.priority, mine.id if mine else None, now)
    if mine is None:
        await conn.execute(insert(lock_waiters).values(
            resource=resource, owner=claim.owner, priority=claim.priority, ttl_s=claim.ttl_s,
            metadata=claim.metadata, task_id=claim.task_id, agent=claim.agent, created_at=now,
            expires_at=queue_until))
        await _mark_queued(conn, resource)
        mine = (await conn.execute(select(lock_waiters).where(
            W.resource == resource, W.owner == claim.owner))).one()
        position = await _position(conn, resource, claim.priority, mine.id, now)
        drafts.append(_event("queued", resource, claim.owner, None, claim.task_id,
                             priority=claim.priority, position=position,
                             holder=row.owner))
        return position
    # already queued: keep the place, stretch the entry to this wait
    await conn.execute(update(lock_waiters).where(W.id == mine.id).values(
        expires_at=max(mine.expires_at, queue_until), ttl_s=claim.ttl_s))
    await _mark_queued(conn, resource)
    return await _position(conn, resource, mine.priority, mine.id, now)


async def _check_attempt(conn: AsyncConnection, claim: Claim) -> None:
    if claim.task_id is None or claim.attempt is None:
        return
    tc = tasks_table.c
    row = (await conn.execute(select(tc.status, tc.attempt).where(tc.id == claim.task_id))
           ).first()
    if row is None or row.status != "running" or row.attempt != claim.attempt:
        raise Conflict(f"task {claim.task_id} attempt {claim.attempt} is no longer running",
                       code="stale_attempt", details={"task_id": claim.task_id})


async def _step(store: Store, names: list[str], claim: Claim, queue_for: float | None
                ) -> Result:
    """One write transaction: grant every resource in ``names`` (sorted) or none.

    All or nothing: on the first one that is held, the transaction's grants are
    undone (rolled back) and, when ``queue_for`` is given, the claim joins that
    resource's queue instead (in a second transaction)."""

    class _Held(Exception):
        def __init__(self, resource: str, position: int) -> None:
            self.resource, self.position = resource, position

    only = len(names) == 1
    if only and (claim.attempt is None or queue_for is None):
        if grant := await _fast_acquire(store, names[0], claim):
            return Result((grant,))
        if queue_for is not None and store.dialect == "postgresql" and (
                position := await _fast_join(store, names[0], claim, queue_for)):
            return Result(position=position, waiting_for=names[0])
    try:
        async with store.write() as conn:
            await _check_attempt(conn, claim)
            drafts: list[EventIn] = []
            grants = []
            for name in names:
                got = await _try(store, conn, name, claim, drafts,
                                 queue_for if only else None)
                if isinstance(got, int):
                    if only:
                        if drafts:
                            await events.append_in(store, conn, drafts)
                        return Result(position=got, waiting_for=name)
                    raise _Held(name, got)
                grants.append(got)
            if drafts:
                await events.append_in(store, conn, drafts)
            return Result(tuple(grants))
    except _Held as held:
        if queue_for is None:
            return Result(position=held.position, waiting_for=held.resource)
        return await _step(store, [held.resource], claim, queue_for)


# -------------------------------------------------------------- acquiring


async def acquire(store: Store, resource: str, claim: Claim, wait_s: float = 0,
                  keep_place_s: float | None = None) -> Result:
    """Take ``resource`` for ``claim.owner``; with ``wait_s`` > 0, wait in its queue
    until granted or the wait ends (then leave the queue, or with ``keep_place_s``
    keep the place that long). Asking again for a lock one holds extends its lease."""
    return await acquire_many(store, [resource], claim, wait_s, keep_place_s)


async def acquire_many(store: Store, names: list[str], claim: Claim, wait_s: float = 0,
                       keep_place_s: float | None = None) -> Result:
    """Take every resource in ``names`` or none, without deadlock: first all at once
    in one transaction; if one is held and ``wait_s`` > 0, one at a time in sorted
    order (every claimant waits in the same order, so no cycle can form), giving
    back what it took if the wait ends first."""
    names = sorted(set(names))
    if not names or len(names) > MAX_RESOURCES:
        raise InvalidInput(f"give 1 to {MAX_RESOURCES} resources", code="bad_resources")
    for name in names:
        resources.check(name)
    deadline = time.monotonic() + wait_s
    if len(names) > 1 or wait_s <= 0:  # (one resource to wait for: take it or queue at once)
        result = await _step(store, names, claim, None)
        if result.granted or wait_s <= 0:
            return result
    grants: list[Grant] = []
    try:
        for name in names:
            got = await _wait_for(store, name, claim, deadline, keep_place_s)
            if not got.granted:
                await _give_back(store, grants, claim.owner)
                return got
            grants.extend(got.grants)
    except BaseException:
        with contextlib.suppress(Exception):  # cancelled or failed: return what we took
            await _give_back(store, grants, claim.owner)
        raise
    return Result(tuple(grants))


async def _wait_for(store: Store, name: str, claim: Claim, deadline: float,
                    keep_place_s: float | None) -> Result:
    wakeup = store.wakeup(CHANNEL)
    listening = CHANNEL in store.listening
    poll = POLL_LISTENING if listening else POLL_FIRST
    try:
        result = await _step(store, [name], claim, max(deadline - time.monotonic(), 0))
        while not result.granted:
            left = deadline - time.monotonic()
            if left <= 0:
                return await _leave(store, name, claim, keep_place_s, result)
            await wait_wakeup(wakeup, min(left, poll))
            if not listening:
                poll = min(poll * 1.5, POLL)
            wakeup.clear()
            look = await _peek(store, name, claim.owner)
            if isinstance(look, Grant):
                return Result((look,))
            if look == "act":
                result = await _step(store, [name], claim, max(left, 0))
        return result
    except BaseException:
        with contextlib.suppress(Exception):  # cancelled: leave the queue, return a late grant
            await _leave(store, name, claim, None, None, release=True)
        raise
    finally:
        store.forget_wakeup(CHANNEL, wakeup)


async def _peek(store: Store, name: str, owner: str) -> Grant | str:
    """A read: our grant, "act" (free, lapsed, or we left the queue) or "wait"."""
    async with store.read() as conn:
        row = (await conn.execute(select(
            L.owner, L.token, L.expires_at, utcnow().label("now"),
            select(W.id).where(W.resource == name, W.owner == owner).scalar_subquery()
            .label("waiter")).where(L.resource == name))).first()
    if row is None:
        return "act"
    if row.owner == owner and row.expires_at >= row.now:
        return Grant(name, int(row.token), row.expires_at)
    if row.owner is None or row.expires_at < row.now or row.waiter is None:
        return "act"
    return "wait"


async def _leave(store: Store, name: str, claim: Claim, keep_place_s: float | None,
                 result: Result | None, release: bool = False) -> Result:
    """The wait ended: leave the queue (or keep the place); a grant that came in the
    meantime is kept, or with ``release`` given back."""
    async with store.write() as conn:
        now = await _now(conn)
        row = (await conn.execute(select(locks).where(L.resource == name).with_for_update())
               ).first()
        if row is not None and row.owner == claim.owner and row.expires_at >= now:
            if not release:
                return Result((Grant(name, int(row.token), row.expires_at),))
            drafts = await _release_rows(store, conn, [row], now, "cancelled")
            await events.append_in(store, conn, drafts)
            return Result(position=1, waiting_for=name)
        mine = and_(W.resource == name, W.owner == claim.owner)
        if keep_place_s is not None:
            await conn.execute(update(lock_waiters).where(mine).values(
                expires_at=now + timedelta(seconds=keep_place_s)))
            if row is not None:
                await _mark_queued(conn, name)
        else:
            await conn.execute(delete(lock_waiters).where(mine))
    return result or Result(position=1, waiting_for=name)


async def _give_back(store: Store, grants: list[Grant], owner: str) -> None:
    if not grants:
        return
    async with store.write() as conn:
        now = await _now(conn)
        rows = (await conn.execute(select(locks).where(
            L.resource.in_([g.resource for g in grants]), L.owner == owner,
            L.token.in_([g.token for g in grants])).order_by(L.resource).with_for_update()
            )).all()
        drafts = await _release_rows(store, conn, list(rows), now, "gave_back")
        if drafts:
            await events.append_in(store, conn, drafts)


# ------------------------------------------------------- release and renew


async def _held(conn: AsyncConnection, resource: str, owner: str, token: int,
                now: datetime | None, action: str) -> Any:
    """The locked row (with the database's ``now`` and whether anyone waits) if
    ``owner`` holds ``resource`` with ``token`` now; else 409/404."""
    waiting = select(W.id).where(W.resource == L.resource).limit(1).scalar_subquery()
    row = (await conn.execute(select(locks, utcnow().label("now"), waiting.label("waiting"))
                              .where(L.resource == resources.check(resource))
                              .with_for_update(of=locks))).first()
    now = now or (row.now if row is not None else None)
    if row is None:
        raise NotFound(f"no lock on {resource}", code="lock_not_found",
                       details={"resource": resource})
    details = {"resource": resource, "owner": owner, "token": token}
    if row.owner is None:
        raise Conflict(f"cannot {action} {resource}: it is not held", code="lock_not_held",
                       details=details)
    if row.owner != owner:
        raise Conflict(f"cannot {action} {resource}: it is held by another owner",
                       code="lock_not_owner", details=details)
    if row.token != token:
        raise Conflict(f"cannot {action} {resource}: token {token} is stale (the lock is at "
                       f"{row.token})", code="lock_stale_token",
                       details={**details, "current_token": row.token})
    if now is not None and row.expires_at < now:
        raise Conflict(f"cannot {action} {resource}: the lease lapsed at "
                       f"{row.expires_at.isoformat()}", code="lock_expired", details=details)
    return row


async def _release_rows(store: Store, conn: AsyncConnection, rows: list[Any], now: datetime,
                        reason: str | None = None) -> list[EventIn]:
    drafts: list[EventIn] = []
    for row in rows:
        await _free(conn, row.resource, now)
        extra = {"reason": reason} if reason else {}
        drafts.append(_event("released", row.resource, row.owner, row.token, row.task_id,
                             held_ms=round((now - row.acquired_at).total_seconds() * 1000, 1),
                             **extra))
        if getattr(row, "waiting", True) is not None:
            await _grant_next(store, conn, row.resource, now, drafts)
    return drafts


async def release(store: Store, resource: str, owner: str, token: int) -> None:
    """Give the lock up; the next waiter is granted in the same transaction."""
    if await _fast_release(store, resources.check(resource), owner, token):
        return
    if store.dialect == "postgresql" and await _fast_handover(store, resource, owner, token):
        return
    async with store.write() as conn:
        row = await _held(conn, resource, owner, token, None, "release")
        await events.append_in(store, conn, await _release_rows(store, conn, [row], row.now))


async def release_many(store: Store, held: list[tuple[str, int]], owner: str) -> None:
    """Release several locks in one transaction: all, or none if one is not held so."""
    async with store.write() as conn:
        now = await _now(conn)
        rows = [await _held(conn, r, owner, t, now, "release") for r, t in sorted(set(held))]
        await events.append_in(store, conn, await _release_rows(store, conn, rows, now))


async def renew(store: Store, resource: str, owner: str, token: int, ttl_s: float) -> Grant:
    """Extend the lease to ``ttl_s`` from now (no event: renewals are routine)."""
    if grant := await _fast_renew(store, resources.check(resource), owner, token, ttl_s):
        return grant
    async with store.write() as conn:
        now = await _now(conn)
        await _held(conn, resource, owner, token, now, "renew")
        expires = now + timedelta(seconds=ttl_s)
        await conn.execute(update(locks).where(L.resource == resource).values(
            expires_at=expires, updated_at=now))
    return Grant(resource, token, expires)


async def force_release(store: Store, resource: str, actor: str | None = None) -> dict[str, Any]:
    """An operator takes the lock from its holder; the next waiter is granted."""
    async with store.write() as conn:
        now = await _now(conn)
        row = await _locked_row(conn, resources.check(resource))
        if row is None or row.owner is None:
            raise Conflict(f"cannot force-release {resource}: it is not held",
                           code="lock_not_held", details={"resource": resource})
        await _free(conn, resource, now)
        drafts = [_event("force_released", resource, row.owner, row.token, row.task_id,
                         by=actor)]
        await _grant_next(store, conn, resource, now, drafts)
        await events.append_in(store, conn, drafts)
    log.warning("lock %s force-released from %s", resource, row.owner,
                extra={"action": "lock_force_released"})
    return {"resource": resource, "owner": row.owner, "token": row.token}


# ------------------------------------------------- tasks: attempt lifetime


def task_owner(task_id: str) -> str:
    """The owner id of every lock a task's attempts take."""
    return f"task:{task_id}"


async def release_owner_in(store: Store, conn: AsyncConnection, owner: str | list[str],
                           now: datetime, keep_waiting: bool = False) -> list[EventIn]:
    """Within the caller's transaction: release everything ``owner`` (or each of a list
    of owners) holds and (unless ``keep_waiting``) take it out of every queue; returns
    the events to append."""
    owners = [owner] if isinstance(owner, str) else owner
    if not owners:
        return []
    rows = (await conn.execute(select(locks).where(L.owner.in_(owners)).order_by(L.resource)
                               .with_for_update())).all()
    drafts = await _release_rows(store, conn, list(rows), now, "attempt_ended")
    if not keep_waiting:
        await conn.execute(delete(lock_waiters).where(W.owner.in_(owners)))
    return drafts


async def renew_owner_in(conn: AsyncConnection, owner: str, ttl_s: float, now: datetime) -> None:
    """Within the caller's transaction: extend every live lease ``owner`` holds."""
    await conn.execute(update(locks).where(L.owner == owner, L.expires_at >= now).values(
        expires_at=now + timedelta(seconds=ttl_s), updated_at=now))


# ----------------------------------------------------------------- expiry


async def sweep(store: Store) -> tuple[int, datetime | None]:
    """Reclaim lapsed leases (granting their next waiters) and drop lapsed queue
    entries; returns how many leases, and when the next one lapses."""
    async with store.write() as conn:
        now = await _now(conn)
        lapsed = (await conn.execute(select(locks).where(
            L.owner.is_not(None), L.expires_at < now).order_by(L.resource).limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True))).all()
        drafts: list[EventIn] = []
        for row in lapsed:
            await _expire(store, conn, row, now, drafts)
        await conn.execute(delete(lock_waiters).where(W.expires_at < now))
        if drafts:
            await events.append_in(store, conn, drafts)
        upcoming = (await conn.execute(select(func.min(L.expires_at)).where(
            L.owner.is_not(None)))).scalar()
    return len(lapsed), upcoming


async def run_sweeper(store: Store, stop: asyncio.Event | None = None) -> None:
    """Sweep until ``stop`` is set, sleeping until the next lease lapses (at most
    ``SWEEP_INTERVAL``); every server and worker runs one."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        pause = SWEEP_INTERVAL
        try:
            _, upcoming = await sweep(store)
            if upcoming is not None:
                async with store.read() as conn:
                    now = await _now(conn)
                pause = min(max((upcoming - now).total_seconds() + 0.005, 0.01), SWEEP_INTERVAL)
        except Exception:
            log.exception("lock sweep failed", extra={"action": "lock_sweep_failed"})
        await wait_wakeup(stop, pause)


# ------------------------------------------------------------------ reads


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _holder(row: Any, now: datetime) -> dict[str, Any] | None:
    if row.owner is None:
        return None
    return {"owner": row.owner, "token": row.token, "priority": row.priority,
            "acquired_at": _iso(row.acquired_at), "expires_at": _iso(row.expires_at),
            "lapsed": row.expires_at < now, "metadata": row.metadata,
            "task_id": row.task_id, "agent": row.agent}


def _queue(waiters: list[Any], now: datetime) -> list[dict[str, Any]]:
    live = [w for w in waiters if w.expires_at >= now]
    return [{"position": n, "owner": w.owner, "priority": w.priority,
             "queued_at": _iso(w.created_at), "expires_at": _iso(w.expires_at),
             "ttl_s": w.ttl_s, "task_id": w.task_id, "agent": w.agent}
            for n, w in enumerate(live, 1)]


async def get(store: Store, resource: str) -> dict[str, Any]:
    """The holder and the queue of one resource (free and empty if never locked)."""
    resources.check(resource)
    async with store.read() as conn:
        now = await _now(conn)
        row = (await conn.execute(select(locks).where(L.resource == resource))).first()
        waiters = (await conn.execute(select(lock_waiters).where(W.resource == resource)
                                      .order_by(W.priority.desc(), W.id))).all()
    return {"resource": resource, "type": resources.type_of(resource),
            "last_token": row.token if row else 0,
            "holder": _holder(row, now) if row else None, "queue": _queue(list(waiters), now)}


async def list_locks(store: Store, type: str | None = None, limit: int = 1000
                     ) -> list[dict[str, Any]]:
    """Held locks and locks with waiters, by resource; ``type`` filters by prefix."""
    queued = select(W.resource).distinct()
    stmt = select(locks).where(or_(L.owner.is_not(None), L.resource.in_(queued)))
    if type:
        stmt = stmt.where(L.type == type)
    async with store.read() as conn:
        now = await _now(conn)
        rows = (await conn.execute(stmt.order_by(L.resource).limit(limit))).all()
        waiters = (await conn.execute(select(lock_waiters).where(
            W.resource.in_([r.resource for r in rows])).order_by(
            W.resource, W.priority.desc(), W.id))).all() if rows else []
    by_resource: dict[str, list[Any]] = {}
    for w in waiters:
        by_resource.setdefault(w.resource, []).append(w)
    return [{"resource": r.resource, "type": r.type, "last_token": r.token,
             "holder": _holder(r, now), "queue": _queue(by_resource.get(r.resource, []), now)}
            for r in rows]


async def held_by_workers(store: Store, worker_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """worker id -> the locks its running task attempts hold."""
    if not worker_ids:
        return {}
    tc = tasks_table.c
    async with store.read() as conn:
        rows = (await conn.execute(select(locks, tc.worker_id).join(
            tasks_table, tc.id == L.task_id).where(
            tc.status == "running", tc.worker_id.in_(worker_ids), L.owner.is_not(None))
            .order_by(L.resource))).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.worker_id, []).append({
            "resource": r.resource, "token": r.token, "task_id": r.task_id, "agent": r.agent,
            "expires_at": _iso(r.expires_at)})
    return out
