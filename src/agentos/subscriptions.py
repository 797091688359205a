"""Named durable subscriptions: a type glob and a cursor kept in the database.

A consumer reads a page after its cursor and acknowledges up to the last event
it handled; if it crashes before acknowledging, it reads the same events again
(at-least-once, in order). A read may wait for the next event (long polling):
commits wake it, and it re-reads the log every poll interval anyway, so a lost
wake-up delays an event by at most that and never loses it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from agentos import events, paging, patterns
from agentos.aio import wait_wakeup
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.events import Event
from agentos.store import Store
from agentos.store.columns import utcnow
from agentos.store.tables import subscriptions as subs

NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
MAX_WAIT = 60.0  # seconds a read may wait for events


@dataclass(frozen=True)
class Subscription:
    name: str
    type_glob: str
    cursor_seq: int
    created_at: datetime
    acked_at: datetime | None

    def to_dict(self, head: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "type": self.type_glob, "cursor_seq": self.cursor_seq,
            "created_at": self.created_at.isoformat(),
            "acked_at": self.acked_at.isoformat() if self.acked_at else None}
        if head is not None:
            out["head_seq"] = head
        return out


async def create(store: Store, name: str, type_glob: str, *, from_start: bool = False
                 ) -> Subscription:
    """Create a subscription; it starts after the current head unless ``from_start``."""
    if not NAME.match(name):
        raise InvalidInput(f"subscription name {name!r} must match {NAME.pattern}",
                           code="bad_name")
    patterns.check_event_glob(type_glob)
    start = 0 if from_start else await events.head_seq(store)
    async with store.write() as conn:
        if (await conn.execute(select(subs.c.name).where(subs.c.name == name))).first():
            raise Conflict(f"subscription {name} exists", code="subscription_exists")
        await conn.execute(insert(subs).values(name=name, type_glob=type_glob, cursor_seq=start))
    return await get(store, name)


async def get(store: Store, name: str) -> Subscription:
    async with store.read() as conn:
        row = (await conn.execute(select(subs).where(subs.c.name == name))).first()
    if row is None:
        raise NotFound(f"no subscription named {name}", code="subscription_not_found")
    return Subscription(row.name, row.type_glob, row.cursor_seq, row.created_at, row.acked_at)


async def list_all(store: Store) -> list[Subscription]:
    return (await page(store, limit=None))[0]


async def page(store: Store, after: str | None = None, limit: int | None = paging.DEFAULT_LIMIT
               ) -> tuple[list[Subscription], str | None]:
    """Subscriptions by name after ``after``, at most ``limit``; and the next page's cursor."""
    async with store.read() as conn:
        rows, next_after = await paging.keyed(conn, select(subs), subs.c.name, after, limit)
    return [Subscription(r.name, r.type_glob, r.cursor_seq, r.created_at, r.acked_at)
            for r in rows], next_after


async def delete_one(store: Store, name: str) -> None:
    async with store.write() as conn:
        if (await conn.execute(delete(subs).where(subs.c.name == name))).rowcount == 0:
            raise NotFound(f"no subscription named {name}", code="subscription_not_found")


async def pending(store: Store, name: str, limit: int = 100, wait_s: float = 0.0
                  ) -> list[Event]:
    """The next events after the subscription's cursor (not acknowledged yet);
    with ``wait_s``, wait up to that long for the first one to arrive."""
    if not 1 <= limit <= events.MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {events.MAX_PAGE}", code="bad_limit")
    if not 0 <= wait_s <= MAX_WAIT:
        raise InvalidInput(f"wait_s must be between 0 and {MAX_WAIT:g}", code="bad_wait")
    deadline = time.monotonic() + wait_s
    wakeup = store.wakeup(events.CHANNEL)
    try:
        while True:
            wakeup.clear()  # before reading: a commit from now on wakes the wait below
            sub = await get(store, name)
            async with store.read() as conn:
                found = await events.read_after(store, conn, sub.cursor_seq, limit, sub.type_glob)
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            await wait_wakeup(wakeup, min(left, store.poll_interval))
    finally:
        store.forget_wakeup(events.CHANNEL, wakeup)


async def ack(store: Store, name: str, seq: int) -> Subscription:
    """Move the cursor forward to ``seq`` (acknowledging never moves it back)."""
    head = await events.head_seq(store)
    if seq < 0 or seq > head:
        raise InvalidInput(f"seq {seq} is not in the log (head is {head})", code="bad_seq",
                           details={"head_seq": head})
    async with store.write() as conn:
        result = await conn.execute(
            update(subs).where(subs.c.name == name, subs.c.cursor_seq < seq)
            .values(cursor_seq=seq, acked_at=utcnow()))
        if result.rowcount == 0:
            await get(store, name)  # 404 if missing; else already past seq
    return await get(store, name)
