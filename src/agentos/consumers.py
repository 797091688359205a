"""Consumers of the event log: a named reader with a cursor in the database that applies
events in batches, each batch in the transaction that moves its cursor.

    consumer = consumers.Consumer("projection:stats", ("task.*",), apply)
    await consumers.run(store, consumer, stop)     # catch up, then follow the log

So a consumer never applies an event twice nor skips one, whatever crashes: a batch
and its cursor commit together or not at all. Only one process applies a given
consumer's batch at a time (its cursor row is locked for the batch; on PostgreSQL
another process skips the round instead of waiting), so several servers may run the
same consumers. Reads stop at the log's horizon (``store.events.horizon``): an event that
commits later with a smaller number is never skipped. ``reset`` starts a consumer
over from the beginning of the log (a rebuild); until it has caught up with the head
the log had then, it reports itself ``rebuilding`` and refuses another reset.

A runner never holds the event loop for long, however far behind it is. It yields
between batches; where statements run on the loop (SQLite, ``store.inline``) the
runners of a process take turns (``Pace.turn``), one batch at a time, each sized by
the batches' times so that one takes about ``SLICE``, and after a batch that left more
to read the loop is left to requests for ``PAUSE``. A batch also reads at most ``SCAN``
sequence numbers per event it may take, so a reader of rare types does not scan a
whole backlog for one batch. A server catching up a large backlog answers its
requests meanwhile.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import events, patterns
from agentos.aio import stop_wakes, wait_wakeup
from agentos.errors import Conflict
from agentos.events import Event
from agentos.store import Store
from agentos.store import consumers as store_consumers

log = logging.getLogger("agentos.consumers")

DEFAULT_BATCH = 1000  # events per transaction
ERROR_PAUSE = 1.0  # seconds before a batch that failed is tried again
SLICE = 0.1  # seconds a batch should hold the event loop where statements run on it
PAUSE = 0.02  # seconds the loop is left to requests after such a batch, while behind
MIN_BATCH = 16  # events: the smallest batch a slow consumer is cut down to
START_BATCH = 64  # events of a bounded runner's first batch; then it grows while quick
SCAN = 8  # sequence numbers a batch may read through per event it may take
SHARED_S = 1.0  # seconds a batch's events are kept for the next reader of the same types
SHARED_MAX = 2 * DEFAULT_BATCH  # events kept per set of types, at most


@dataclass(frozen=True)
class Consumer:
    """A reader of the log: ``apply(conn, events)`` runs in the batch's transaction;
    ``clear(conn)`` empties what it built (a reset). ``apply`` may return False to say
    the batch changed nothing: the cursor then moves in a transaction that need not be
    durable (a crash before it reaches the disk only reads those events again). The
    events ``apply`` is given may be the very objects another consumer of the same
    types was given (``_events``): it reads them and never changes them."""

    name: str
    types: tuple[str, ...]  # event-type globs it reads ("*": all)
    apply: Callable[[AsyncConnection, list[Event]], Awaitable[bool | None]]
    clear: Callable[[AsyncConnection], Awaitable[None]] | None = None
    batch: int = DEFAULT_BATCH
    # seconds a follower waits, once woken by an append, before it reads: the events
    # appended meanwhile come in the same batch. 0 for a consumer others wait on (the
    # workflow engine); a read model trades that much lag for one transaction per
    # gathering instead of one per event when single events trickle in
    gather_s: float = 0.0

    def likes(self) -> list[str]:
        if "*" in self.types:
            return []
        for glob in self.types:
            patterns.check_event_glob(glob)
        return [patterns.to_like(g) for g in self.types]


@dataclass(frozen=True)
class Position:
    """Where a consumer stands in the log."""

    name: str
    cursor_seq: int
    head_seq: int
    applied: int  # events applied since the last reset
    lag_s: float  # how old the oldest event it has not read is (0: none)
    updated_at: datetime | None
    rebuild_target: int | None  # rebuilding up to this sequence number
    rebuild_started_at: datetime | None

    @property
    def lag_events(self) -> int:
        """Events of the log (of any type) it has not read yet."""
        return max(0, self.head_seq - self.cursor_seq)

    @property
    def status(self) -> str:
        if self.rebuild_target is not None:
            return "rebuilding"
        return "live" if self.lag_events == 0 else "catching_up"

    def to_dict(self) -> dict[str, Any]:
        target = self.rebuild_target
        return {"name": self.name, "status": self.status, "cursor_seq": self.cursor_seq,
                "head_seq": self.head_seq, "lag_events": self.lag_events,
                "lag_s": round(self.lag_s, 3), "applied": self.applied,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None,
                "rebuild": None if target is None else {
                    "target_seq": target,
                    "progress": round(min(1.0, self.cursor_seq / target), 4) if target else 1.0,
                    "started_at": self.rebuild_started_at.isoformat()
                    if self.rebuild_started_at else None}}


class Pace:
    """How a runner takes its batches. Where statements leave the event loop free (it
    waits for their answers), each batch is the consumer's own ``batch``. Where they
    run on it (``store.inline``) the runners of the store take turns, one batch at a
    time (``turn``), and a batch's size follows the batches' times so that one takes
    about ``SLICE``: between ``MIN_BATCH`` and the consumer's ``batch``, halved at
    most and doubled at most per batch. (Taking turns on PostgreSQL too made a
    catch-up four times slower, for no request answered sooner.)"""

    def __init__(self, limit: int, turns: asyncio.Lock | None = None) -> None:
        self.limit = limit
        self.turns = turns
        self.size = min(limit, START_BATCH) if turns is not None else limit

    @classmethod
    def of(cls, store: Store, limit: int) -> Pace:
        return cls(limit, _turns(store) if store.inline else None)

    def window(self, cursor: int, settled: int) -> int:
        """The last sequence number the next batch may read through."""
        return min(settled, cursor + self.size * SCAN)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Turn]:
        """Run one batch: the caller sets ``behind`` on what it yields when the batch
        stopped at its size or its window, not at the log's horizon (so a larger one had
        found more, and more is waiting). Then others run: where statements hold the
        loop, for ``PAUSE`` after a batch that left more to read, before any other
        runner's batch."""
        turn = Turn()
        if self.turns is None:
            yield turn
            await asyncio.sleep(0)
            return
        async with self.turns:
            started = time.monotonic()
            yield turn
            self._took(time.monotonic() - started, turn.behind)
            if turn.behind:
                await asyncio.sleep(PAUSE)  # still ours: no other runner's batch meanwhile

    def _took(self, seconds: float, full: bool) -> None:
        if seconds > SLICE:
            self.size = max(MIN_BATCH, self.size // 2, int(self.size * SLICE / seconds))
        elif seconds < SLICE / 2 and full:
            self.size = min(self.limit, self.size * 2)


@dataclass
class Turn:
    """What a batch tells its pace: whether it left more to read."""

    behind: bool = False


# one batch at a time among a store's runners (a process's loop), where statements hold it
_TURNS: weakref.WeakKeyDictionary[Store, asyncio.Lock] = weakref.WeakKeyDictionary()


def _turns(store: Store) -> asyncio.Lock:
    lock = _TURNS.get(store)
    if lock is None:
        lock = _TURNS[store] = asyncio.Lock()
    return lock


async def step(store: Store, consumer: Consumer, pace: Pace | None = None) -> int | None:
    """Apply the consumer's next batch; the number of events applied (0: it is caught
    up), or None when another process is applying one right now. ``pace`` (a runner's)
    sizes the batch and takes its turn; without it the batch is the consumer's own."""
    moved = await advance(store, consumer, pace)
    return None if moved is None else moved[0]


async def advance(store: Store, consumer: Consumer, pace: Pace | None = None
                  ) -> tuple[int, bool] | None:
    """``step``, telling also whether the batch reached the log's horizon: (events
    applied, caught up), or None when another process is applying one right now. A
    follower that caught up waits for the next append instead of reading again."""
    pace = pace or Pace(consumer.batch)
    while True:
        async with pace.turn() as turn:
            moved = await _batch(store, consumer, pace)
            turn.behind = moved is not None and not moved[1]
        if moved is None:
            return None
        applied, caught_up = moved
        if applied or caught_up:
            return moved
        # a window with nothing it reads: on to the next, after others' turn


async def _batch(store: Store, consumer: Consumer, pace: Pace) -> tuple[int, bool] | None:
    """One batch: (events applied, whether the cursor is at the horizon now), or None
    when another process holds the cursor."""
    if not await store_consumers.news(store, consumer.name):
        return 0, True  # nothing new: no write transaction at all
    likes = consumer.likes()
    async with store.write() as conn:
        store.nothing_changed(conn)  # a consumer's progress is no change worth an audit row
        claimed = await store_consumers.claim_batch(conn, consumer.name)
        if claimed is None:
            return None
        # the horizon came with the claim: the reads below take a later snapshot
        start, settled = claimed
        if start >= settled:  # (another process's batch moved it there meanwhile)
            return 0, True
        # every event is one a "*" consumer takes: its batch bounds its reading already
        upto = pace.window(start, settled) if likes else settled
        batch = await _events(store, conn, consumer.name, start, upto, likes, pace.size)
        changed = (await consumer.apply(conn, batch)) is not False if batch else False
        # a short batch read everything up to ``upto``: the cursor may skip there
        cursor = batch[-1].seq if len(batch) == pace.size else upto
        if cursor == start:
            return 0, True
        if not changed:
            await store_consumers.relax_durability(conn)
        await store_consumers.advance(conn, consumer.name, cursor, len(batch))
    return len(batch), cursor >= settled


@dataclass
class _Read:
    """What the reads of a set of types found: every event of those types with
    ``lo < seq <= hi``, in order, as of ``at`` (monotonic seconds) and of the log's
    ``pruned`` count then."""

    lo: int
    hi: int
    events: list[Event]
    at: float
    pruned: int


@dataclass
class _Reads:
    """A store's shared reads: per set of types (the LIKE patterns a batch reads with),
    the consumers seen reading them and the last reads' events, if two or more do."""

    readers: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    found: dict[tuple[str, ...], _Read] = field(default_factory=dict)
    sweep: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop | None = None  # the sweep's

    def keep(self, key: tuple[str, ...], read: _Read) -> None:
        """Keep ``read`` for the next reader of ``key``: a sweep drops it once it is
        ``SHARED_S`` old (within 2 * ``SHARED_S``), whether or not it is read again."""
        self.found[key] = read
        loop = asyncio.get_running_loop()
        if self.sweep is None or self.loop is not loop:  # (a store outlives a loop)
            self.loop, self.sweep = loop, loop.call_later(SHARED_S, self._swept)

    def _swept(self) -> None:
        self.sweep = None
        now = time.monotonic()
        for key, read in list(self.found.items()):
            if now - read.at >= SHARED_S:
                del self.found[key]
        if self.found and self.loop is not None:
            self.sweep = self.loop.call_later(SHARED_S, self._swept)


_READS: weakref.WeakKeyDictionary[Store, _Reads] = weakref.WeakKeyDictionary()


async def _events(store: Store, conn: AsyncConnection, reader: str, after: int, upto: int,
                  likes: list[str], limit: int) -> list[Event]:
    """A batch's events: those of the types ``likes`` names with ``after < seq <=
    upto``, in order, at most ``limit``, for the consumer named ``reader``.

    Consumers of the same types (the two built-in read models of task events) read the
    same events one after the other at each gathering, so where two or more in this
    process read a set of types, the events their reads found (the last
    ``SHARED_MAX``, while the reads follow on from each other within ``SHARED_S``)
    are handed on to a read that starts among them: only the events past them are
    read from the database and decoded, once for all of them (the same objects: a
    consumer never changes them). What a read found stays true: nothing at or below
    the horizon a batch reads up to commits later, and a prune in this process
    (``store.events.pruned``) drops what was read before it. A prune in another
    process may delete events read here up to ``SHARED_S`` before it: a reader is
    then handed them as if it had read just before the prune."""
    reads = _READS.get(store)
    if reads is None:
        reads = _READS[store] = _Reads()
    key = tuple(likes)
    readers = reads.readers.setdefault(key, set())
    readers.add(reader)
    if len(readers) < 2:  # none to share with
        rows = await store_consumers.events_after(conn, after, upto, likes, limit)
        return [Event.from_row(r) for r in rows]
    now, pruned = time.monotonic(), store.events.pruned
    last = reads.found.get(key)
    if last is None or now - last.at > SHARED_S or last.pruned != pruned or \
            not last.lo <= after <= last.hi:
        last = _Read(after, after, [], now, pruned)
    kept = last.events[bisect.bisect_right(last.events, after, key=_seq):]
    if upto <= last.hi or len(kept) >= limit:
        return kept[:min(limit, bisect.bisect_right(kept, upto, key=_seq))]
    # every event kept is at or before last.hi < upto, and fewer than limit
    rows = await store_consumers.events_after(conn, last.hi, upto, likes, limit - len(kept))
    fresh = [Event.from_row(r) for r in rows]
    found = kept + fresh
    hi = found[-1].seq if len(found) == limit else upto  # a full read stops at its last
    held, lo = last.events + fresh, last.lo
    if len(held) > SHARED_MAX:  # the oldest go
        lo = held[-SHARED_MAX - 1].seq
        held = held[-SHARED_MAX:]
    reads.keep(key, _Read(lo, hi, held, now, pruned))
    return found


def _seq(event: Event) -> int:
    return event.seq


async def catch_up(store: Store, consumer: Consumer) -> int:
    """Apply batches until the consumer has read the whole log; the events applied."""
    total = 0
    pace = Pace.of(store, consumer.batch)
    while True:
        applied = await step(store, consumer, pace)
        if applied is None:  # another process is at it: let it go first
            await asyncio.sleep(0.01)
            continue
        if applied == 0:
            return total
        total += applied


# One turn of a follower: (more, wait) — ``more``: go again at once (a backlog);
# ``wait``: else wait at most this long for an append's wake-up (None: the poll interval)
Follow = Callable[[Pace], Awaitable[tuple[bool, float | None]]]


async def run(store: Store, consumer: Consumer, stop: asyncio.Event,
              turn: Follow | None = None) -> None:
    """Catch up, then follow the log until ``stop`` is set: woken by appends here and,
    on PostgreSQL, anywhere; re-reading every poll interval anyway. A turn is a batch
    (``step``), or what ``turn`` does instead (the workflow engine's, cheaper while
    idle); a turn that fails is tried again after ``ERROR_PAUSE``. A batch that stopped
    short of the horizon is followed by the next at once; one that reached it waits for
    a wake-up (and gathers), so appends that keep coming while it reads are read in one
    batch per gathering, not one each."""
    wakeup = store.wakeup(events.CHANNEL)
    pace = Pace.of(store, consumer.batch)

    async def batch(pace: Pace) -> tuple[bool, float | None]:
        moved = await advance(store, consumer, pace)
        return moved is not None and moved[0] > 0 and not moved[1], None

    take = turn or batch
    try:
        async with stop_wakes(stop, wakeup):
            while not stop.is_set():
                wakeup.clear()
                try:
                    more, wait = await take(pace)
                except Exception:
                    log.exception("consumer %s failed a batch; trying again", consumer.name,
                                  extra={"action": "consumer_failed", "consumer": consumer.name})
                    await wait_wakeup(stop, ERROR_PAUSE)
                    continue
                if more:
                    continue  # more is waiting (the turn let others run in between)
                poll = store.poll_interval
                await wait_wakeup(wakeup, poll if wait is None else min(poll, wait))
                if consumer.gather_s and wakeup.is_set():
                    await wait_wakeup(stop, consumer.gather_s)
    finally:
        store.forget_wakeup(events.CHANNEL, wakeup)


async def reset(store: Store, consumer: Consumer) -> Position:
    """Start the consumer over: what it built cleared and its cursor at 0, in one
    transaction; runners then rebuild it from the log. Refused (409) while an earlier
    reset has not caught up yet."""
    async with store.write() as conn:
        row = await store_consumers.claim(conn, consumer.name, wait=True)
        assert row is not None
        if row.rebuild_target is not None:
            raise Conflict(f"{consumer.name} is being rebuilt already "
                           f"({row.cursor_seq} of {row.rebuild_target})",
                           code="rebuild_running",
                           details={"cursor_seq": row.cursor_seq,
                                    "target_seq": row.rebuild_target})
        if consumer.clear is not None:
            await consumer.clear(conn)
        await store_consumers.reset(conn, consumer.name, await store.events.horizon(conn))
    [found] = await positions(store, [consumer.name])
    return found


async def positions(store: Store, names: Sequence[str]) -> list[Position]:
    """Where each named consumer stands (one never run stands at 0)."""
    async with store.read() as conn:
        head = await store.events.horizon(conn)
        rows = await store_consumers.fetch_all(conn, names)
        now = await store_consumers.now(conn)
        out = []
        for name in names:
            row = rows.get(name)
            cursor = row.cursor_seq if row else 0
            oldest = await store_consumers.first_after(conn, cursor) if cursor < head else None
            out.append(Position(
                name, cursor, head, row.applied if row else 0,
                max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
                row.updated_at if row else None, row.rebuild_target if row else None,
                row.rebuild_started_at if row else None))
    return out
