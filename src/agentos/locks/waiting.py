"""Waiting for a grant: ``acquire`` and ``acquire_many`` with a wait, in the lock's
durable queue (priority, then arrival), woken by a grant (NOTIFY on PostgreSQL, a
wake-up within the process) or looking again after a short pause where nothing can
wake it. A grant's notification names the queue entry it served, the token and the
lease, so the waiter it names returns without reading them back; on PostgreSQL, where
every grant from any process sends one, a waiter woken only by grants to other
entries does not read either."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

from agentos import events, resources
from agentos.aio import wait_wakeup
from agentos.errors import InvalidInput
from agentos.locks.model import MAX_RESOURCES, Claim, Grant, Result
from agentos.locks.state import release_rows, step
from agentos.store import Store
from agentos.store.locks import CHANNEL

# seconds between a waiter's looks when no NOTIFY can wake it (SQLite, or a PostgreSQL
# process without a LISTEN connection: from POLL_FIRST, growing by half each look up to
# POLL, so a lock handed over soon is seen soon and a long wait costs few reads), and
# when one can (polling is only a safety net)
POLL_FIRST = 0.002
POLL = 0.02
POLL_LISTENING = 1.0
# where the store has a change stamp (SQLite: the write-ahead log's stat), a waiter
# looks at it this often and reads the lock only when it changed, or after STAMP_READ
# (a lease that lapses commits nothing)
STAMP_POLL = 0.001
STAMP_READ = 0.02


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
        result = await step(store, names, claim, None)
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
    stamp = None if listening else store.change_stamp()
    if stamp is not None:  # a look costs a stat until the database changes
        poll = STAMP_POLL
    try:
        result = await step(store, [name], claim, max(deadline - time.monotonic(), 0))
        read_at = time.monotonic()
        while not result.granted:
            left = deadline - time.monotonic()
            if left <= 0:
                return await _leave(store, name, claim, keep_place_s, result)
            await wait_wakeup(wakeup, min(left, poll))
            if result.entry is not None and (
                    noted := store.locks.noted_grant(wakeup.notes, result.entry)):
                return Result((Grant(name, *noted),))  # the grant's own notification
            if (result.entry is not None and wakeup.is_set() and not wakeup.bare
                    and CHANNEL in store.listening
                    and time.monotonic() - read_at < POLL_LISTENING):
                # only grants to other entries (a grant to ours names it, from any
                # process): nothing for us until the next one, or the safety read
                wakeup.clear()
                continue
            if stamp is not None:
                now_stamp = store.change_stamp()
                if (now_stamp == stamp and not wakeup.is_set()
                        and time.monotonic() - read_at < STAMP_READ):
                    continue  # nothing committed anywhere since our last read
                stamp = now_stamp  # (taken before the read: a later commit is seen)
            elif not listening:
                poll = min(poll * 1.5, POLL)
            wakeup.clear()
            read_at = time.monotonic()
            look = await _peek(store, name, claim.owner)
            if isinstance(look, Grant):
                return Result((look,))
            if look == "act":
                result = await step(store, [name], claim, max(left, 0))
        return result
    except BaseException:
        with contextlib.suppress(Exception):  # cancelled: leave the queue, return a late grant
            await _leave(store, name, claim, None, None, release=True)
        raise
    finally:
        store.forget_wakeup(CHANNEL, wakeup)


async def _peek(store: Store, name: str, owner: str) -> Grant | str:
    """A read: our grant, "act" (free, lapsed, or we left the queue) or "wait"."""
    row = await store.locks.look(name, owner)
    if row is None:
        return "act"
    if row.owner == owner and row.expires_at is not None and row.expires_at >= row.now:
        return Grant(name, row.token, row.expires_at)
    if (row.owner is None or row.expires_at is None or row.expires_at < row.now
            or row.waiter is None):
        return "act"
    return "wait"


async def _leave(store: Store, name: str, claim: Claim, keep_place_s: float | None,
                 result: Result | None, release: bool = False) -> Result:
    """The wait ended: leave the queue (or keep the place); a grant that came in the
    meantime is kept, or with ``release`` given back."""
    async with store.write() as conn:
        now = await store.locks.now(conn)
        row = await store.locks.locked_row(conn, name)
        if row is not None and row.owner == claim.owner and row.expires_at >= now:
            if not release:
                return Result((Grant(name, int(row.token), row.expires_at),))
            drafts = await release_rows(store, conn, [row], now, "cancelled")
            await events.append_in(store, conn, drafts)
            return Result(position=1, waiting_for=name)
        if keep_place_s is not None:
            await store.locks.stretch_waiter(conn, name, claim.owner,
                                             now + timedelta(seconds=keep_place_s))
            if row is not None:
                await store.locks.mark_queued(conn, name)
        else:
            await store.locks.leave_queue(conn, name, claim.owner)
    return result or Result(position=1, waiting_for=name)


async def _give_back(store: Store, grants: list[Grant], owner: str) -> None:
    if not grants:
        return
    async with store.write() as conn:
        now = await store.locks.now(conn)
        rows = await store.locks.locked_rows(conn, resources=[g.resource for g in grants],
                                             owners=[owner], tokens=[g.token for g in grants])
        drafts = await release_rows(store, conn, rows, now, "gave_back")
        if drafts:
            await events.append_in(store, conn, drafts)
