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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import events, ids, locks, tasks
from agentos.aio import wait_wakeup
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.events import Draft, EventIn
from agentos.lifecycle import Status as VersionStatus
from agentos.store import Store, sql
from agentos.store.columns import utcnow
from agentos.store.sqlite import SqliteConnection, reader
from agentos.store.tables import agent_versions, task_attempts
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


def _not_runnable(item: TaskIn) -> InvalidInput:
    what = f"{item.agent} {item.version}" if item.version else item.agent
    return InvalidInput(f"no published version of agent {what}", code="agent_not_runnable",
                        details={"agent": item.agent, "version": item.version})


async def submit(store: Store, items: list[TaskIn]) -> list[tuple[Task, bool]]:
    """Submit tasks in one transaction; returns each task and whether it is new
    (an ``idempotency_key`` seen before returns the first task). One round trip on
    PostgreSQL (``tasks_submit``) where no before-commit hook must see the write."""
    if not items:
        return []
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} tasks per batch", code="batch_too_large")
    async with store.driver() as driver:
        if driver is not None:
            if store.dialect == "postgresql":
                query, params = _submit_pg(items)
                rows = await (await driver.execute(query, params, prepare=True)).fetchall()
                if len(items) >= STATISTICS_BURST and driver.info.server_version >= 150000:
                    # a connection that then idles would report its changes only after
                    # 10 s, and the reaper analyzes the queue once they are reported
                    await driver.execute("SELECT pg_stat_force_next_flush()")
            else:
                made = _submit_sqlite(driver, items)
    if driver is None:
        async with store.write() as conn:
            return await submit_in(store, conn, items)
    if store.dialect == "postgresql":
        made = await _submitted(store, items, rows)
    if any(new for _, new in made):  # committed: this process's listeners too
        store.wake(CHANNEL)
        store.wake(events.CHANNEL)
    return made


async def submit_in(store: Store, conn: AsyncConnection, items: list[TaskIn]
                    ) -> list[tuple[Task, bool]]:
    """``submit`` within the caller's write transaction."""
    if store.dialect == "postgresql":
        query, params = _submit_pg(items)
        rows = (await conn.exec_driver_sql(query, params)).all()
        made = await _submitted(store, items, rows)
        if any(new for _, new in made):
            await store.notify(conn, CHANNEL, sent=True)
            await store.notify(conn, events.CHANNEL, sent=True)
        return made
    made = _submit_sqlite(cast(SqliteConnection, conn).driver(), items)
    if any(new for _, new in made):
        await store.notify(conn, CHANNEL)
        await store.notify(conn, events.CHANNEL)
    return made


def _distinct(items: list[TaskIn]) -> tuple[list[TaskIn], list[int]]:
    """The items to write (an idempotency key repeated in the batch counts once), and
    for each item its index among them; 409 when a repeat asks for another task."""
    sent: list[TaskIn] = []
    where: list[int] = []
    first: dict[str, int] = {}
    for n, item in enumerate(items):
        key = item.idempotency_key
        if key is not None and key in first:
            if differ := tasks.differences(item, sent[first[key]]):
                raise tasks.idempotency_conflict(key, differ, index=n)
            where.append(first[key])
            continue
        if key is not None:
            first[key] = len(sent)
        where.append(len(sent))
        sent.append(item)
    return sent, where


def _submit_pg(items: list[TaskIn]) -> tuple[str, dict[str, Any]]:
    sent, _ = _distinct(items)
    new_ids = ids.uuid7_many(2 * len(sent))
    batch = [{"ord": n + 1, "id": new_ids[2 * n], "event_id": new_ids[2 * n + 1], "agent": i.agent,
              "version": i.version, "input": i.input, "priority": i.priority,
              "max_retries": i.max_retries, "timeout_s": i.timeout_s,
              "run_at": i.run_at.isoformat() if i.run_at else None,
              "idempotency_key": i.idempotency_key, "correlation_id": i.correlation_id,
              "causation_id": i.causation_id} for n, i in enumerate(sent)]
    return _SUBMIT_PG, {"items": events.dump_json(batch), "event_rank": int(events.Priority.NORMAL),
                        "max_retries": tasks.DEFAULT_MAX_RETRIES,
                        "timeout_s": tasks.DEFAULT_TIMEOUT}


async def _submitted(store: Store, items: list[TaskIn], rows: Sequence[Any]
                     ) -> list[tuple[Task, bool]]:
    """Each item's task from ``tasks_submit``'s rows (by item order, 1-based)."""
    sent, where = _distinct(items)
    by_ord = {r.ord: r for r in rows}
    taken: dict[str, Any] = {}
    for n, item in enumerate(sent):
        row = by_ord.get(n + 1)
        if row is not None and row.differs:  # nothing was written
            raise tasks.idempotency_conflict(str(item.idempotency_key), list(row.differs),
                                             row.id, _index(items, item))
        if row is not None and row.created is None:
            raise _not_runnable(item)
    if missing := [i.idempotency_key for n, i in enumerate(sent) if n + 1 not in by_ord]:
        # a concurrent submit took these keys after this statement began: read its tasks
        async with store.read() as conn:
            taken = {r.idempotency_key: r for r in (await conn.execute(
                select(table).where(t.idempotency_key.in_(missing)))).all()}
    for item in sent:  # (another batch's tasks may stand: the race is that narrow)
        if item.idempotency_key in taken and (
                differ := tasks.differences(item, taken[item.idempotency_key])):
            raise tasks.idempotency_conflict(item.idempotency_key, differ,
                                             taken[item.idempotency_key].id,
                                             _index(items, item))
    made: list[tuple[Task, bool]] = []
    seen: set[int] = set()
    for n in where:
        row = by_ord.get(n + 1)
        if row is None:
            made.append((Task(taken[str(sent[n].idempotency_key)]), False))
        else:  # a repeated key in the batch: the first one's task, not new
            made.append((Task(row), bool(row.created) and n not in seen))
        seen.add(n)
    return made


def _submit_sqlite(db: Any, items: list[TaskIn]) -> list[tuple[Task, bool]]:
    """``submit`` with SQLite's own connection, inside its write transaction."""
    moment = datetime.now(UTC)
    now = _stamp(moment)
    sent, where = _distinct(items)
    keys = [i.idempotency_key for i in sent if i.idempotency_key]
    earlier: dict[str, Any] = {}
    if keys:
        earlier = {r.idempotency_key: r for r in map(read_sqlite_task, db.execute(
            _SQLITE_EARLIER, {"keys": events.dump_json(keys)}))}
    versions: dict[tuple[str, str | None], Any] = {}
    rows: list[dict[str, Any]] = []
    for item in sent:
        if item.idempotency_key in earlier:
            first = earlier[item.idempotency_key]
            if differ := tasks.differences(item, first):  # before anything is written
                raise tasks.idempotency_conflict(item.idempotency_key, differ, first.id,
                                                 _index(items, item))
            continue
        key = (item.agent, item.version)
        if key not in versions:
            versions[key] = db.execute(_SQLITE_NAMED if item.version else _SQLITE_LATEST,
                                       {"agent": item.agent, "version": item.version}).fetchone()
        version = versions[key]
        if version is None or version[2] != VersionStatus.PUBLISHED.value:
            raise _not_runnable(item)
        limits = orjson.loads(version[3]).get("limits", {})
        task_id = ids.uuid7()
        run_at = item.run_at or moment
        rows.append({
            "id": task_id, "agent": version[0], "agent_version": version[1],
            "input": item.input, "priority": item.priority,
            "status": (Status.SCHEDULED if run_at > moment else Status.PENDING).value,
            "max_retries": item.max_retries if item.max_retries is not None
            else limits.get("max_retries", tasks.DEFAULT_MAX_RETRIES),
            "timeout_s": item.timeout_s or limits.get("timeout_s", tasks.DEFAULT_TIMEOUT),
            "run_at": _stamp(run_at), "idempotency_key": item.idempotency_key,
            "correlation_id": item.correlation_id or task_id,
            "causation_id": item.causation_id})
    fresh: dict[str, Any] = {}
    if rows:
        inserted = {r.id: r for r in map(read_sqlite_task, db.execute(
            _SUBMIT_SQLITE, {"rows": events.dump_json(rows), "now": now}))}
        fresh = {r["id"]: inserted[r["id"]] for r in rows}  # in submit order
        drafts = [task_event(r, "created", priority=r.priority) for r in fresh.values()]
        events.insert_sqlite(db, drafts, [events.dump_json(d.payload) for d in drafts],
                             ids.uuid7_many(len(drafts)), moment)
    ordered = iter(fresh.values())
    tasks_sent: list[tuple[Any, bool]] = [
        (earlier[i.idempotency_key], False) if i.idempotency_key in earlier
        else (next(ordered), True) for i in sent]
    made: list[tuple[Task, bool]] = []
    seen: set[int] = set()
    for n in where:  # a repeated key in the batch: the first one's task, not new
        row, new = tasks_sent[n]
        made.append((Task(row), new and n not in seen))
        seen.add(n)
    return made


def _index(items: list[TaskIn], item: TaskIn) -> int | None:
    """Where ``item`` is in a batch (None for a single submit)."""
    return next(n for n, i in enumerate(items) if i is item) if len(items) > 1 else None


def _stamp(moment: datetime) -> str:
    """A moment as SQLite stores it (naive UTC text that sorts as time)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _columns(prefix: str = "") -> str:
    return ", ".join(prefix + c.name for c in table.c)


_SUBMIT_PG = sql.for_driver(sql.query("tasks_submit", "postgresql")
                            .replace("/*columns f*/", _columns("f."))
                            .replace("/*columns e*/", _columns("e."))
                            .replace("/*columns*/", _columns())
                            .replace("/*nulls*/", ", ".join("NULL" for _ in table.c)))
_SUBMIT_SQLITE = sql.query("tasks_submit", "sqlite").replace("/*columns*/", _columns())
_SQLITE_EARLIER = (f"SELECT {_columns()} FROM tasks "
                   "WHERE idempotency_key IN (SELECT value FROM json_each(:keys))")
_SQLITE_NAMED = ("SELECT name, version, status, definition FROM agent_versions "
                 "WHERE name = :agent AND version = :version")
_SQLITE_LATEST = ("SELECT name, version, status, definition FROM agent_versions "
                  "WHERE name = :agent AND status = 'published' ORDER BY sort_key DESC LIMIT 1")
read_sqlite_task = reader(list(table.c))  # a task row of SQLite's own connection


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
STATISTICS_BURST = 500  # tasks submitted at once: worth reporting to the planner at once


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
