"""The in-process event bus: one pump per process reads new events from the log
and fans them out to subscribers.

The log is the truth; wake-ups (a local commit, a PostgreSQL NOTIFY from
another process, or the poll timer) only tell the pump to read again, so a lost
wake-up delays an event by at most ``poll_interval`` and never loses it.
Subscribers keep their own cursor: recent events come from the pump's ring
buffer, older ones straight from the log, so a slow or resuming subscriber
misses nothing and sees nothing twice.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from agentos import events, locks, patterns
from agentos.aio import wait_wakeup
from agentos.events import Event
from agentos.store import Store
from agentos.store import workflows as store_workflows

log = logging.getLogger("agentos.bus")

READ_BATCH = 1000  # events per read of the log
RING_SIZE = 10_000  # recent events kept in memory for subscribers


class Bus:
    """Fan-out of the event log to in-process subscribers."""

    def __init__(self, store: Store, *, poll_interval: float | None = None,
                 also_listen: tuple[str, ...] = ()) -> None:
        self.store = store
        # other channels this process wants woken (one LISTEN connection serves all)
        self.also_listen = also_listen
        self.poll_interval = poll_interval or store.poll_interval
        self.cursor = 0  # every event up to here is in the ring (or older than it)
        self._ring: list[Event] = []  # contiguous recent events, oldest first
        self._seqs: list[int] = []
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribers = 0  # none: the pump reads nothing; the head is read when one comes
        self._subscribed = asyncio.Event()  # set when a subscriber comes
        self._behind = False  # the log may be past ``cursor`` (it went unread, nobody listened)

    async def start(self) -> None:
        self.cursor = await events.head_seq(self.store)
        # the one LISTEN connection of the process also wakes lock waiters when another
        # server grants them a lock, and an idle workflow engine when a run starts there
        channels = [events.CHANNEL, locks.CHANNEL, store_workflows.RUNS_CHANNEL]
        self._tasks = [asyncio.create_task(self._pump(), name="bus-pump"),
                       asyncio.create_task(self.store.listen([*channels, *self.also_listen]),
                                           name="bus-listen")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def head(self) -> int:
        """The log's head as this bus knows it: where a subscriber from now on starts."""
        if self._behind:
            head = await events.head_seq(self.store)
            if self._behind:  # (unless the pump caught up meanwhile)
                self._behind = False
                if head > self.cursor:  # the ring skips what nobody read
                    self._ring, self._seqs, self.cursor = [], [], head
                    self._wake_subscribers()  # one resuming behind the head reads the log
        return self.cursor

    async def _pump(self) -> None:
        wakeup = self.store.wakeup(events.CHANNEL)
        while True:
            wakeup.clear()
            if not self._subscribers:
                # nobody to hand events to: reading them back (even the head) would cost
                # an appending server a good part of the append, and waking at each append
                # a turn of its loop; a subscriber that comes asks for the head (``head``)
                # and wakes the pump, and one behind the ring reads the log
                self._behind = True
                self._subscribed.clear()
                await self._subscribed.wait()
                continue
            if self._behind:
                try:
                    await self.head()
                except Exception:
                    log.exception("reading the head failed", extra={"action": "bus_read_failed"})
            try:
                batch = await self._read(self.cursor)
            except Exception:
                log.exception("reading the log failed", extra={"action": "bus_read_failed"})
                batch = []
            if batch:
                self._ring.extend(batch)
                self._seqs.extend(e.seq for e in batch)
                if len(self._ring) > 2 * RING_SIZE:  # trim in bulk: amortised O(1)
                    del self._ring[:-RING_SIZE], self._seqs[:-RING_SIZE]
                self.cursor = batch[-1].seq
                self._wake_subscribers()
                if len(batch) == READ_BATCH:
                    continue
            await wait_wakeup(wakeup, self.poll_interval)

    def _wake_subscribers(self) -> None:
        arrived, self._arrived = self._arrived, asyncio.Event()
        arrived.set()

    async def _read(self, after: int, type_glob: str | None = None) -> list[Event]:
        async with self.store.read() as conn:
            return await events.read_after(self.store, conn, after, READ_BATCH, type_glob)

    async def subscribe(self, type_glob: str = "*", after_seq: int | None = None
                        ) -> AsyncIterator[Event]:
        """Events matching ``type_glob`` with ``seq > after_seq`` (default: from now
        on), in order, forever. Resume by passing the last ``seq`` you handled."""
        patterns.check_event_glob(type_glob)
        self._subscribers += 1  # the pump reads events again from its next pass
        self._subscribed.set()
        try:
            cursor = await self.head() if after_seq is None else after_seq
            while True:
                arrived = self._arrived
                batch, cursor = await self._next(cursor, type_glob)
                for event in batch:
                    yield event
                if not batch:
                    await arrived.wait()
        finally:
            self._subscribers -= 1

    async def _next(self, cursor: int, type_glob: str) -> tuple[list[Event], int]:
        """The next events after ``cursor`` and the new cursor."""
        if cursor >= self.cursor:
            return [], cursor
        if self._seqs and cursor + 1 >= self._seqs[0]:
            start = bisect.bisect_right(self._seqs, cursor)
            newer = self._ring[start:]
            return [e for e in newer if patterns.matches(type_glob, e.type)], newer[-1].seq
        # behind the ring: read the log itself (the pump may be ahead of us)
        older = await self._read(cursor, None)
        if not older:
            return [], self.cursor
        return [e for e in older if patterns.matches(type_glob, e.type)], older[-1].seq

    def on(self, type_glob: str, callback: Callable[[Event], Awaitable[None]]
           ) -> asyncio.Task[None]:
        """Call ``callback`` for each new matching event; cancel the task to stop."""
        async def run() -> None:
            async for event in self.subscribe(type_glob):
                try:
                    await callback(event)
                except Exception:
                    log.exception("subscriber failed", extra={"action": "subscriber_failed"})
        return asyncio.create_task(run())
