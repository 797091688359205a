"""Metrics recorded automatically, folded from the event log by a consumer: nothing is
added to the worker's round trips. Each batch of ended attempts' events is read joined
with their attempt records (one query, nothing parsed in Python) and written as rollups
in the transaction that moves the consumer's cursor (the ``consumers`` row named
``metrics``), so every attempt counts once, whatever crashes, however many servers run
it.

    tasks.ended          counter    {agent, outcome}   succeeded, failed, retried, cancelled
    task.duration_ms     histogram  {agent, outcome}   each ended attempt's run time
    task.queue_wait_ms   histogram  {agent}            from due (run_at) to claimed, for
                                                       the task's latest attempt
    lock.wait_ms         histogram  {type}             a waiter's time in a lock's queue
    queue.depth          gauge      {agent, status}    sampled every ``DEPTH_INTERVAL``

Only the events of ended attempts (and granted locks) are read: one event per task,
not its created and started ones too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agentos import consumers
from agentos.aio import wait_wakeup
from agentos.metrics import query, recorder
from agentos.metrics.recorder import Agg, Key, Tags
from agentos.store import Store
from agentos.store import consumers as store_consumers
from agentos.store import metrics as store_metrics

log = logging.getLogger("agentos.metrics")

NAME = "metrics"  # the consumer's cursor
BATCH = 5000  # events per transaction
PACE = 1.0  # seconds between batches while caught up: a busy queue's events are folded
# a second's worth at a time rather than one transaction per append
DEPTH_INTERVAL = 60.0  # seconds between samples of the queue's depth
SWEEP_INTERVAL = 600.0  # seconds between deletions of rollups past their retention
ENDED = {"succeeded": "succeeded", "failed": "failed", "retrying": "retried",
         "cancelled": "cancelled"}
TYPES = (*(f"task.{kind}" for kind in ENDED), "lock.acquired")  # the events it reads


def fold(rows: list[tuple[Any, ...]]) -> dict[Key, Agg]:
    """The samples a batch makes (pure), from ``store.metrics.ended_after``'s rows:
    (seq, type, agent, at, duration ms, queue wait ms, lock type, lock wait ms)."""
    out: dict[Key, Agg] = {}

    def add(kind: str, name: str, value: float, tags: Tags, at: float) -> None:
        recorder.add(out, kind, name, value, tags, at)

    for _, kind, agent, at, duration, wait, lock_type, waited in rows:
        if kind == "lock.acquired":
            if waited is not None:
                add("histogram", "lock.wait_ms", float(waited), (("type", lock_type or ""),),
                    float(at))
            continue
        outcome = ENDED.get(kind.partition(".")[2])
        if outcome is None or not isinstance(agent, str):
            continue
        tags = (("agent", agent), ("outcome", outcome))  # sorted by key, as series are
        add("counter", "tasks.ended", 1.0, tags, float(at))
        if duration is not None:
            add("histogram", "task.duration_ms", float(duration), tags, float(at))
        if wait is not None:
            add("histogram", "task.queue_wait_ms", max(float(wait), 0.0), (("agent", agent),),
                float(at))
    return out


class Automatic:
    """The consumer.

    A batch is read and folded outside any write transaction (events up to the log's
    horizon with their attempt records); only its rollups and the cursor's move are written,
    in one short transaction that first checks the cursor is where the batch began (else
    another process applied it, and this fold is dropped). So SQLite's one writer is
    held for a few upserts, not for reading thousands of events."""

    def __init__(self) -> None:
        self.pace: consumers.Pace | None = None

    async def step(self, store: Store) -> tuple[int, bool]:
        """Fold the next batch, in its turn among the store's runners
        (``consumers.Pace``): (events folded, whether more are waiting). None are folded
        when another process moved the cursor first."""
        if self.pace is None:
            self.pace = consumers.Pace.of(store, BATCH)
        async with self.pace.turn() as turn:
            folded, turn.behind = await self._batch(store, self.pace)
        return folded, turn.behind

    async def _batch(self, store: Store, pace: consumers.Pace) -> tuple[int, bool]:
        async with store.read() as conn:
            row = await store_consumers.fetch(conn, NAME)
            cursor = row.cursor_seq if row is not None else 0
            settled = await store.events.horizon(conn)
            if cursor >= settled:
                return 0, False
            upto = pace.window(cursor, settled)
            rows = await store_metrics.ended_after(conn, cursor, upto, TYPES, pace.size)
        taken = fold(rows)
        moved_to = rows[-1][0] if len(rows) == pace.size else upto
        async with store.write() as conn:
            store.nothing_changed(conn)
            held = await store_consumers.claim(conn, NAME)
            if held is None or held.cursor_seq != cursor:
                return 0, False
            if taken:
                await recorder.write_in(conn, taken)
            await store_consumers.advance(conn, NAME, moved_to, len(rows))
        return len(rows), moved_to < settled

    async def catch_up(self, store: Store) -> int:
        """Fold until the cursor is at the log's horizon; the events folded."""
        total = 0
        while True:
            folded, behind = await self.step(store)
            total += folded
            if not behind:
                return total


async def sample_depths(store: Store) -> None:
    """Record the queue's depth per agent and status as gauges (zero for the statuses
    an agent no longer has tasks in)."""
    async with store.read() as conn:
        depths = await store_metrics.queue_depths(conn)
    rec = recorder.of(store)
    now = time.time()
    agents = {agent for agent, _, _ in depths}
    seen = {(agent, status): n for agent, status, n in depths}
    for agent in agents:
        for status in ("pending", "scheduled", "running"):
            rec.gauge("queue.depth", seen.get((agent, status), 0),
                      {"agent": agent, "status": status}, at=now)


async def run(store: Store, stop: asyncio.Event, retention: query.Retention) -> None:
    """Fold the log into metrics, a batch at a time, paced; sample the queue's depth;
    delete rollups past their retention."""
    auto = Automatic()
    next_depth = next_sweep = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_depth:
                next_depth = time.monotonic() + DEPTH_INTERVAL
                await sample_depths(store)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_INTERVAL
                await query.sweep(store, retention)
            _, behind = await auto.step(store)
        except Exception:
            log.exception("automatic metrics failed a batch; trying again",
                          extra={"action": "metrics_failed"})
            behind = False
        if behind:  # the next batch at once (its turn let others run in between)
            continue
        await wait_wakeup(stop, PACE)
