"""Lock state changes: take, queue, release, renew, expire, force-release.

One invariant keeps the hot path short: **a free lock has no live waiter.**
Every change that frees a lock (release, expiry, force-release, the end of a
task attempt) grants the next live waiter in the same transaction, and wakes
the waiters (``CHANNEL``: NOTIFY on PostgreSQL, polling across SQLite
processes). So an uncontended acquire reads and writes the lock row only, and a
long-polling waiter only reads until the row names it as holder.

The common cases are one statement each (``store.locks.acquire``, ``release``,
``renew``, ``join`` and ``handover``); when one finds nothing to
do, the full path below does it in one write transaction of the store's steps:
expiry, the rest of the queue, all-or-nothing grants of several resources, or the
error that says why. Every change appends its ``lock.*`` events as the
transaction's last step. Only the database clock decides expiry.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import events, ids, resources
from agentos.aio import wait_wakeup
from agentos.errors import Conflict, NotFound
from agentos.events import EventIn
from agentos.locks.model import WAIT_SLACK as WAIT_SLACK
from agentos.locks.model import Claim, Grant, Result, claim_params, event, hot_event
from agentos.store import Store
from agentos.store.locks import Joined

log = logging.getLogger("agentos.locks")
SWEEP_INTERVAL = 1.0  # longest sleep of the sweeper (it wakes earlier for the next expiry)
SWEEP_BATCH = 500


# ------------------------------------------------------- one statement each


async def fast_acquire(store: Store, resource: str, claim: Claim) -> Grant | None:
    """Take a free (or never locked) lock in one statement; None if that changed nothing."""
    params = {**claim_params(resource, claim),
              "attempt": claim.attempt if claim.task_id else None}
    got = await store.locks.acquire(params)
    return Grant(resource, *got) if got else None


async def _fast_release(store: Store, resource: str, owner: str, token: int) -> bool:
    return await store.locks.release({"resource": resource, "owner": owner, "token": token,
                                      **hot_event(resource, owner, token=token)})


async def _fast_handover(store: Store, resource: str, owner: str, token: int) -> bool:
    """Release a lock and grant it to its next live waiter (or free it) in one
    statement, where the backend has one; remember whether it had a waiter."""
    params = {"resource": resource, "owner": owner, "token": token,
              "type": resources.type_of(resource), "grant_event_id": ids.uuid7(),
              **hot_event(resource, owner, token=token)}
    done = await store.locks.handover(params)
    if done is not None:
        _contended(resource, done.granted)
    return done is not None


# resources whose last release here handed the lock over: their next release tries the
# hand-over first, not the one-statement free that a queued waiter refuses (where a
# hand-over costs what a free does, ``Locks.handover_frees``, every release is one), and
# a wait for them joins the queue before trying to take the lock. Guesses only, kept
# until this process releases the resource again; a wrong one: a hand-over frees a lock
# nobody waits for (a statement more than the free), a join that finds no holder is
# followed by the acquire (a statement more on SQLite; on PostgreSQL the join's
# transaction, which locks the lock row, so its commit is flushed)
CONTENDED_MAX = 1024
_CONTENDED: dict[str, None] = {}


def _contended(resource: str, waiter: bool) -> None:
    _CONTENDED.pop(resource, None)
    if waiter:
        _CONTENDED[resource] = None
        if len(_CONTENDED) > CONTENDED_MAX:
            del _CONTENDED[next(iter(_CONTENDED))]


# ------------------------------------------------------ one transaction's steps


async def _grant_next(store: Store, conn: AsyncConnection, resource: str, now: datetime,
                      drafts: list[EventIn]) -> None:
    """The lock was just freed: grant it to the best live waiter, if any."""
    granted = await store.locks.grant_next(conn, resource, now)
    if granted is None:
        return
    nxt, token = granted
    expires = now + timedelta(seconds=nxt.ttl_s)
    drafts.append(event("acquired", resource, nxt.owner, token, nxt.task_id,
                        priority=nxt.priority, expires_at=expires.isoformat(),
                        waited_ms=round((now - nxt.created_at).total_seconds() * 1000, 1)))


async def _expire(store: Store, conn: AsyncConnection, row: Any, now: datetime,
                  drafts: list[EventIn]) -> None:
    await store.locks.free(conn, row.resource, now)
    drafts.append(event("expired", row.resource, row.owner, row.token, row.task_id,
                        expired_at=row.expires_at.isoformat()))
    log.info("lock %s of %s expired", row.resource, row.owner, extra={"action": "lock_expired"})
    await _grant_next(store, conn, row.resource, now, drafts)


async def try_one(store: Store, conn: AsyncConnection, resource: str, claim: Claim,
                  drafts: list[EventIn], queue_for: float | None) -> Grant | int:
    """Grant ``resource`` now, or say where ``claim`` stands in its queue (joining the
    queue for ``queue_for`` seconds when given)."""
    got = await store.locks.grant_free(conn, resource, resources.type_of(resource),
                                       claim.holder(), claim.ttl_s)
    if got is not None:
        grant = Grant(resource, *got)
        if queue_for is not None:  # it may have been queued here before
            await store.locks.leave_queue(conn, resource, claim.owner)
        drafts.append(event("acquired", resource, claim.owner, grant.token, claim.task_id,
                            priority=claim.priority, expires_at=grant.expires_at.isoformat()))
        return grant
    now = await store.locks.now(conn)
    queue_until = (now + timedelta(seconds=queue_for + WAIT_SLACK)
                   if queue_for is not None else None)
    row = await store.locks.locked_row(conn, resource)
    if row.expires_at < now:
        await _expire(store, conn, row, now, drafts)
        row = await store.locks.locked_row(conn, resource)
        if row.owner is None:  # nobody was waiting
            return await try_one(store, conn, resource, claim, drafts, queue_for)
    if row.owner == claim.owner:  # already ours (granted from the queue, or asked twice)
        expires = max(row.expires_at, now + timedelta(seconds=claim.ttl_s))
        await store.locks.extend(conn, resource, expires, now)
        await store.locks.leave_queue(conn, resource, claim.owner)
        return Grant(resource, int(row.token), expires)
    mine = await store.locks.waiter(conn, resource, claim.owner)
    if queue_until is None:
        return await store.locks.position(conn, resource, claim.priority,
                                          mine.id if mine else None, now)
    if mine is None:
        mine = await store.locks.add_waiter(conn, resource, claim.owner, {
            "priority": claim.priority, "ttl_s": claim.ttl_s, "metadata": claim.metadata,
            "task_id": claim.task_id, "agent": claim.agent, "created_at": now,
            "expires_at": queue_until})
        position = await store.locks.position(conn, resource, claim.priority, mine.id, now)
        drafts.append(event("queued", resource, claim.owner, None, claim.task_id,
                            priority=claim.priority, position=position, holder=row.owner))
        return position
    # already queued: keep the place, stretch the entry to this wait
    await store.locks.stretch_waiter(conn, resource, claim.owner,
                                     max(mine.expires_at, queue_until), claim.ttl_s)
    await store.locks.mark_queued(conn, resource)
    return await store.locks.position(conn, resource, mine.priority, mine.id, now)


async def check_attempt(store: Store, conn: AsyncConnection, claim: Claim) -> None:
    if claim.task_id is None or claim.attempt is None:
        return
    row = await store.locks.attempt(conn, claim.task_id)
    if row is None or row.status != "running" or row.attempt != claim.attempt:
        raise Conflict(f"task {claim.task_id} attempt {claim.attempt} is no longer running",
                       code="stale_attempt", details={"task_id": claim.task_id})


async def step(store: Store, names: list[str], claim: Claim, queue_for: float | None
               ) -> Result:
    """One write transaction: grant every resource in ``names`` (sorted) or none.

    All or nothing: on the first one that is held, the transaction's grants are
    undone (rolled back) and, when ``queue_for`` is given, the claim joins that
    resource's queue instead (in a second transaction)."""

    class _Held(Exception):
        def __init__(self, resource: str, position: int) -> None:
            self.resource, self.position = resource, position

    only = len(names) == 1
    if only and queue_for is None:
        if grant := await fast_acquire(store, names[0], claim):
            return Result((grant,))
    elif only and claim.attempt is None and queue_for is not None:
        # take it, or else join its queue (on SQLite in one write transaction)
        hot = await store.locks.acquire_or_join({
            **claim_params(names[0], claim, token=None), "attempt": None,
            "queue_s": float(queue_for + WAIT_SLACK)}, held_first=names[0] in _CONTENDED)
        if isinstance(hot, Joined):
            return Result(position=hot.position, waiting_for=names[0], entry=hot.entry)
        if hot:
            return Result((Grant(names[0], *hot),))
    try:
        async with store.write() as conn:
            await check_attempt(store, conn, claim)
            drafts: list[EventIn] = []
            grants = []
            for name in names:
                got = await try_one(store, conn, name, claim, drafts,
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
        return await step(store, [held.resource], claim, queue_for)


# ------------------------------------------------------- release and renew


async def _held(store: Store, conn: AsyncConnection, resource: str, owner: str, token: int,
                now: datetime | None, action: str) -> Any:
    """The locked row (with the database's ``now`` and whether anyone waits) if
    ``owner`` holds ``resource`` with ``token`` now; else 409/404."""
    row = await store.locks.held(conn, resources.check(resource))
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


async def release_rows(store: Store, conn: AsyncConnection, rows: list[Any], now: datetime,
                       reason: str | None = None) -> list[EventIn]:
    """Free the locks of ``rows`` (locked by the caller), granting each to its next
    waiter; returns the events to append."""
    drafts: list[EventIn] = []
    for row in rows:
        await store.locks.free(conn, row.resource, now)
        extra = {"reason": reason} if reason else {}
        drafts.append(event("released", row.resource, row.owner, row.token, row.task_id,
                            held_ms=round((now - row.acquired_at).total_seconds() * 1000, 1),
                            **extra))
        # (whatever ``row`` said of the queue: on PostgreSQL a row read after waiting
        # for its lock may come with a snapshot older than a waiter that just joined)
        await _grant_next(store, conn, row.resource, now, drafts)
    return drafts


async def release(store: Store, resource: str, owner: str, token: int) -> None:
    """Give the lock up; the next waiter is granted in the same transaction."""
    resources.check(resource)
    if store.locks.handover_frees:  # one transaction whether anyone waits or not
        if await _fast_handover(store, resource, owner, token):
            return
    else:
        if resource in _CONTENDED and await _fast_handover(store, resource, owner, token):
            return
        if await _fast_release(store, resource, owner, token):
            _CONTENDED.pop(resource, None)
            return
        if await _fast_handover(store, resource, owner, token):
            return
    async with store.write() as conn:
        row = await _held(store, conn, resource, owner, token, None, "release")
        await events.append_in(store, conn, await release_rows(store, conn, [row], row.now))


async def release_many(store: Store, held: list[tuple[str, int]], owner: str) -> None:
    """Release several locks in one transaction: all, or none if one is not held so."""
    async with store.write() as conn:
        now = await store.locks.now(conn)
        rows = [await _held(store, conn, r, owner, t, now, "release")
                for r, t in sorted(set(held))]
        await events.append_in(store, conn, await release_rows(store, conn, rows, now))


async def renew(store: Store, resource: str, owner: str, token: int, ttl_s: float) -> Grant:
    """Extend the lease to ``ttl_s`` from now (no event: renewals are routine)."""
    if expires := await store.locks.renew({"resource": resources.check(resource),
                                           "owner": owner, "token": token,
                                           "ttl_s": float(ttl_s)}):
        return Grant(resource, token, expires)
    async with store.write() as conn:
        now = await store.locks.now(conn)
        await _held(store, conn, resource, owner, token, now, "renew")
        expires = now + timedelta(seconds=ttl_s)
        await store.locks.extend(conn, resource, expires, now)
    return Grant(resource, token, expires)


async def force_release(store: Store, resource: str, actor: str | None = None) -> dict[str, Any]:
    """An operator takes the lock from its holder; the next waiter is granted."""
    async with store.write() as conn:
        now = await store.locks.now(conn)
        row = await store.locks.locked_row(conn, resources.check(resource))
        if row is None or row.owner is None:
            raise Conflict(f"cannot force-release {resource}: it is not held",
                           code="lock_not_held", details={"resource": resource})
        await store.locks.free(conn, resource, now)
        drafts = [event("force_released", resource, row.owner, row.token, row.task_id,
                        by=actor)]
        await _grant_next(store, conn, resource, now, drafts)
        await events.append_in(store, conn, drafts)
    log.warning("lock %s force-released from %s", resource, row.owner,
                extra={"action": "lock_force_released"})
    return {"resource": resource, "owner": row.owner, "token": row.token}


async def release_owner_in(store: Store, conn: AsyncConnection, owner: str | list[str],
                           now: datetime, keep_waiting: bool = False) -> list[EventIn]:
    """Within the caller's transaction: release everything ``owner`` (or each of a list
    of owners) holds and (unless ``keep_waiting``) take it out of every queue; returns
    the events to append."""
    owners = [owner] if isinstance(owner, str) else owner
    if not owners:
        return []
    rows = await store.locks.locked_rows(conn, owners=owners)
    drafts = await release_rows(store, conn, rows, now, "attempt_ended")
    if not keep_waiting:
        await store.locks.leave_queues(conn, owners)
    return drafts


async def renew_owner_in(store: Store, conn: AsyncConnection, owner: str, ttl_s: float,
                         now: datetime) -> None:
    """Within the caller's transaction: extend every live lease ``owner`` holds."""
    await store.locks.renew_owner(conn, owner, ttl_s, now)


# ----------------------------------------------------------------- expiry


async def sweep(store: Store) -> tuple[int, datetime | None]:
    """Reclaim lapsed leases (granting their next waiters) and drop lapsed queue
    entries; returns how many leases, and when the next one lapses."""
    async with store.write() as conn:
        now = await store.locks.now(conn)
        lapsed = await store.locks.lapsed(conn, now, SWEEP_BATCH)
        drafts: list[EventIn] = []
        for row in lapsed:
            await _expire(store, conn, row, now, drafts)
        await store.locks.drop_lapsed_waiters(conn, now)
        if drafts:
            await events.append_in(store, conn, drafts)
        upcoming = await store.locks.next_expiry(conn)
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
                    now = await store.locks.now(conn)
                pause = min(max((upcoming - now).total_seconds() + 0.005, 0.01), SWEEP_INTERVAL)
        except Exception:
            log.exception("lock sweep failed", extra={"action": "lock_sweep_failed"})
        await wait_wakeup(stop, pause)
