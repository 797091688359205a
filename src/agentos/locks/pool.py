"""Acquire-any: the first free resource of a pool (a list, in order of preference, or
every resource ever locked under a prefix such as ``device:`` or ``device:android-``),
with the same priority queue, leases and fencing tokens as any other lock.

A read finds the first free candidate and the one-statement acquire takes it (two
round trips, the common case). Otherwise one write transaction tries the candidates
in order and takes the first free one (a lapsed lease is expired first, its queue
served first). When none is free and the
caller waits, it joins the queue of every candidate (a ``lock.queued`` event each)
and waits for whichever grants it first: released locks are handed to their best
waiter as always, so priority and arrival decide on each device alike. The grant
that wins is kept; the caller leaves the other queues and gives back, at once, any
other candidate granted to it meanwhile (two freed together), so it never holds more
than one when it returns. The candidates' rows are locked in resource order, as
every other lock path locks them (no deadlock with acquire-many).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, events, resources
from agentos.aio import wait_wakeup
from agentos.errors import InvalidInput, NotFound
from agentos.locks.model import MAX_RESOURCES, Claim, Grant, Result, again_if_victim
from agentos.locks.state import check_attempt, fast_acquire, release_rows, try_one
from agentos.locks.waiting import POLL, POLL_FIRST, POLL_LISTENING
from agentos.store import Store
from agentos.store.locks import CHANNEL

# TYPE: and, optionally, the start of a name (the characters of a resource id)
PREFIX = re.compile(r"^[a-z][a-z0-9_-]{0,62}:[A-Za-z0-9_.:/@+=-]{0,199}$")


@dataclass(frozen=True)
class Pool:
    """The resources an acquire-any chooses from: ``names`` in order of preference, or
    every resource ever locked whose id starts with ``prefix`` (in id order, the first
    ``MAX_RESOURCES``). ``permitted`` leaves out those the caller may not lock."""

    names: tuple[str, ...] = ()
    prefix: str | None = None
    permitted: Callable[[str], bool] | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """How the pool is named in errors and audit rows."""
        return f"{self.prefix}*" if self.prefix is not None else ",".join(self.names)


def pool(names: list[str] | None = None, prefix: str | None = None,
         permitted: Callable[[str], bool] | None = None) -> Pool:
    """The pool a request names, or 400: exactly one of a list (1 to ``MAX_RESOURCES``
    resource ids, repeats dropped) or a prefix (``TYPE:`` and the start of a name)."""
    if (names is None) == (prefix is None):
        raise InvalidInput("give either resources (a list) or prefix (e.g. 'device:')",
                           code="bad_pool")
    if prefix is not None:
        if not isinstance(prefix, str) or not PREFIX.match(prefix):
            raise InvalidInput(f"{prefix!r} is not a resource prefix: use TYPE: and, "
                               "optionally, the start of a name, e.g. 'device:android-'",
                               code="bad_prefix", details={"prefix": prefix})
        return Pool(prefix=prefix, permitted=permitted)
    assert names is not None
    unique = tuple(dict.fromkeys(resources.check(n) for n in names))
    if not 1 <= len(unique) <= MAX_RESOURCES:
        raise InvalidInput(f"give 1 to {MAX_RESOURCES} resources", code="bad_resources")
    return Pool(names=unique, permitted=permitted)


async def acquire_any(store: Store, candidates: Pool, claim: Claim, wait_s: float = 0
                      ) -> Result:
    """Take the first free resource of ``candidates`` for ``claim.owner``: a Result with
    that one grant (its ``resource`` says which). With ``wait_s`` > 0 and none free,
    wait in every candidate's queue for whichever is granted first; when the wait
    ends, the best place held (``position``, ``waiting_for``) and the queues are left.
    404 when the pool has no resource (a prefix nothing was ever locked under)."""
    deadline = time.monotonic() + wait_s
    if fast := await _first_free(store, candidates, claim):  # (checks a task's attempt too)
        return fast
    result = await again_if_victim(
        lambda: _step(store, candidates, claim, wait_s if wait_s > 0 else None))
    if result.granted or wait_s <= 0:
        return result
    wakeup = store.wakeup(CHANNEL)
    listening = CHANNEL in store.listening
    poll = POLL_LISTENING if listening else POLL_FIRST
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return await again_if_victim(
                    lambda: _settle(store, candidates, claim, keep=True)) or result
            await wait_wakeup(wakeup, min(left, poll))
            if not listening:
                poll = min(poll * 1.5, POLL)
            wakeup.clear()
            look = await _look(store, candidates, claim.owner)
            if look == "granted":
                if settled := await again_if_victim(
                        lambda: _settle(store, candidates, claim, keep=True)):
                    return settled
                look = "act"  # the lease lapsed before we saw it
            if look == "act":
                result = await again_if_victim(lambda: _step(
                    store, candidates, claim, max(deadline - time.monotonic(), 0)))
                if result.granted:
                    return result
    except BaseException:
        with contextlib.suppress(Exception):  # cancelled: leave the queues, give back grants
            await again_if_victim(lambda: _settle(store, candidates, claim, keep=False))
        raise
    finally:
        store.forget_wakeup(CHANNEL, wakeup)


async def _names(store: Store, conn: AsyncConnection, candidates: Pool) -> list[str]:
    if candidates.prefix is not None:
        names = await store.locks.names_under(conn, candidates.prefix, MAX_RESOURCES)
    else:
        names = list(candidates.names)
    if candidates.permitted is not None:
        names = [n for n in names if candidates.permitted(n)]
    return names


async def _first_free(store: Store, candidates: Pool, claim: Claim) -> Result | None:
    """The common case in two round trips: a read finds the first candidate that is
    free (or never locked) and one statement takes it. None when that changed nothing
    (taken meanwhile), or when the full path must decide: a lapsed lease, the owner
    already holding or queued for one of them, no candidate free."""
    async with store.read() as conn:
        names = await _names(store, conn, candidates)
        rows = {r.resource: r for r in await store.locks.look_any(conn, names, claim.owner)}
    if any(r.waiter is not None or r.owner == claim.owner for r in rows.values()):
        return None
    free = None
    for name in names:
        row = rows.get(name)
        if row is None or row.owner is None:
            free = name
            break
        if row.expires_at < row.now:  # lapsed: expired first, its waiters served first
            return None
    if free is None:
        return None
    _audit(candidates, free)
    grant = await fast_acquire(store, free, claim)
    return Result((grant,)) if grant is not None else None


async def _step(store: Store, candidates: Pool, claim: Claim, queue_for: float | None
                ) -> Result:
    """One write transaction: the first free candidate, else (with ``queue_for``) a
    place in every candidate's queue; the best position either way."""
    async with store.write() as conn:
        await check_attempt(store, conn, claim)
        names = await _names(store, conn, candidates)
        if not names:
            raise NotFound(f"no resource to choose from in {candidates.label}",
                           code="no_resources", details={"pool": candidates.label})
        rows = await store.locks.locked_rows(conn, resources=names)  # in resource order
        now = await store.locks.now(conn)
        if any(r.owner == claim.owner and r.expires_at >= now for r in rows):
            # granted from a queue since we last looked, or asked again: keep one
            kept = await _keep_one(store, conn, names, claim, now)
            if kept is not None:
                _audit(candidates, kept.resource)
                return Result((kept,))
        drafts: list[events.EventIn] = []
        held = {r.resource for r in rows if r.owner is not None and r.expires_at >= now}
        for name in names:  # the free, the lapsed and the never locked, in the pool's order
            if name in held:
                continue
            got = await try_one(store, conn, name, claim, drafts, None)
            if isinstance(got, Grant):
                if queue_for is not None:  # a waiter (or one asking again): its places
                    await store.locks.leave_queues(conn, [claim.owner], names)
                _audit(candidates, got.resource)
                await events.append_in(store, conn, drafts)
                return Result((got,))
        if queue_for is None:
            positions = await store.locks.positions(conn, names, claim.priority, now)
        else:
            positions = {}
            for name in names:
                got = await try_one(store, conn, name, claim, drafts, queue_for)
                if isinstance(got, Grant):  # (the rows are locked: it cannot be, but)
                    await store.locks.leave_queues(conn, [claim.owner], names)
                    _audit(candidates, got.resource)
                    await events.append_in(store, conn, drafts)
                    return Result((got,))
                positions[name] = got
        _audit(candidates, None)
        if drafts:
            await events.append_in(store, conn, drafts)
    best = min(names, key=lambda n: positions[n])
    return Result(position=positions[best], waiting_for=best)


async def _keep_one(store: Store, conn: AsyncConnection, names: list[str], claim: Claim,
                    now: datetime,
                    keep: bool = True) -> Grant | None:
    """Within a write transaction: leave every candidate's queue, then keep the first
    (in the pool's order) of the candidates held by ``claim.owner``, its lease
    extended to the claim's, and give the others back (all of them unless ``keep``).

    The queues are left first: a grant to us that another transaction is making
    deletes our queue entry, so our delete waits for it to commit and the rows read
    next see it; any later one finds no entry of ours. So nothing is granted to us
    after this returns."""
    await store.locks.leave_queues(conn, [claim.owner], names)
    rows = await store.locks.locked_rows(conn, resources=names, owners=[claim.owner])
    live = sorted((r for r in rows if r.expires_at >= now),
                  key=lambda r: names.index(r.resource))
    kept = live[0] if live and keep else None
    drafts = await release_rows(store, conn, [r for r in live if r is not kept], now,
                                "gave_back")
    if drafts:
        await events.append_in(store, conn, drafts)
    if kept is None:
        return None
    expires = max(kept.expires_at, now + timedelta(seconds=claim.ttl_s))
    await store.locks.extend(conn, kept.resource, expires, now)
    return Grant(kept.resource, int(kept.token), expires)


def _audit(candidates: Pool, granted: str | None) -> None:
    """A request's audit row names the resource it got (else the pool)."""
    if (entry := audit.pending()) is not None:
        entry.resource_id = granted or candidates.label[:255]
        entry.details["pool"] = candidates.label[:200]


async def _look(store: Store, candidates: Pool, owner: str) -> str:
    """A read: "granted" (a candidate is ours), "act" (one is free or lapsed, or we
    are out of a queue) or "wait"."""
    async with store.read() as conn:
        names = await _names(store, conn, candidates)
        rows = await store.locks.look_any(conn, names, owner)
    if any(r.owner == owner and r.expires_at >= r.now for r in rows):
        return "granted"
    if len(rows) < len(names) or any(
            r.owner is None or r.expires_at < r.now or r.waiter is None for r in rows):
        return "act"
    return "wait"


async def _settle(store: Store, candidates: Pool, claim: Claim, keep: bool) -> Result | None:
    """The wait is over: leave every queue, keep one grant (none unless ``keep``)."""
    async with store.write() as conn:
        names = await _names(store, conn, candidates)
        kept = await _keep_one(store, conn, names, claim, await store.locks.now(conn), keep)
    return Result((kept,)) if kept is not None else None
