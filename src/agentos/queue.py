"""The task queue: submit, fail, cancel, retry, reap, hand back, defer, read.

Every state change is one transaction that also appends its ``task.*`` event
(as the transaction's last step; see ``events``). Claiming, heartbeats and
completion, the worker's hot path, are batched in ``claims``.
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import events, ids, locks, tasks
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.events import Draft, EventIn
from agentos.lifecycle import Status as VersionStatus
from agentos.store import Store, wait_wakeup
from agentos.store.columns import utcnow
from agentos.store.tables import agent_versions, event_log_head, task_attempts
from agentos.store.tables import tasks as table
from agentos.tasks import Backoff, Outcome, Status, TaskIn

log = logging.getLogger("agentos.queue")
CHANNEL = "agentos_tasks"  # notified when tasks become claimable
MAX_BATCH = 10_000
MAX_PAGE = 1000
t = table.c
a = task_attempts.c


@dataclass(frozen=True)
class Attempt:
    """An execution record as ``task_attempts`` holds it (the running one is built from
    its task's row)."""

    number: int
    worker_id: str | None
    outcome: str
    started_at: datetime | None
    ended_at: datetime | None = None
    duration_ms: float | None = None
    error: dict[str, Any] | None = None
    tokens: Any = None
    cost: float | None = None


@dataclass(frozen=True)
class Task:
    row: Any
    attempts: tuple[Any, ...] = ()

    @property
    def id(self) -> str:
        return str(self.row.id)

    @property
    def status(self) -> Status:
        return Status(self.row.status)

    def to_dict(self) -> dict[str, Any]:
        r = self.row

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        out = {
            "id": r.id, "seq": r.seq, "agent": r.agent, "version": r.agent_version,
            "input": r.input, "priority": r.priority, "status": r.status,
            "attempt": r.attempt, "max_retries": r.max_retries, "timeout_s": r.timeout_s,
            "run_at": iso(r.run_at), "lease_expires_at": iso(r.lease_expires_at),
            "worker_id": r.worker_id, "started_at": iso(r.started_at),
            "cancel_requested": r.cancel_requested,
            "idempotency_key": r.idempotency_key, "correlation_id": r.correlation_id,
            "causation_id": r.causation_id, "output": r.output, "error": r.error,
            "created_at": iso(r.created_at), "updated_at": iso(r.updated_at),
            "finished_at": iso(r.finished_at),
        }
        if self.attempts:
            out["attempts"] = [{
                "number": x.number, "worker_id": x.worker_id, "outcome": x.outcome,
                "started_at": iso(x.started_at), "ended_at": iso(x.ended_at),
                "duration_ms": x.duration_ms, "error": x.error, "tokens": x.tokens,
                "cost": x.cost} for x in self.attempts]
        return out


def task_event(task: Any, kind: str, **payload: Any) -> Draft:
    """The ``task.<kind>`` event of a status change."""
    return Draft(f"task.{kind}", "queue", {"task_id": task.id, "agent": task.agent, **payload},
                 # under the task in the correlation tree (the task sits under its cause)
                 task.correlation_id, task.id)


# ------------------------------------------------------------------ submit


async def _resolve(conn: AsyncConnection, item: TaskIn, cache: dict[tuple[str, str | None], Any]
                   ) -> Any:
    """The published version a task runs (the latest unless one is named)."""
    key = (item.agent, item.version)
    if key not in cache:
        av = agent_versions.c
        stmt = select(av.name, av.version, av.status, av.definition).where(av.name == item.agent)
        if item.version:
            stmt = stmt.where(av.version == item.version)
        else:
            stmt = stmt.where(av.status == VersionStatus.PUBLISHED.value)
        row = (await conn.execute(stmt.order_by(av.sort_key.desc()).limit(1))).first()
        if row is None or row.status != VersionStatus.PUBLISHED.value:
            what = f"{item.agent} {item.version}" if item.version else item.agent
            raise InvalidInput(f"no published version of agent {what}", code="agent_not_runnable",
                               details={"agent": item.agent, "version": item.version})
        cache[key] = row
    return cache[key]


async def submit(store: Store, items: list[TaskIn]) -> list[tuple[Task, bool]]:
    """Submit tasks in one transaction; returns each task and whether it is new
    (an ``idempotency_key`` seen before returns the first task)."""
    if not items:
        return []
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} tasks per batch", code="batch_too_large")
    async with store.write() as conn:
        return await submit_in(store, conn, items)


async def submit_in(store: Store, conn: AsyncConnection, items: list[TaskIn],
                    extra_events: list[EventIn] | None = None) -> list[tuple[Task, bool]]:
    now: datetime = (await conn.execute(select(utcnow()))).scalar_one()
    keys = [i.idempotency_key for i in items if i.idempotency_key]
    earlier: dict[str, Any] = {}
    if keys:
        await conn.execute(select(event_log_head.c.last_seq).with_for_update())
        rows = (await conn.execute(select(table).where(t.idempotency_key.in_(keys)))).all()
        earlier = {r.idempotency_key: r for r in rows}
    cache: dict[tuple[str, str | None], Any] = {}
    fresh: list[dict[str, Any]] = []
    # per item: an earlier row, or an index into ``fresh``; and whether it is new
    plan: list[tuple[Any, bool]] = []
    seen_keys: dict[str, int] = {}
    for item in items:
        if item.idempotency_key in earlier:
            plan.append((earlier[item.idempotency_key], False))
            continue
        if item.idempotency_key and item.idempotency_key in seen_keys:
            plan.append((seen_keys[item.idempotency_key], False))
            continue
        version = await _resolve(conn, item, cache)
        limits = version.definition.get("limits", {})
        task_id = ids.uuid7()
        run_at = item.run_at or now
        fresh.append({
            "id": task_id, "agent": version.name, "agent_version": version.version,
            "input": item.input, "priority": item.priority,
            "status": (Status.SCHEDULED if run_at > now else Status.PENDING).value,
            "attempt": 0, "retry_base": 0,
            "max_retries": item.max_retries if item.max_retries is not None
            else limits.get("max_retries", tasks.DEFAULT_MAX_RETRIES),
            "timeout_s": item.timeout_s or limits.get("timeout_s", tasks.DEFAULT_TIMEOUT),
            "run_at": run_at, "cancel_requested": False,
            "idempotency_key": item.idempotency_key,
            "correlation_id": item.correlation_id or task_id,
            "causation_id": item.causation_id, "created_at": now, "updated_at": now,
        })
        if item.idempotency_key:
            seen_keys[item.idempotency_key] = len(fresh) - 1
        plan.append((len(fresh) - 1, True))
    made: list[Any] = []
    if fresh:
        await conn.execute(insert(table), fresh)
        made = list((await conn.execute(select(table).where(
            t.id.in_([f["id"] for f in fresh])).order_by(t.seq))).all())
        await store.notify(conn, CHANNEL)
    by_id = {r.id: r for r in made}
    drafts: list[EventIn | Draft] = [
        *(extra_events or []),
        *(task_event(by_id[f["id"]], "created", priority=f["priority"]) for f in fresh)]
    if drafts:
        await events.append_in(store, conn, drafts)
    return [(Task(by_id[fresh[x]["id"]] if isinstance(x, int) else x), new) for x, new in plan]


# ------------------------------------------------------------------ fail


async def limits_of(conn: AsyncConnection, rows: list[Any]) -> dict[tuple[str, str], Any]:
    """Each (agent, version)'s limits; versions are immutable once published."""
    av = agent_versions.c
    pairs = {(r.agent, r.agent_version) for r in rows}
    found = (await conn.execute(select(av.name, av.version, av.definition).where(
        av.name.in_({p[0] for p in pairs})))).all()
    return {(f.name, f.version): f.definition.get("limits", {}) for f in found
            if (f.name, f.version) in pairs}


async def _current(conn: AsyncConnection, task_id: str, attempt: int, action: str) -> Any:
    """The task row, locked, if ``attempt`` is its current running attempt; else 409."""
    row = (await conn.execute(select(table).where(t.id == task_id).with_for_update())).first()
    if row is None:
        raise NotFound(f"no task {task_id}", code="task_not_found")
    if row.attempt != attempt or row.status != Status.RUNNING.value:
        raise Conflict(
            f"cannot {action} task {task_id} attempt {attempt}: the task is {row.status} "
            f"at attempt {row.attempt}", code="stale_attempt",
            details={"task_id": task_id, "attempt": attempt, "current_attempt": row.attempt,
                     "status": row.status})
    return row


async def _end_attempt(conn: AsyncConnection, row: Any, now: datetime, outcome: Outcome,
                       error: dict[str, Any] | None = None, tokens: Any = None,
                       cost: float | None = None) -> None:
    """Write the execution record of ``row``'s running attempt, which ends now."""
    started = row.started_at or now
    await conn.execute(insert(task_attempts).values(
        task_id=row.id, number=row.attempt, worker_id=row.worker_id or "", outcome=outcome.value,
        started_at=started, ended_at=now, error=error, tokens=tokens, cost=cost,
        duration_ms=(now - started).total_seconds() * 1000))


async def fail(store: Store, task_id: str, attempt: int, error: dict[str, Any],
               outcome: Outcome = Outcome.FAILED, retryable: bool = True,
               tokens: Any = None, cost: float | None = None,
               release_locks: bool = True) -> Task:
    """End the attempt as failed (or timed out, or cancelled); retry or dead-letter.

    ``cancelled`` only answers a cancel request; once one is made, any failure
    ends the task cancelled. ``tokens``/``cost``: what the attempt used before it
    failed (an LLM may have answered). ``release_locks=False``: the caller knows the
    attempt took no lock.
    """
    async with store.write() as conn:
        row = await _current(conn, task_id, attempt, "fail")
        if outcome is Outcome.CANCELLED and not row.cancel_requested:
            raise Conflict(f"cannot end task {task_id} as cancelled: nobody asked to cancel it",
                           code="cancel_not_requested",
                           details={"task_id": task_id, "attempt": attempt})
        now = (await conn.execute(select(utcnow()))).scalar_one()
        if row.cancel_requested:
            outcome = Outcome.CANCELLED
        await _end_attempt(conn, row, now, outcome, error=error, tokens=tokens, cost=cost)
        drafts: list[EventIn | Draft] = []
        if release_locks:
            drafts += await _release_locks(store, conn, row, now)
        drafts += await _after_failure(store, conn, row, now, error, outcome, retryable)
        await events.append_in(store, conn, drafts)
        return Task((await conn.execute(select(table).where(t.id == task_id))).one())


async def _after_failure(store: Store, conn: AsyncConnection, row: Any, now: datetime,
                         error: dict[str, Any], outcome: Outcome, retryable: bool
                         ) -> list[EventIn | Draft]:
    if outcome is Outcome.CANCELLED:
        await conn.execute(update(table).where(t.id == row.id).values(
            status=Status.CANCELLED.value, error=error, lease_expires_at=None,
            finished_at=now, updated_at=now))
        return [task_event(row, "cancelled", attempt=row.attempt)]
    limits = (await limits_of(conn, [row])).get((row.agent, row.agent_version), {})
    decision = tasks.after_failure(row.attempt - row.retry_base, row.max_retries,
                                   Backoff.from_limits(limits), retryable)
    if decision.status is Status.SCHEDULED:
        assert decision.delay is not None
        await conn.execute(update(table).where(t.id == row.id).values(
            status=Status.SCHEDULED.value, error=error, lease_expires_at=None,
            run_at=now + decision.delay, worker_id=None, updated_at=now))
        await store.notify(conn, CHANNEL)
        return [task_event(row, "retrying", attempt=row.attempt, outcome=outcome.value,
                       retry_in_s=round(decision.delay.total_seconds(), 3),
                       error=error.get("message"))]
    await conn.execute(update(table).where(t.id == row.id).values(
        status=Status.FAILED.value, error=error, lease_expires_at=None, finished_at=now,
        updated_at=now))
    return [task_event(row, "failed", attempt=row.attempt, outcome=outcome.value,
                   error=error.get("message"))]


async def reap(store: Store, limit: int = 500) -> int:
    """Attempts whose lease lapsed are ``lost``; their tasks retry or fail."""
    async with store.write() as conn:
        now: datetime = (await conn.execute(select(utcnow()))).scalar_one()
        lapsed = (await conn.execute(select(table).where(
            t.status == Status.RUNNING.value, t.lease_expires_at < now).limit(limit)
            .with_for_update(skip_locked=True))).all()
        drafts: list[EventIn | Draft] = []
        for row in lapsed:
            error = {"type": "lost", "message": f"lease lapsed on worker {row.worker_id}"}
            await _end_attempt(conn, row, now, Outcome.LOST, error=error)
            drafts += await _release_locks(store, conn, row, now)
            outcome = Outcome.CANCELLED if row.cancel_requested else Outcome.LOST
            drafts += await _after_failure(store, conn, row, now, error, outcome, True)
        if drafts:
            await events.append_in(store, conn, drafts)
    return len(lapsed)


# --------------------------------------------------------- operator actions


async def cancel(store: Store, task_id: str) -> Task:
    """A waiting task ends at once; a running one is asked to stop (its worker
    sees it on the next heartbeat and cancels the handler)."""
    async with store.write() as conn:
        row = (await conn.execute(select(table).where(t.id == task_id).with_for_update())
               ).first()
        if row is None:
            raise NotFound(f"no task {task_id}", code="task_not_found")
        tasks.check(Status(row.status), "cancel", task_id)
        now = (await conn.execute(select(utcnow()))).scalar_one()
        if row.status == Status.RUNNING.value:
            await conn.execute(update(table).where(t.id == task_id).values(
                cancel_requested=True, updated_at=now))
        else:
            await conn.execute(update(table).where(t.id == task_id).values(
                status=Status.CANCELLED.value, finished_at=now, updated_at=now))
            # a task handed back to wait for its resources may hold or await some
            drafts = await _release_locks(store, conn, row, now)
            await events.append_in(store, conn, [*drafts,
                                                 task_event(row, "cancelled", attempt=row.attempt)])
        return Task((await conn.execute(select(table).where(t.id == task_id))).one())


async def retry(store: Store, task_id: str) -> Task:
    """Run a failed or cancelled task again, with a fresh set of retries."""
    async with store.write() as conn:
        row = (await conn.execute(select(table).where(t.id == task_id).with_for_update())
               ).first()
        if row is None:
            raise NotFound(f"no task {task_id}", code="task_not_found")
        tasks.check(Status(row.status), "retry", task_id)
        now = (await conn.execute(select(utcnow()))).scalar_one()
        await conn.execute(update(table).where(t.id == task_id).values(
            status=Status.PENDING.value, retry_base=row.attempt, cancel_requested=False,
            error=None, output=None, finished_at=None, run_at=now, updated_at=now))
        await store.notify(conn, CHANNEL)
        await events.append_in(store, conn, [task_event(row, "created", retry_of=row.attempt)])
        return Task((await conn.execute(select(table).where(t.id == task_id))).one())


# ------------------------------------------------------------------- reads


async def get(store: Store, task_id: str) -> Task:
    async with store.read() as conn:
        row = (await conn.execute(select(table).where(t.id == task_id))).first()
        if row is None:
            raise NotFound(f"no task {task_id}", code="task_not_found")
        attempts: list[Any] = list((await conn.execute(
            select(task_attempts).where(a.task_id == task_id).order_by(a.number))).all())
    if row.status == Status.RUNNING.value:  # the attempt under way, from the task's row
        attempts.append(Attempt(row.attempt, row.worker_id, Outcome.RUNNING.value,
                                row.started_at))
    return Task(row, tuple(attempts))


async def list_tasks(store: Store, agent: str | None = None, status: Status | None = None,
                     correlation_id: str | None = None, after_seq: int = 0, limit: int = 100
                     ) -> tuple[list[Task], int | None]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", code="bad_limit")
    stmt = select(table).where(t.seq > after_seq)
    if agent:
        stmt = stmt.where(t.agent == agent)
    if status:
        stmt = stmt.where(t.status == status.value)
    if correlation_id:
        stmt = stmt.where(t.correlation_id == correlation_id)
    async with store.read() as conn:
        rows = (await conn.execute(stmt.order_by(t.seq).limit(limit + 1))).all()
    page = [Task(r) for r in rows[:limit]]
    return page, (page[-1].row.seq if len(rows) > limit else None)


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


async def hand_back(store: Store, task_id: str, attempt: int) -> Task:
    """Return a running task unfinished (worker shutdown): claimable at once, and
    the attempt does not count against its retries."""
    async with store.write() as conn:
        row = await _current(conn, task_id, attempt, "hand back")
        now = (await conn.execute(select(utcnow()))).scalar_one()
        await _end_attempt(conn, row, now, Outcome.LOST,
                           error={"type": "handed_back", "message": "worker shut down"})
        drafts = await _release_locks(store, conn, row, now)
        await conn.execute(update(table).where(t.id == task_id).values(
            status=Status.PENDING.value, retry_base=row.retry_base + 1, worker_id=None,
            lease_expires_at=None, updated_at=now))
        await store.notify(conn, CHANNEL)
        await events.append_in(store, conn, [*drafts, task_event(
            row, "retrying", attempt=attempt, outcome="handed_back", retry_in_s=0)])
        return Task((await conn.execute(select(table).where(t.id == task_id))).one())


async def defer(store: Store, task_id: str, attempt: int, delay_s: float,
                waiting_for: str | None) -> Task:
    """Hand a task back to wait for a resource it could not lock, keeping its place in
    that lock's queue: it runs again after ``delay_s``, or as soon as the lock is
    granted to it. The attempt does not count against its retries."""
    async with store.write() as conn:
        row = await _current(conn, task_id, attempt, "defer")
        now = (await conn.execute(select(utcnow()))).scalar_one()
        await _end_attempt(conn, row, now, Outcome.DEFERRED, error={
            "type": "waiting_for_locks", "message": f"waiting for {waiting_for}"})
        drafts = await _release_locks(store, conn, row, now, keep_waiting=True)
        await conn.execute(update(table).where(t.id == task_id).values(
            status=Status.SCHEDULED.value, retry_base=row.retry_base + 1, worker_id=None,
            lease_expires_at=None, run_at=now + timedelta(seconds=delay_s), updated_at=now))
        await events.append_in(store, conn, [*drafts, task_event(
            row, "retrying", attempt=attempt, outcome=Outcome.DEFERRED.value,
            retry_in_s=delay_s, waiting_for=waiting_for)])
        return Task((await conn.execute(select(table).where(t.id == task_id))).one())


async def _release_locks(store: Store, conn: AsyncConnection, row: Any, now: datetime,
                         keep_waiting: bool = False) -> list[EventIn]:
    """The attempt ends: give back the locks it holds (and its places in lock queues)."""
    return await locks.release_owner_in(store, conn, locks.task_owner(row.id), now,
                                        keep_waiting)
