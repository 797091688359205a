"""Metrics recorded automatically, folded from the event log by a consumer: nothing is
added to the worker's round trips. Each batch of events is read with the ended
attempts' records (one query) and written as rollups in the transaction that moves
the consumer's cursor, so every task counts once, whatever crashes.

    tasks.created        counter    {agent}
    tasks.started        counter    {agent}
    tasks.ended          counter    {agent, outcome}   succeeded, failed, retried, cancelled
    task.duration_ms     histogram  {agent, outcome}   each ended attempt's run time
    task.queue_wait_ms   histogram  {agent}            from due (run_at) to claimed
    lock.wait_ms         histogram  {type}             a waiter's time in a lock's queue
    queue.depth          gauge      {agent, status}    sampled every ``DEPTH_INTERVAL``
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import consumers
from agentos.aio import wait_wakeup
from agentos.events import Event
from agentos.metrics import query, recorder
from agentos.metrics.recorder import Agg, Key
from agentos.store import Store
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


def fold(batch: list[Event], attempts: dict[tuple[str, int], dict[str, Any]],
         due: dict[str, tuple[Any, int]]) -> dict[Key, Agg]:
    """The samples a batch of events makes (pure: the lookups are given)."""
    out: dict[Key, Agg] = {}

    def add(kind: str, name: str, value: float, tags: dict[str, str], at: float) -> None:
        key = (name, kind, tuple(sorted(tags.items())), int(at // 60 * 60))
        out.setdefault(key, Agg()).add(float(value), kind == "histogram")

    for event in batch:
        at = event.created_at.timestamp()
        kind = event.type.partition(".")[2]
        p = event.payload
        if event.type == "lock.acquired":
            if p.get("waited_ms") is not None:
                add("histogram", "lock.wait_ms", float(p["waited_ms"]),
                    {"type": str(p.get("type") or "")}, at)
            continue
        agent = p.get("agent")
        if not isinstance(agent, str):
            continue
        if kind == "created":
            add("counter", "tasks.created", 1, {"agent": agent}, at)
        elif kind == "started":
            add("counter", "tasks.started", 1, {"agent": agent}, at)
            found = due.get(str(p.get("task_id")))
            if found is not None and found[1] == p.get("attempt") and found[0] is not None:
                wait = (event.created_at - found[0]).total_seconds() * 1000
                add("histogram", "task.queue_wait_ms", max(wait, 0.0), {"agent": agent}, at)
        elif kind in ENDED:
            outcome = ENDED[kind]
            add("counter", "tasks.ended", 1, {"agent": agent, "outcome": outcome}, at)
            record = attempts.get((str(p.get("task_id")), int(p.get("attempt") or 0)))
            if record is not None and record["duration_ms"] is not None:
                add("histogram", "task.duration_ms", float(record["duration_ms"]),
                    {"agent": agent, "outcome": outcome}, at)
    return out


class Automatic:
    """The consumer, with the series ids it has seen (its process's)."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str], tuple[int, str]] = {}
        self.consumer = consumers.Consumer(NAME, ("task.*", "lock.acquired"), self.apply,
                                           batch=BATCH)

    async def apply(self, conn: AsyncConnection, batch: list[Event]) -> None:
        ended = [(str(e.payload.get("task_id")), int(e.payload.get("attempt") or 0))
                 for e in batch if e.type.partition(".")[2] in ENDED
                 and e.payload.get("attempt")]
        started = [str(e.payload.get("task_id")) for e in batch if e.type == "task.started"]
        taken = fold(batch, await store_metrics.attempts(conn, ended),
                     await store_metrics.run_at(conn, started))
        if taken:
            await recorder.write_in(conn, taken, self.known)


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
            applied = await consumers.step(store, auto.consumer)
        except Exception:
            log.exception("automatic metrics failed a batch; trying again",
                          extra={"action": "metrics_failed"})
            applied = 0
        if applied == BATCH:
            continue  # behind: the next batch at once
        await wait_wakeup(stop, PACE)
