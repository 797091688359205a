"""The task queue: submit, fail, cancel, retry, reap, hand back, defer, read.

Every state change is one transaction that also appends its ``task.*`` event
(as the transaction's last step; see ``events``). Claiming, heartbeats and
completion, the worker's hot path, are batched in ``claims``. The statements
are the store's (``store.tasks``, with the rules both backends keep); this
module decides what changes: the transitions (``tasks.TRANSITIONS``), retries
(``tasks.after_failure``) and the locks an ending attempt gives back.
Leases and fencing: a running attempt's lease is extended by heartbeats; only
the current attempt number may heartbeat, complete or fail; a lapsed lease
makes the attempt ``lost`` and the task claimable again.
Locks: whatever an attempt holds (its agent's declared resources, ``ctx.lock``)
is renewed by its heartbeats and released in the transaction that ends it,
however it ends (complete, fail, timeout, cancel, lost lease, hand-back).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, capabilities, events, locks, task_logs, tasks
from agentos.aio import wait_wakeup
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.events import Draft, EventIn
from agentos.store import Store
from agentos.store.tasks import CHANNEL, Defaults, events_of_unfinished, task_event
from agentos.tasks import Attempt, Backoff, Outcome, Status, Task, TaskIn

__all__ = ["CHANNEL", "MAX_BATCH", "MAX_PAGE", "cancel", "cancel_in", "defer", "fail", "get",
           "hand_back", "list_tasks", "reap", "retry", "run_reaper", "submit", "submit_in",
           "task_event", "wait"]

log = logging.getLogger("agentos.queue")
MAX_BATCH = 10_000
MAX_PAGE = 1000
DEFAULTS = Defaults(tasks.DEFAULT_MAX_RETRIES, tasks.DEFAULT_TIMEOUT)
MAX_WAIT_S = 30.0  # seconds one request may wait for a task to end
WAIT_POLL_S = 0.5  # seconds between looks of a waiting reader (an end event wakes it sooner)

# retention keeps the chain of every task not finished: it may still read it, or be
# explained by it
events.retain("tasks", lambda: events_of_unfinished([s.value for s in Status if not s.final]))


# ------------------------------------------------------------------ submit


async def submit(store: Store, items: list[TaskIn]) -> list[tuple[Task, bool]]:
    """Submit tasks in one transaction; returns each task and whether it is new
    (an ``idempotency_key`` seen before returns the first task). On the store's driver
    connection; on PostgreSQL one round trip (``tasks_submit``), with the request's
    audit row in the statement where one task is sent or no item has an idempotency
    key, else a transaction of the statement and the row."""
    if not items:
        return []
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} tasks per batch", code="batch_too_large")
    await capabilities.check_needed(store, items)
    # a request's audit row names its tasks, written in their transaction
    made = await store.tasks.submit(items, DEFAULTS, named=audit.names)
    return [(Task.from_row(row), new) for row, new in made]


async def submit_in(store: Store, conn: AsyncConnection, items: list[TaskIn]
                    ) -> list[tuple[Task, bool]]:
    """``submit`` within the caller's write transaction."""
    made = await store.tasks.submit_in(conn, items, DEFAULTS)
    return [(Task.from_row(row), new) for row, new in made]


# ------------------------------------------------------------------ fail


async def fail(store: Store, task_id: str, attempt: int, error: dict[str, Any],
               outcome: Outcome = Outcome.FAILED, retryable: bool = True,
               tokens: Any = None, cost: float | None = None,
               release_locks: bool = True, logs: task_logs.Logs = ()) -> Task:
    """End the attempt as failed (or timed out, or cancelled); retry or dead-letter.

    ``cancelled`` only answers a cancel request; once one is made, any failure
    ends the task cancelled. ``tokens``/``cost``: what the attempt used before it
    failed (an LLM may have answered). ``release_locks=False``: the caller knows the
    attempt took no lock. ``logs``: its lines not written yet, written with its end.
    """
    async with store.write() as conn:
        row = await store.tasks.current(conn, task_id, attempt, "fail")
        await task_logs.write_in(conn, task_id, attempt, logs)
        if outcome is Outcome.CANCELLED and not row.cancel_requested:
            raise Conflict(f"cannot end task {task_id} as cancelled: nobody asked to cancel it",
                           code="cancel_not_requested",
                           details={"task_id": task_id, "attempt": attempt})
        now = await store.tasks.now(conn)
        if row.cancel_requested:
            outcome = Outcome.CANCELLED
        await store.tasks.end_attempt(conn, row, now, outcome.value, error=error,
                                      tokens=tokens, cost=cost)
        drafts: list[EventIn | Draft] = []
        if release_locks:
            drafts += await _release_locks(store, conn, row, now)
        drafts += await _after_failure(store, conn, row, now, error, outcome, retryable)
        await events.append_in(store, conn, drafts)
        return Task.from_row(await store.tasks.get(conn, task_id))


async def _after_failure(store: Store, conn: AsyncConnection, row: Any, now: datetime,
                         error: dict[str, Any], outcome: Outcome, retryable: bool
                         ) -> list[EventIn | Draft]:
    if outcome is Outcome.CANCELLED:
        await store.tasks.set(conn, row.id, status=Status.CANCELLED.value, error=error,
                              lease_expires_at=None, finished_at=now, updated_at=now)
        return [task_event(row, "cancelled", attempt=row.attempt, was=row.status)]
    limits = (await store.tasks.limits_of(conn, [row])).get((row.agent, row.agent_version), {})
    decision = tasks.after_failure(row.attempt - row.retry_base, row.max_retries,
                                   Backoff.from_limits(limits), retryable)
    if decision.status is Status.SCHEDULED:
        assert decision.delay is not None
        await store.tasks.set(conn, row.id, status=Status.SCHEDULED.value, error=error,
                              lease_expires_at=None, run_at=now + decision.delay,
                              worker_id=None, updated_at=now)
        await store.notify(conn, CHANNEL)
        return [task_event(row, "retrying", attempt=row.attempt, outcome=outcome.value,
                           retry_in_s=round(decision.delay.total_seconds(), 3),
                           error=error.get("message"))]
    await store.tasks.set(conn, row.id, status=Status.FAILED.value, error=error,
                          lease_expires_at=None, finished_at=now, updated_at=now)
    return [task_event(row, "failed", attempt=row.attempt, outcome=outcome.value,
                       error=error.get("message"))]


async def reap(store: Store, limit: int = 500) -> int:
    """Attempts whose lease lapsed are ``lost``; their tasks retry or fail."""
    async with store.write() as conn:
        now = await store.tasks.now(conn)
        lapsed = await store.tasks.lapsed(conn, now, limit)
        drafts: list[EventIn | Draft] = []
        for row in lapsed:
            error = {"type": "lost", "message": f"lease lapsed on worker {row.worker_id}"}
            await store.tasks.end_attempt(conn, row, now, Outcome.LOST.value, error=error)
            drafts += await _release_locks(store, conn, row, now)
            outcome = Outcome.CANCELLED if row.cancel_requested else Outcome.LOST
            drafts += await _after_failure(store, conn, row, now, error, outcome, True)
        if drafts:
            await events.append_in(store, conn, drafts)
    return len(lapsed)


# --------------------------------------------------------- operator actions


async def _locked(store: Store, conn: AsyncConnection, task_id: str) -> Any:
    row = await store.tasks.get(conn, task_id, lock=True)
    if row is None:
        raise NotFound(f"no task {task_id}", code="task_not_found")
    return row


async def cancel(store: Store, task_id: str) -> Task:
    """A waiting task ends at once; a running one is asked to stop (its worker
    sees it on the next heartbeat and cancels the handler)."""
    async with store.write() as conn:
        row = await _locked(store, conn, task_id)
        tasks.check(Status(row.status), "cancel", task_id)
        drafts = await _cancel_row(store, conn, row, await store.tasks.now(conn))
        if drafts:
            await events.append_in(store, conn, drafts)
        return Task.from_row(await store.tasks.get(conn, task_id))


async def cancel_in(store: Store, conn: AsyncConnection, task_ids: list[str]
                    ) -> list[EventIn | Draft]:
    """``cancel`` each of ``task_ids`` that has not ended, within the caller's write
    transaction (a workflow run's cancel); returns the events for the caller to append
    as its last step."""
    drafts: list[EventIn | Draft] = []
    now = await store.tasks.now(conn)
    for task_id in sorted(task_ids):
        row = await store.tasks.get(conn, task_id, lock=True)
        if row is not None and not Status(row.status).final:
            drafts += await _cancel_row(store, conn, row, now)
    return drafts


async def cancel_agent_in(store: Store, conn: AsyncConnection, agent: str
                          ) -> tuple[int, list[EventIn | Draft]]:
    """``cancel`` every unfinished task of ``agent`` within the caller's write
    transaction, in a few statements however many there are (an agent's removal): the
    waiting ones end at once, giving back the locks they hold or wait for; the running
    ones are asked to stop. Returns how many, and the events for the caller to append."""
    now = await store.tasks.now(conn)
    ended, asked = await store.tasks.cancel_agents(conn, agent, now)
    drafts: list[EventIn | Draft] = list(await locks.release_owner_in(
        store, conn, [locks.task_owner(row.id) for row, _ in ended], now))
    drafts += [task_event(row, "cancelled", attempt=row.attempt, was=was) for row, was in ended]
    return len(ended) + asked, drafts


async def _cancel_row(store: Store, conn: AsyncConnection, row: Any, now: datetime
                      ) -> list[EventIn | Draft]:
    if row.status == Status.RUNNING.value:
        await store.tasks.set(conn, row.id, cancel_requested=True, updated_at=now)
        return []
    await store.tasks.set(conn, row.id, status=Status.CANCELLED.value, finished_at=now,
                          updated_at=now)
    # a task handed back to wait for its resources may hold or await some
    drafts: list[EventIn | Draft] = list(await _release_locks(store, conn, row, now))
    return [*drafts, task_event(row, "cancelled", attempt=row.attempt, was=row.status)]


async def retry(store: Store, task_id: str) -> Task:
    """Run a failed or cancelled task again, with a fresh set of retries."""
    async with store.write() as conn:
        row = await _locked(store, conn, task_id)
        tasks.check(Status(row.status), "retry", task_id)
        now = await store.tasks.now(conn)
        await store.tasks.set(conn, task_id, status=Status.PENDING.value,
                              retry_base=row.attempt, cancel_requested=False, error=None,
                              output=None, finished_at=None, run_at=now, updated_at=now)
        await store.notify(conn, CHANNEL)
        await events.append_in(store, conn, [task_event(row, "created", retry_of=row.attempt)])
        return Task.from_row(await store.tasks.get(conn, task_id))


# ------------------------------------------------------------------- reads


async def get(store: Store, task_id: str) -> Task:
    async with store.read() as conn:
        row = await store.tasks.get(conn, task_id)
        if row is None:
            raise NotFound(f"no task {task_id}", code="task_not_found")
        attempts = [Attempt.from_row(r) for r in await store.tasks.attempts(conn, task_id)]
    if row.status == Status.RUNNING.value:  # the attempt under way, from the task's row
        attempts.append(Attempt(row.attempt, row.worker_id, Outcome.RUNNING.value,
                                row.started_at))
    return Task.from_row(row, tuple(attempts))


async def wait(store: Store, task_id: str, wait_s: float) -> Task:
    """The task once it has ended, or as it is after ``wait_s`` seconds (a long poll).
    A task ends by appending its ``task.*`` event, which wakes this process at once
    (PostgreSQL: other processes' too, through NOTIFY); otherwise it looks again every
    ``WAIT_POLL_S``. Reads only: one ``get`` per look."""
    deadline = asyncio.get_running_loop().time() + min(wait_s, MAX_WAIT_S)
    wakeup = store.wakeup(events.CHANNEL)
    try:
        while True:
            wakeup.clear()
            task = await get(store, task_id)
            left = deadline - asyncio.get_running_loop().time()
            if task.status.final or left <= 0:
                return task
            await wait_wakeup(wakeup, min(left, WAIT_POLL_S))
    finally:
        store.forget_wakeup(events.CHANNEL, wakeup)


async def list_tasks(store: Store, agent: str | None = None, status: Status | None = None,
                     correlation_id: str | None = None, after_seq: int = 0, limit: int = 100,
                     *, newest_first: bool = False, before_seq: int | None = None,
                     type: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> tuple[list[Task], int | None]:
    """A page of tasks in submission order and the ``after_seq`` of the next; or,
    ``newest_first``, from the newest down and the ``before_seq`` of the next;
    ``since``/``until``: only those created in [since, until)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    if before_seq is not None and not newest_first:
        raise InvalidInput("before_seq pages the newest first (order=desc)", code="bad_cursor")
    async with store.read() as conn:
        rows = await store.tasks.page(conn, after_seq, limit + 1, agent,
                                      status.value if status else None, correlation_id,
                                      newest_first=newest_first, before_seq=before_seq,
                                      type=type, since=since, until=until)
    page = [Task.from_row(r) for r in rows[:limit]]
    return page, (page[-1].seq if len(rows) > limit else None)


REAP_INTERVAL = 1.0  # seconds between sweeps for lapsed leases
STATISTICS_KEPT = ("tasks", "task_attempts")  # tables whose planner statistics the reaper keeps


async def run_reaper(store: Store, stop: asyncio.Event | None = None) -> None:
    """Reclaim lapsed leases until ``stop`` is set (every server and worker runs one).

    It also keeps the planner's statistics of the queue's tables current: a burst
    of submits between two autovacuum visits (a minute apart) would otherwise leave
    PostgreSQL believing few tasks wait, and every claim would sort all of them.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await reap(store)
            await store.refresh_statistics(STATISTICS_KEPT)
        except Exception:
            log.exception("reaping failed", extra={"action": "reap_failed"})
        await wait_wakeup(stop, REAP_INTERVAL)


HANDED_BACK = {"type": "handed_back", "message": "worker shut down"}


async def hand_back(store: Store, task_id: str, attempt: int, logs: task_logs.Logs = (),
                    *, outcome: Outcome = Outcome.LOST, error: dict[str, Any] | None = None,
                    delay_s: float = 0.0, tokens: Any = None, cost: float | None = None
                    ) -> Task:
    """Return a running task unfinished: the attempt does not count against its retries
    (its ``logs`` are kept, and the ``tokens``/``cost`` it used). By default a worker
    shutting down hands it back, claimable at once; a handler refused by a spent budget
    hands it back ``deferred`` with the refusal as ``error``, to run again after
    ``delay_s`` (scheduled) or as soon as a claim may take it (pending: its agent's
    hold keeps it meanwhile)."""
    async with store.write() as conn:
        row = await store.tasks.current(conn, task_id, attempt, "hand back")
        await task_logs.write_in(conn, task_id, attempt, logs)
        now = await store.tasks.now(conn)
        error = error or HANDED_BACK
        await store.tasks.end_attempt(conn, row, now, outcome.value, error=error,
                                      tokens=tokens, cost=cost)
        drafts = await _release_locks(store, conn, row, now)
        later = {"status": Status.SCHEDULED.value, "run_at": now + timedelta(seconds=delay_s)
                 } if delay_s > 0 else {"status": Status.PENDING.value}
        await store.tasks.set(conn, task_id, retry_base=row.retry_base + 1, worker_id=None,
                              lease_expires_at=None, updated_at=now, **later)
        await store.notify(conn, CHANNEL)
        said = {} if error is HANDED_BACK else {"error": error.get("message")}
        await events.append_in(store, conn, [*drafts, task_event(
            row, "retrying", attempt=attempt,
            outcome="handed_back" if outcome is Outcome.LOST else outcome.value,
            retry_in_s=round(delay_s, 3), **said)])
        return Task.from_row(await store.tasks.get(conn, task_id))


async def defer(store: Store, task_id: str, attempt: int, delay_s: float,
                waiting_for: str | None) -> Task:
    """Hand a task back to wait for a resource it could not lock, keeping its place in
    that lock's queue: it runs again after ``delay_s``, or as soon as the lock is
    granted to it. The attempt does not count against its retries."""
    async with store.write() as conn:
        row = await store.tasks.current(conn, task_id, attempt, "defer")
        now = await store.tasks.now(conn)
        await store.tasks.end_attempt(conn, row, now, Outcome.DEFERRED.value, error={
            "type": "waiting_for_locks", "message": f"waiting for {waiting_for}"})
        drafts = await _release_locks(store, conn, row, now, keep_waiting=True)
        await store.tasks.set(conn, task_id, status=Status.SCHEDULED.value,
                              retry_base=row.retry_base + 1, worker_id=None,
                              lease_expires_at=None, run_at=now + timedelta(seconds=delay_s),
                              updated_at=now)
        await events.append_in(store, conn, [*drafts, task_event(
            row, "retrying", attempt=attempt, outcome=Outcome.DEFERRED.value,
            retry_in_s=delay_s, waiting_for=waiting_for)])
        return Task.from_row(await store.tasks.get(conn, task_id))


async def _release_locks(store: Store, conn: AsyncConnection, row: Any, now: datetime,
                         keep_waiting: bool = False) -> list[EventIn]:
    """The attempt ends: give back the locks it holds (and its places in lock queues)."""
    return await locks.release_owner_in(store, conn, locks.task_owner(row.id), now,
                                        keep_waiting)
