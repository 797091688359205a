"""The task queue's storage: its statements on both backends, behind ``store.tasks``.

Rules both backends' statements keep (each named SQL file refers to them by number):

1. Fencing: only a task's running attempt counts. A completion, heartbeat or
   failure names (task, attempt); it changes the task only while the task is
   ``running`` at that attempt, and one that does not is left out of the answer
   (the caller reports it as stale: superseded, its lease lapsed).
2. Claim order: most urgent first (priority 10 before 1), then oldest (``seq``),
   through the claim-order indexes. A claim first makes due scheduled tasks ready.
3. Concurrency limits: an agent's ``limits.concurrency`` is counted under that
   agent's claim lock (``lock_agent``): a one-step claim takes only the tasks
   before the first capped agent's one and says so (``capped``); the caller
   chooses the rest agent by agent (``ready``, ``running``, ``take``).
4. A change appends its ``task.*`` events (``task_event``) in its own transaction.
5. An idempotency key stands for one task: used again with the same values it gives
   the first task back (not new); with other values (``differences``: a field the
   item leaves out matches what the server filled in) the submit is refused, 409
   ``idempotency_conflict``, and writes nothing (``tasks_submit`` checks the same).

SQLite runs the hot path's statements on its own connection in one ``BEGIN
IMMEDIATE`` (its single writer: no other claimer can see or take rows meanwhile);
PostgreSQL sends a worker's whole round trip as one statement in autocommit
(``tasks_cycle``), skipping rows another claimer holds (``FOR UPDATE SKIP LOCKED``).
Both hand back rows with the table's columns (``row.id``, ``row.status``, ...).
"""

from __future__ import annotations

import sqlite3
import zlib
from abc import ABC, abstractmethod
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Integer, and_, column, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import ids
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.store import audit as store_audit
from agentos.store import sql, time_order
from agentos.store.columns import database_now, iso_text, json_dumps, json_loads, stamp, utcnow
from agentos.store.events import CHANNEL as EVENTS_CHANNEL
from agentos.store.events import RANK, Draft, insert_rows
from agentos.store.sqlite_rows import reader
from agentos.store.tables import agent_versions, held_agents, task_attempts
from agentos.store.tables import events as events_table
from agentos.store.tables import tasks as table
from agentos.store.task_logs import LogLine
from agentos.store.task_logs import rows as log_rows

if TYPE_CHECKING:
    from agentos.store.base import Store

CHANNEL = "agentos_tasks"  # notified when tasks become claimable
STATISTICS_BURST = 500  # tasks submitted at once: worth reporting to the planner at once
t = table.c
a = task_attempts.c


# told the ids a write made, within its transaction (a request's audit row names them)
Named = Callable[[list[str]], None]


class Submitted(Protocol):
    """A task as submitted (``tasks.TaskIn``)."""

    @property
    def agent(self) -> str: ...
    @property
    def version(self) -> str | None: ...
    @property
    def input(self) -> dict[str, Any]: ...
    @property
    def priority(self) -> int: ...
    @property
    def max_retries(self) -> int | None: ...
    @property
    def timeout_s(self) -> float | None: ...
    @property
    def run_at(self) -> datetime | None: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def causation_id(self) -> str | None: ...
    @property
    def capability(self) -> str | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, Any] | None: ...


class Ended(Protocol):
    """An attempt whose handler returned (``claims.Finished``)."""

    @property
    def task_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def output(self) -> dict[str, Any]: ...
    @property
    def tokens(self) -> Any: ...
    @property
    def cost(self) -> float | None: ...


@dataclass(frozen=True)
class Defaults:
    """What a task gets when neither it nor its agent's ``limits`` say."""

    max_retries: int
    timeout_s: float


@dataclass
class Cycled:
    """A one-step round trip's answer: the claimed rows (claim order), the ended
    attempts that were stale, and whether the claim stopped short for the caller to
    finish (a capped agent's task met, or scheduled tasks promoted); or, when a lock
    owner it was to look at holds or waits for a lock, ``held`` and nothing done."""

    claimed: list[Any] = field(default_factory=list)
    stale: list[Ended] = field(default_factory=list)
    short: bool = False
    # of the owners given, those engaged with a lock: then nothing was ended or claimed
    held: frozenset[str] = frozenset()


@dataclass
class Completed:
    """``Tasks.complete``'s answer: the task's row once its attempt ended, or None when
    nothing was written: not the task's running attempt, or ``held`` (the attempt's lock
    owner holds a lock or waits in a lock's queue, so the caller ends it in a write
    transaction that gives those back)."""

    row: Any | None
    held: bool = False


def events_of_unfinished(statuses: Sequence[str]) -> Any:
    """Retention's rule for tasks (a condition on ``events``): every event in the
    correlation of a task whose status is one of ``statuses`` (it may still read its
    chain, or be explained by it)."""
    return events_table.c.correlation_id.in_(select(table.c.correlation_id).where(
        table.c.status.in_(list(statuses))))


def task_event(task: Any, kind: str, **payload: Any) -> Draft:
    """The ``task.<kind>`` event of a status change (rule 4; ``tasks_cycle`` and
    ``tasks_submit`` build the same ones in SQL)."""
    return Draft(f"task.{kind}", "queue", {"task_id": task.id, "agent": task.agent, **payload},
                 # under the task in the correlation tree (the task sits under its cause)
                 task.correlation_id, task.id)


def not_runnable(item: Submitted) -> InvalidInput:
    what = f"{item.agent} {item.version}" if item.version else item.agent
    return InvalidInput(f"no published version of agent {what}", code="agent_not_runnable",
                        details={"agent": item.agent, "version": item.version})


def stale_attempt(task_id: str, attempt: int, action: str, status: str,
                  current: int) -> Conflict:
    return Conflict(
        f"cannot {action} task {task_id} attempt {attempt}: the task is {status} "
        f"at attempt {current}", code="stale_attempt",
        details={"task_id": task_id, "attempt": attempt, "current_attempt": current,
                 "status": status})


# The fields an idempotency key stands for (rule 5), in the order a conflict lists them.
# A field the producer leaves out, which the server fills in (version, limits, run_at,
# correlation_id), matches whatever the first task got.
IDEMPOTENT_FIELDS = ("agent", "version", "input", "priority", "max_retries", "timeout_s",
                     "run_at", "correlation_id", "causation_id", "capability", "type",
                     "metadata")
_FILLED_IN = {"version", "max_retries", "timeout_s", "run_at", "correlation_id"}
_COLUMN = {"version": "agent_version"}  # the task row's name for a field


def differences(item: Submitted, first: Any, first_is_row: bool = True) -> list[str]:
    """The fields of ``item`` that differ from ``first``: the task (a row) its
    idempotency key was first used for, or (``first_is_row`` False) the item of the same
    batch that first used it. A retry of the same request has none."""
    out = []
    for name in IDEMPOTENT_FIELDS:
        mine = getattr(item, name)
        theirs = getattr(first, _COLUMN.get(name, name) if first_is_row else name)
        if mine is None and name in _FILLED_IN:
            continue
        if mine != theirs:
            out.append(name)
    return out


def idempotency_conflict(key: str, fields: list[str], task_id: str | None = None,
                         index: int | None = None) -> Conflict:
    """409: an idempotency key used again for a different task (as payment APIs answer)."""
    details: dict[str, Any] = {"idempotency_key": key, "fields": fields}
    if task_id is not None:
        details["task_id"] = task_id
    if index is not None:
        details["index"] = index
    return Conflict(f"idempotency key {key!r} was used for a different task: "
                    f"{', '.join(fields)} differ", code="idempotency_conflict", details=details)


def _index(items: Sequence[Submitted], item: Submitted) -> int | None:
    """Where ``item`` is in a batch (None for a single submit)."""
    return next(n for n, i in enumerate(items) if i is item) if len(items) > 1 else None


class Tasks(ABC):
    """The queue's statements; a backend's subclass runs the hot path its own way."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- the hot path: each backend's own -----------------------------

    @abstractmethod
    async def submit(self, items: Sequence[Submitted], defaults: Defaults,
                     named: Named | None = None) -> list[tuple[Any, bool]]:
        """Insert tasks in one transaction (and their ``task.created`` events); each
        item's row and whether it is new (an idempotency key seen before gives the first
        task's row). Wakes workers and listeners once committed. The store's
        before-commit hooks (a request's audit row) see the write, on the driver
        connection where they can; ``named(ids)`` is told the tasks' ids within the
        transaction, before they run."""

    @abstractmethod
    async def submit_in(self, conn: AsyncConnection, items: Sequence[Submitted],
                        defaults: Defaults) -> list[tuple[Any, bool]]:
        """``submit`` within the caller's write transaction."""

    @abstractmethod
    async def cycle(self, worker_id: str, ended: Sequence[Ended], agents: list[str] | None,
                    limit: int, lease_s: float, logs: Sequence[LogLine] = (),
                    owners: Sequence[str] = ()) -> Cycled | None:
        """End ``ended`` as succeeded, write ``logs`` (the lines of attempts it ends or
        that run) and claim up to ``limit`` in one round trip, unless one of ``owners``
        (lock owners of ended attempts that may hold locks) holds a lock or waits in a
        lock's queue: then nothing else is written (the logs may be) and the answer says
        which (``held``), for the caller to end them where their locks are given back. None
        where this backend cannot now (the caller takes a write transaction)."""

    @abstractmethod
    async def complete(self, item: Ended, owner: str | None) -> Completed | None:
        """End one attempt as succeeded (rule 1), with its execution record and its
        ``task.succeeded`` event, in one round trip on the driver connection (the
        request's audit row with it), unless ``owner`` holds a lock or waits for one;
        the row has every column. None where this backend cannot now (the caller takes
        a write transaction). Wakes listeners once committed."""

    @abstractmethod
    async def complete_in(self, conn: AsyncConnection, ended: Sequence[Ended],
                          full: bool = False) -> tuple[list[Any], list[Ended]]:
        """End the current ones of ``ended`` as succeeded (rule 1), with their execution
        records: (their rows in ``ended``'s order, the stale ones). Rows carry the
        columns of ``ENDED``, or all of them when ``full``."""

    @abstractmethod
    async def claim_in(self, conn: AsyncConnection, worker_id: str, agents: list[str] | None,
                       limit: int, lease_s: float) -> tuple[list[Any], bool]:
        """Claim up to ``limit`` ready tasks in the caller's write transaction (rules 2
        and 3): the claimed rows and whether a capped agent's task stopped the claim."""

    @abstractmethod
    async def beat_in(self, conn: AsyncConnection, running: Sequence[tuple[str, int]],
                      lease_s: float, with_now: bool) -> tuple[dict[str, bool], datetime | None]:
        """Extend the leases of (task id, attempt) pairs still running (rule 1): task id
        -> cancellation requested, and (``with_now``) the database's time of it."""

    async def lock_agent(self, conn: AsyncConnection, agent: str, wait: bool) -> bool:
        """Hold ``agent``'s claim lock until the transaction ends (rule 3); without
        ``wait``, give up (False) if another claimer holds it."""
        return True  # SQLite: the write transaction already excludes every other claimer

    # -- the same on both backends ----------------------------------------

    async def now(self, conn: AsyncConnection) -> datetime:
        """The database's clock (the only one that decides expiry)."""
        now: datetime = await database_now(conn)
        return now

    async def get(self, conn: AsyncConnection, task_id: str, lock: bool = False) -> Any:
        """The task's row, or None; ``lock``: locked until the transaction ends."""
        stmt = select(table).where(t.id == task_id)
        return (await conn.execute(stmt.with_for_update() if lock else stmt)).first()

    async def current(self, conn: AsyncConnection, task_id: str, attempt: int,
                      action: str) -> Any:
        """The task's row, locked, if ``attempt`` is its running attempt (rule 1);
        else 404 or 409 naming why."""
        row = await self.get(conn, task_id, lock=True)
        if row is None:
            raise NotFound(f"no task {task_id}", code="task_not_found")
        if row.attempt != attempt or row.status != "running":
            raise stale_attempt(task_id, attempt, action, row.status, row.attempt)
        return row

    async def refuse(self, conn: AsyncConnection, task_id: str, attempt: int,
                     action: str) -> None:
        """Raise why ``attempt`` of ``task_id`` may not ``action``: unknown, or not current."""
        row = (await conn.execute(select(t.status, t.attempt).where(t.id == task_id))).first()
        if row is None:
            raise NotFound(f"no task {task_id}", code="task_not_found")
        raise stale_attempt(task_id, attempt, action, row.status, row.attempt)

    async def attempts(self, conn: AsyncConnection, task_id: str) -> list[Any]:
        """The task's execution records, first attempt first."""
        return list((await conn.execute(select(task_attempts).where(
            a.task_id == task_id).order_by(a.number))).all())

    async def page(self, conn: AsyncConnection, after_seq: int, limit: int,
                   agent: str | None = None, status: str | None = None,
                   correlation_id: str | None = None, *, newest_first: bool = False,
                   before_seq: int | None = None, type: str | None = None,
                   since: datetime | None = None, until: datetime | None = None) -> list[Any]:
        """Tasks in submission order after ``after_seq``; or, ``newest_first``, from
        the newest down (below ``before_seq``): the (status, seq) and (agent, seq)
        indexes read a filtered page in order. ``since``/``until``: created at or after,
        and before."""
        stmt = select(table).where(t.seq > after_seq)
        if before_seq is not None:
            stmt = stmt.where(t.seq < before_seq)
        if agent:
            stmt = stmt.where(t.agent == agent)
        if status:
            stmt = stmt.where(t.status == status)
        if correlation_id:
            stmt = stmt.where(t.correlation_id == correlation_id)
        if type:
            stmt = stmt.where(t.type == type)
        if since is not None:
            stmt = stmt.where(t.created_at >= since)
        if until is not None:
            stmt = stmt.where(t.created_at < until)
        low, high = await time_order.seq_window(conn, t.seq, t.created_at, since, until)
        if low is not None:
            stmt = stmt.where(t.seq >= low)
        if high is not None:
            stmt = stmt.where(t.seq < high)
        order = t.seq.desc() if newest_first else t.seq
        return list((await conn.execute(stmt.order_by(order).limit(limit))).all())

    async def cancel_agents(self, conn: AsyncConnection, agent: str, now: datetime
                            ) -> tuple[list[tuple[Any, str]], int]:
        """Cancel every unfinished task of ``agent`` in three statements, however many
        it has: each waiting one (pending, scheduled) ends cancelled, and each running
        one not asked yet is asked to stop. Returns the ended ones' rows (id, agent,
        attempt, correlation_id) with the status each left, and how many were asked."""
        ended: list[tuple[Any, str]] = []
        for was in ("pending", "scheduled"):
            rows = (await conn.execute(
                update(table).where(t.agent == agent, t.status == was)
                .values(status="cancelled", finished_at=now, updated_at=now)
                .returning(t.id, t.agent, t.attempt, t.correlation_id))).all()
            ended += [(r, was) for r in sorted(rows, key=lambda r: r.id)]
        asked = (await conn.execute(
            update(table).where(t.agent == agent, t.status == "running",
                                t.cancel_requested.is_(False))
            .values(cancel_requested=True, updated_at=now))).rowcount
        return ended, int(asked or 0)

    async def by_ids(self, conn: AsyncConnection, task_ids: list[str]) -> list[Any]:
        """(id, agent, agent_version) of each of these tasks that exists."""
        return list((await conn.execute(select(t.id, t.agent, t.agent_version)
                                        .where(t.id.in_(task_ids)))).all())

    async def by_keys(self, conn: AsyncConnection, keys: list[str]) -> dict[str, Any]:
        """Idempotency key -> the task holding it."""
        rows = (await conn.execute(select(table).where(t.idempotency_key.in_(keys)))).all()
        return {r.idempotency_key: r for r in rows}

    async def lapsed(self, conn: AsyncConnection, now: datetime, limit: int) -> list[Any]:
        """Running tasks whose lease lapsed before ``now``, locked (others' skipped)."""
        return list((await conn.execute(select(table).where(
            t.status == "running", t.lease_expires_at < now).limit(limit)
            .with_for_update(skip_locked=True))).all())

    async def set(self, conn: AsyncConnection, task_id: str, **values: Any) -> None:
        """Update the task's columns."""
        await conn.execute(update(table).where(t.id == task_id).values(**values))

    async def end_attempt(self, conn: AsyncConnection, row: Any, now: datetime,
                          outcome: str, error: dict[str, Any] | None = None,
                          tokens: Any = None, cost: float | None = None) -> None:
        """Write the execution record of ``row``'s running attempt, which ends now."""
        started = row.started_at or now
        await conn.execute(insert(task_attempts).values(
            task_id=row.id, number=row.attempt, worker_id=row.worker_id or "", outcome=outcome,
            started_at=started, ended_at=now, error=error, tokens=tokens, cost=cost,
            duration_ms=(now - started).total_seconds() * 1000))

    async def limits_of(self, conn: AsyncConnection, rows: Sequence[Any]
                        ) -> dict[tuple[str, str], Any]:
        """Each (agent, version)'s limits; versions are immutable once published."""
        av = agent_versions.c
        pairs = {(r.agent, r.agent_version) for r in rows}
        found = (await conn.execute(select(av.name, av.version, av.definition).where(
            av.name.in_({p[0] for p in pairs})))).all()
        return {(f.name, f.version): f.definition.get("limits", {}) for f in found
                if (f.name, f.version) in pairs}

    async def ready(self, conn: AsyncConnection, agents: list[str] | None, full: list[str],
                    chosen: list[str], limit: int) -> list[Any]:
        """Up to ``limit`` ready tasks in claim order, locked (others' skipped), leaving
        out agents at their concurrency limit (running tasks >= the highest limit of any
        of their versions, none uncapped), the agents in ``full`` and the tasks in
        ``chosen`` (our own row locks do not hide them from us)."""
        h = held_agents.c
        held = select(h.agent).where(h.agent == t.agent, or_(h.until.is_(None),
                                                             h.until > utcnow()),
                                     or_(h.reason == "budget", and_(h.reason == "capability",
                                                                     h.ref == t.capability)))
        stmt = select(table).where(t.status == "pending", t.agent.not_in(_full_agents()),
                                   ~held.exists())
        if agents:
            stmt = stmt.where(t.agent.in_(agents))
        if full:
            stmt = stmt.where(t.agent.not_in(full))
        if chosen:
            stmt = stmt.where(t.id.not_in(chosen))
        return list((await conn.execute(stmt.order_by(t.priority.desc(), t.seq).limit(limit)
                                        .with_for_update(skip_locked=True))).all())

    async def running(self, conn: AsyncConnection, agent: str) -> int:
        """How many of ``agent``'s tasks run now."""
        return int((await conn.execute(select(func.count()).select_from(table).where(
            t.agent == agent, t.status == "running"))).scalar_one())

    async def take(self, conn: AsyncConnection, task_ids: list[str], worker_id: str,
                   lease_s: float) -> list[Any]:
        """Claim the chosen rows (the capped agents' path)."""
        now = await self.now(conn)
        return list((await conn.execute(
            update(table).where(t.id.in_(task_ids)).values(
                status="running", attempt=t.attempt + 1, worker_id=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_s), started_at=now,
                updated_at=now)
            .returning(*table.c))).all())


def _full_agents() -> Any:
    """Agents at their concurrency limit: running tasks >= the highest limit of any
    of their versions (none uncapped). Small: it only reads running tasks."""
    av = agent_versions.c
    busy = (select(t.agent, func.count().label("running"))
            .where(t.status == "running").group_by(t.agent).subquery())
    cap = av.definition[("limits", "concurrency")].as_integer()
    return (select(av.name).select_from(agent_versions.join(busy, busy.c.agent == av.name))
            .group_by(av.name, busy.c.running)
            .having(and_(func.count() == func.count(cap), busy.c.running >= func.max(cap))))


# ------------------------------------------------------------------ SQLite


class SqliteTasks(Tasks):
    async def submit(self, items: Sequence[Submitted], defaults: Defaults,
                     named: Named | None = None) -> list[tuple[Any, bool]]:
        async with self.store.driver(hooked=True) as db:
            if db is not None:
                made = _submit_sqlite(db, items, defaults)
                if named is not None:
                    named([row.id for row, _ in made])
        if db is None:  # a before-commit hook without a driver form must see the write
            async with self.store.write() as conn:
                made = await self.submit_in(conn, items, defaults)
                if named is not None:
                    named([row.id for row, _ in made])
                return made
        if any(new for _, new in made):  # committed: this process's listeners too
            self.store.wake(CHANNEL)
            self.store.wake(EVENTS_CHANNEL)
        return made

    async def submit_in(self, conn: AsyncConnection, items: Sequence[Submitted],
                        defaults: Defaults) -> list[tuple[Any, bool]]:
        made = _submit_sqlite(cast(Any, conn).driver(), items, defaults)
        if any(new for _, new in made):
            await self.store.notify(conn, CHANNEL)
            await self.store.notify(conn, EVENTS_CHANNEL)
        return made

    async def cycle(self, worker_id: str, ended: Sequence[Ended], agents: list[str] | None,
                    limit: int, lease_s: float, logs: Sequence[LogLine] = (),
                    owners: Sequence[str] = ()) -> Cycled | None:
        async with self.store.driver(hooked=True) as db:
            if db is not None:
                held = _engaged_sqlite(db, owners) if owners else frozenset()
                out = Cycled(held=held) if held else \
                    _cycle_sqlite(db, worker_id, ended, agents, limit, lease_s, logs)
                if not (out.claimed or len(out.stale) < len(ended)) or held:
                    self.store.nothing_changed(db)  # an empty poll: no audit row
        if db is None:
            return None
        if not out.held and (out.claimed or len(out.stale) < len(ended)):
            self.store.wake(EVENTS_CHANNEL)  # committed: this process's listeners too
        return out

    async def complete(self, item: Ended, owner: str | None) -> Completed | None:
        async with self.store.driver(hooked=True) as db:
            if db is not None:
                out = _complete_sqlite(db, item, owner)
                if out.row is None:
                    self.store.nothing_changed(db)  # no audit row: the caller goes on
        if db is None:
            return None
        if out.row is not None:  # committed: this process's listeners too
            self.store.wake(EVENTS_CHANNEL)
        return out

    async def complete_in(self, conn: AsyncConnection, ended: Sequence[Ended],
                          full: bool = False) -> tuple[list[Any], list[Ended]]:
        end, record = _sqlite_statements("tasks_complete", full=full)
        batch = json_dumps([_item(f) for f in ended])
        now = stamp(datetime.now(UTC))
        done = list((await conn.execute(end, {"batch": batch, "now": now})).all())
        if len(done) < len(ended):  # only the current ones' execution records
            current_ids = {r.id for r in done}
            batch = json_dumps([_item(f) for f in ended if f.task_id in current_ids])
        if done:
            await conn.execute(record, {"batch": batch, "now": now})
        return _in_order(done, ended)

    async def claim_in(self, conn: AsyncConnection, worker_id: str, agents: list[str] | None,
                       limit: int, lease_s: float) -> tuple[list[Any], bool]:
        promote, pick, take = _sqlite_statements("tasks_claim", agents=bool(agents))
        now = datetime.now(UTC)
        params: dict[str, Any] = {"now": stamp(now), "n": limit}
        if agents:
            params["agents"] = json_dumps(list(agents))
        await conn.execute(promote, params)
        picked = (await conn.execute(pick, params)).all()
        taken = []
        for row in picked:  # the rows before the first capped agent's (rule 3)
            if row.capped:
                break
            taken.append(row.id)
        capped = len(taken) < len(picked)
        if not taken:
            return [], capped
        params.update(ids=json_dumps(taken), worker_id=worker_id,
                      lease=stamp(now + timedelta(seconds=lease_s)))
        return list((await conn.execute(take, params)).all()), capped

    async def beat_in(self, conn: AsyncConnection, running: Sequence[tuple[str, int]],
                      lease_s: float, with_now: bool) -> tuple[dict[str, bool], datetime | None]:
        [stmt] = _sqlite_statements("tasks_heartbeat")
        now = datetime.now(UTC)
        rows = (await conn.execute(stmt, {
            "batch": json_dumps([{"id": i, "attempt": n} for i, n in running]), "now": stamp(now),
            "lease": stamp(now + timedelta(seconds=lease_s))})).all()
        return {r.id: bool(r.cancel_requested) for r in rows}, now


def _submit_sqlite(db: sqlite3.Connection, items: Sequence[Submitted], defaults: Defaults
                   ) -> list[tuple[Any, bool]]:
    """``submit`` with SQLite's own connection, inside its write transaction: the
    versions resolved and the rows worked out here, one ``executemany`` for the batch,
    its ``task.created`` events appended. The rows handed back are built from what was
    inserted (the seqs follow the table's highest, in this single writer's transaction):
    what reading them back would give, without reading them."""
    moment = datetime.now(UTC)
    now = stamp(moment)
    sent, where = distinct(items)
    keys = [i.idempotency_key for i in sent if i.idempotency_key]
    earlier: dict[str, Any] = {}
    if keys:
        earlier = {r.idempotency_key: r for r in map(read_task, db.execute(
            _SQLITE_EARLIER, {"keys": json_dumps(keys)}))}
    versions: dict[tuple[str, str | None], tuple[str, str, dict[str, Any]]] = {}
    new_ids = iter(ids.uuid7_many(len(sent) - len(earlier)))
    values: list[tuple[Any, ...]] = []
    fresh: list[Any] = []
    (seq,) = db.execute(_SQLITE_LAST_SEQ).fetchone() if len(sent) > len(earlier) else (0,)
    for item in sent:
        if item.idempotency_key in earlier:
            first = earlier[item.idempotency_key]
            if differ := differences(item, first):  # before anything is written
                raise idempotency_conflict(item.idempotency_key, differ, first.id,
                                           _index(items, item))
            continue
        task_id = next(new_ids)
        key = (item.agent, item.version)
        version = versions.get(key)
        if version is None:
            found = db.execute(_SQLITE_NAMED if item.version else _SQLITE_LATEST,
                               {"agent": item.agent, "version": item.version}).fetchone()
            if found is None or found[2] != "published":
                raise not_runnable(item)
            version = versions[key] = (found[0], found[1],
                                       json_loads(found[3]).get("limits", {}))
        agent, agent_version, limits = version
        run_at = item.run_at.astimezone(UTC) if item.run_at else moment
        max_retries = item.max_retries if item.max_retries is not None \
            else limits.get("max_retries", defaults.max_retries)
        timeout_s = float(item.timeout_s or limits.get("timeout_s", defaults.timeout_s))
        status = "scheduled" if run_at > moment else "pending"
        # stored as the one JSON encoding, handed back as reading it would give it
        input_text = json_dumps(item.input)
        task_input = {} if input_text == "{}" else json_loads(input_text)
        metadata_text = None if item.metadata is None else json_dumps(item.metadata)
        metadata = None if metadata_text is None else json_loads(metadata_text)
        correlation_id = item.correlation_id or task_id
        seq += 1
        values.append((seq, task_id, agent, agent_version, input_text, item.priority, status,
                       max_retries, timeout_s, now if run_at is moment else stamp(run_at),
                       item.idempotency_key,
                       correlation_id, item.causation_id, item.capability, item.type,
                       metadata_text, now, now))
        fresh.append(TaskRow(seq, task_id, agent, agent_version, task_input, item.priority,
                             status, 0, 0, max_retries, timeout_s, run_at, None, None, None,
                             False, item.idempotency_key, correlation_id, item.causation_id,
                             None, None, moment, moment, None, item.capability, item.type,
                             metadata))
    if fresh:
        db.executemany(_SQLITE_SUBMIT, values)
        drafts = [task_event(r, "created", priority=r.priority) for r in fresh]
        insert_rows(db, drafts, [json_dumps(d.payload) for d in drafts],
                    ids.uuid7_many(len(drafts)), moment)
    ordered = iter(fresh)
    tasks_sent: list[tuple[Any, bool]] = [
        (earlier[i.idempotency_key], False) if i.idempotency_key in earlier
        else (next(ordered), True) for i in sent]
    return _per_item(where, tasks_sent)


_SQLITE_ENGAGED = sql.query("locks_engaged", "sqlite")


def _engaged_sqlite(db: sqlite3.Connection, owners: Sequence[str]) -> frozenset[str]:
    """Of ``owners``, those that hold a lock or wait in a lock's queue."""
    [found] = db.execute(_SQLITE_ENGAGED, {"owners": json_dumps(list(owners))}).fetchone()
    return frozenset(json_loads(found))


def _cycle_sqlite(db: sqlite3.Connection, worker_id: str, finished: Sequence[Ended],
                  agents: list[str] | None, limit: int, lease_s: float,
                  logs: Sequence[LogLine] = ()) -> Cycled:
    """``cycle`` on SQLite's own connection, in ``Store.driver()``'s write transaction:
    the same named statements, without a layer between them and SQLite while every
    other writer waits."""
    out = Cycled()
    moment = datetime.now(UTC)
    now = stamp(moment)
    drafts: list[Draft] = []
    if logs:  # written whether or not their attempt is still current: they happened
        db.executemany(_SQLITE_LOGS, [(x.task_id, x.attempt, x.line, stamp(x.at), x.level,
                                       x.message) for x in logs])
    if finished:
        end, record = _sqlite_statements("tasks_complete", driver=True)
        batch = json_dumps([_item(f) for f in finished])
        done = [_read_ended(r) for r in db.execute(end, {"batch": batch, "now": now})]
        current = {(r.id, r.attempt) for r in done}
        out.stale = [f for f in finished if (f.task_id, f.attempt) not in current]
        if done:
            if out.stale:  # only the current ones' execution records
                batch = json_dumps([_item(f) for f in finished
                                    if (f.task_id, f.attempt) in current])
            db.execute(record, {"batch": batch, "now": now})
            order = {f.task_id: n for n, f in enumerate(finished)}
            done.sort(key=lambda r: order[r.id])
            drafts += [task_event(r, "succeeded", attempt=r.attempt) for r in done]
    if limit:
        promote, pick, take = _sqlite_statements("tasks_claim", agents=bool(agents),
                                                 driver=True)
        params: dict[str, Any] = {"now": now, "n": limit}
        if agents:
            params["agents"] = json_dumps(list(agents))
        db.execute(promote, params)
        taken = []
        for task_id, _, _, capped in db.execute(pick, params).fetchall():
            if capped:  # counted under the claim's rules: left to the caller (rule 3)
                out.short = True
                break
            taken.append(task_id)
        if taken:
            params.update(ids=json_dumps(taken), worker_id=worker_id,
                          lease=stamp(moment + timedelta(seconds=lease_s)))
            claimed = [read_task(r) for r in db.execute(take, params)]
            claimed.sort(key=lambda r: (-r.priority, r.seq))
            drafts += [task_event(r, "started", attempt=r.attempt, worker_id=worker_id)
                       for r in claimed]
            out.claimed = claimed
    if drafts:
        insert_rows(db, drafts, [json_dumps(d.payload) for d in drafts],
                    ids.uuid7_many(len(drafts)), moment)
    return out


def _complete_sqlite(db: sqlite3.Connection, item: Ended, owner: str | None) -> Completed:
    """``complete`` on SQLite's own connection, in ``Store.driver()``'s write
    transaction: the statements of a round trip that ends one attempt."""
    if owner is not None and db.execute(_SQLITE_HELD, {"owner": owner}).fetchone():
        return Completed(None, held=True)
    moment = datetime.now(UTC)
    params = {"batch": json_dumps([_item(item)]), "now": stamp(moment)}
    end, record = _sqlite_statements("tasks_complete", full=True, driver=True)
    done = [read_task(r) for r in db.execute(end, params)]
    if not done:
        return Completed(None)
    db.execute(record, params)
    draft = task_event(done[0], "succeeded", attempt=item.attempt)
    insert_rows(db, [draft], [json_dumps(draft.payload)], ids.uuid7_many(1), moment)
    return Completed(done[0])


# -------------------------------------------------------------- PostgreSQL


def in_transaction(driver: Any) -> bool:
    """Whether a PostgreSQL driver block is a transaction (a hook writes in it), not
    autocommit. (psycopg is imported here, not by a SQLite process.)"""
    from psycopg import pq

    return bool(driver.info.transaction_status != pq.TransactionStatus.IDLE)


async def _submit_alone(driver: Any, params: dict[str, Any],
                        audit: dict[str, Any] | None = None) -> list[Any]:
    """``tasks_submit`` in autocommit, with the request's audit row given ``audit``
    (``Store.folding``'s parameters). A concurrent submit that commits one of the
    batch's idempotency keys after this statement began fails it (a unique violation
    on the key: nothing of the batch is written, where skipping the key committed the
    batch's other tasks before the caller could refuse it); sent again, the statement
    sees that key as an earlier task's, and returns it or refuses the batch whole."""
    from psycopg import errors as pg_errors

    statement, given = (_PG_SUBMIT, params) if audit is None else (
        _PG_SUBMIT_AUDITED, {**params, **audit})
    tries = 1
    while True:
        try:  # the text is over 4 kB: see sql.numbered
            cursor = await sql.send_numbered(driver, statement, given)
            return list(await cursor.fetchall())
        except pg_errors.UniqueViolation as exc:
            if exc.diag.constraint_name != IDEMPOTENCY_INDEX or tries >= SUBMIT_TRIES:
                raise
            tries += 1


class PostgresTasks(Tasks):
    async def submit(self, items: Sequence[Submitted], defaults: Defaults,
                     named: Named | None = None) -> list[tuple[Any, bool]]:
        params, new_ids = _submit_params(items, defaults)
        # the audit row names the tasks before the write where every item is new or none
        # is written (no idempotency keys), or where one task is sent: new, or an earlier
        # one's (then the statement writes no row: it is written on its own after)
        foldable = len(items) == 1 or all(item.idempotency_key is None for item in items)
        replayed = False
        async with self.store.folding(foldable) as (driver, fold):
            if driver is not None and in_transaction(driver):
                # a hook's write (the audit row) rides in this transaction: a key a
                # concurrent submit took is read afterwards (``_submitted``), not retried
                rows = await (await driver.execute(_PG_SUBMIT_IN, params, prepare=True)
                              ).fetchall()
                made = await self._submitted(items, rows)
                if named is not None:
                    named([row.id for row, _ in made])
            elif driver is not None:
                audit = None
                if fold is not None:
                    if named is not None:
                        named(new_ids)
                    audit = fold()
                rows = await _submit_alone(driver, params, audit)
                if len(items) >= STATISTICS_BURST and driver.info.server_version >= 150000:
                    # a connection that then idles would report its changes only after
                    # 10 s, and the reaper analyzes the queue once they are reported
                    await driver.execute("SELECT pg_stat_force_next_flush()")
                made = await self._submitted(items, rows)
                if audit is not None and not any(new for _, new in made):
                    replayed = True  # an earlier task's key: the statement wrote no row
                    self.store.nothing_changed(driver)  # (the entry is due again)
                elif named is not None and audit is None:
                    named([row.id for row, _ in made])
        if driver is None:  # a before-commit hook without a driver form must see the write
            async with self.store.write() as conn:
                made = await self.submit_in(conn, items, defaults)
                if named is not None:
                    named([row.id for row, _ in made])
                return made
        if replayed:  # the request's audit row, naming the earlier task, on its own
            if named is not None:
                named([row.id for row, _ in made])
            async with self.store.folding() as (driver, fold):
                await store_audit.alone(driver, fold)
        if any(new for _, new in made):  # committed: this process's listeners too
            self.store.wake(CHANNEL)
            self.store.wake(EVENTS_CHANNEL)
        return made

    async def submit_in(self, conn: AsyncConnection, items: Sequence[Submitted],
                        defaults: Defaults) -> list[tuple[Any, bool]]:
        rows = (await conn.exec_driver_sql(_PG_SUBMIT_IN, _submit_params(items, defaults)[0])
                ).all()
        made = await self._submitted(items, rows)
        if any(new for _, new in made):
            await self.store.notify(conn, CHANNEL, sent=True)
            await self.store.notify(conn, EVENTS_CHANNEL, sent=True)
        return made

    async def _submitted(self, items: Sequence[Submitted], rows: Sequence[Any]
                         ) -> list[tuple[Any, bool]]:
        """Each item's row from ``tasks_submit``'s rows (by item order, 1-based)."""
        sent, where = distinct(items)
        by_ord = {r.ord: r for r in rows}
        for n, item in enumerate(sent):
            row = by_ord.get(n + 1)
            if row is not None and row.differs:  # nothing was written
                raise idempotency_conflict(str(item.idempotency_key), list(row.differs),
                                           row.id, _index(items, item))
            if row is not None and row.created is None:
                raise not_runnable(item)
        taken: dict[str, Any] = {}
        if missing := [i.idempotency_key for n, i in enumerate(sent) if n + 1 not in by_ord]:
            # a concurrent submit took these keys after this statement began: read its tasks
            async with self.store.read() as conn:
                taken = await self.by_keys(conn, [str(k) for k in missing])
        for item in sent:  # (another batch's tasks may stand: the race is that narrow)
            key = item.idempotency_key
            if key in taken and (differ := differences(item, taken[key])):
                raise idempotency_conflict(key, differ, taken[key].id, _index(items, item))
        per_sent = [(row, bool(row.created)) if (row := by_ord.get(n + 1)) is not None
                    else (taken[str(item.idempotency_key)], False)
                    for n, item in enumerate(sent)]
        return _per_item(where, per_sent)

    async def cycle(self, worker_id: str, ended: Sequence[Ended], agents: list[str] | None,
                    limit: int, lease_s: float, logs: Sequence[LogLine] = (),
                    owners: Sequence[str] = ()) -> Cycled | None:
        params: dict[str, Any] = {
            "batch": json_dumps([_item(f) for f in ended]), "ids": [f.task_id for f in ended],
            "worker_id": worker_id, "lease_s": lease_s, "event_rank": RANK["normal"],
            "owners": list(owners),
            # an array, not JSON: indexed per event, a JSON text is parsed again for each
            "event_ids": ids.uuid7_many(len(ended) + limit)}
        if agents:
            params["agents"] = list(agents)
        if logs:
            params["logs"] = json_dumps([{**row, "at": iso_text(row["at"])}
                                    for row in log_rows(logs)])
        async with self.store.folding() as (driver, fold):
            if driver is not None:
                shape = (bool(agents), limit, bool(logs))
                statement, args = store_audit.carried(fold, _pg_cycle(*shape, False),
                                                      _pg_cycle(*shape, True), params)
                # the text is over 4 kB: see sql.numbered
                rows = await (await sql.send_numbered(driver, statement, args)).fetchall()
                head = next(r for r in rows if r.id is None)
                if not head.notified:
                    self.store.nothing_changed(driver)  # an empty poll: no audit row
        if driver is not None:
            if head.notified:
                self.store.wake(EVENTS_CHANNEL)  # committed: this process's listeners too
        else:  # a before-commit hook must see the write: the same statement through it
            async with self.store.statement() as conn:
                rows = (await conn.execute(_pg_claim_clause("tasks_cycle", bool(agents), limit,
                                                            logs=bool(logs)), params)).all()
                head = next(r for r in rows if r.id is None)
                if head.notified:
                    await self.store.notify(conn, EVENTS_CHANNEL, sent=True)
                else:
                    self.store.nothing_changed(conn)  # an empty poll: no audit row
        if head.held:
            return Cycled(held=frozenset(head.held))
        current = {(task_id, attempt) for task_id, attempt in head.done}
        claimed = [r for r in rows if r.id is not None]
        claimed.sort(key=lambda r: (-r.priority, r.seq))  # the answer has no order
        return Cycled(claimed, [f for f in ended if (f.task_id, f.attempt) not in current],
                      bool(head.capped or head.promoted) and len(claimed) < limit)

    async def complete(self, item: Ended, owner: str | None) -> Completed | None:
        params = {"batch": json_dumps([_item(item)]), "ids": [item.task_id], "owner": owner,
                  "event_id": ids.uuid7(), "event_rank": RANK["normal"]}
        async with self.store.folding() as (driver, fold):
            if driver is not None:
                statement, args = store_audit.carried(fold, _PG_COMPLETE_ONE,
                                                      _PG_COMPLETE_ONE_AUDITED, params)
                row = await (await driver.execute(statement, args, prepare=True)).fetchone()
                if row.id is None:
                    self.store.nothing_changed(driver)  # no audit row: the caller goes on
        if driver is None:
            return None
        if row.notified:  # committed: this process's listeners too
            self.store.wake(EVENTS_CHANNEL)
        return Completed(row if row.id is not None else None, held=row.held)

    async def complete_in(self, conn: AsyncConnection, ended: Sequence[Ended],
                          full: bool = False) -> tuple[list[Any], list[Ended]]:
        stmt = _pg_complete_full if full else _pg_complete_narrow
        done = list((await conn.execute(stmt(), {
            "batch": json_dumps([_item(f) for f in ended]), "ids": [f.task_id for f in ended]})
        ).all())
        return _in_order(done, ended)

    async def claim_in(self, conn: AsyncConnection, worker_id: str, agents: list[str] | None,
                       limit: int, lease_s: float) -> tuple[list[Any], bool]:
        claimed, promoted, capped = await self._claim(conn, worker_id, agents, limit, lease_s)
        if promoted and len(claimed) < limit:  # now visible to a new statement: once more
            more, _, capped = await self._claim(conn, worker_id, agents, limit - len(claimed),
                                                lease_s)
            claimed += more
        return claimed, bool(capped)

    async def _claim(self, conn: AsyncConnection, worker_id: str, agents: list[str] | None,
                     limit: int, lease_s: float) -> tuple[list[Any], int, int]:
        params: dict[str, Any] = {"worker_id": worker_id, "lease_s": lease_s}
        if agents:
            params["agents"] = list(agents)
        rows = (await conn.execute(_pg_claim_clause("tasks_claim", bool(agents), limit),
                                   params)).all()
        return [r for r in rows if r.id is not None], rows[0].promoted, rows[0].capped

    async def beat_in(self, conn: AsyncConnection, running: Sequence[tuple[str, int]],
                      lease_s: float, with_now: bool) -> tuple[dict[str, bool], datetime | None]:
        rows = (await conn.execute(_PG_HEARTBEAT, {
            "batch": json_dumps([{"id": i, "attempt": n} for i, n in running]),
            "lease_s": lease_s})).all()
        now = await self.now(conn) if with_now else None
        return {r.id: bool(r.cancel_requested) for r in rows}, now

    async def lock_agent(self, conn: AsyncConnection, agent: str, wait: bool) -> bool:
        key = zlib.crc32(f"agentos.agent:{agent}".encode())
        if wait:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            return True
        return bool((await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                        {"k": key})).scalar_one())


# what an item of ``tasks_submit``'s batch leaves out when it is None (the statement
# reads a missing key as NULL): JSON with no null in it is never walked again for NaN
_SUBMIT_OPTIONAL = ("version", "max_retries", "timeout_s", "idempotency_key",
                    "correlation_id", "causation_id", "capability", "type", "metadata")


def _submit_params(items: Sequence[Submitted], defaults: Defaults
                   ) -> tuple[dict[str, Any], list[str]]:
    """``tasks_submit``'s parameters, and the ids the items get if they are new (one per
    item the batch sends: ``distinct``)."""
    sent, _ = distinct(items)
    new_ids = ids.uuid7_many(2 * len(sent))
    batch = []
    for n, i in enumerate(sent):
        item = {"ord": n + 1, "id": new_ids[2 * n], "event_id": new_ids[2 * n + 1],
                "agent": i.agent, "input": i.input, "priority": i.priority}
        for name in _SUBMIT_OPTIONAL:
            if (value := getattr(i, name)) is not None:
                item[name] = value
        if i.run_at is not None:
            item["run_at"] = iso_text(i.run_at)
        batch.append(item)
    return {"items": json_dumps(batch), "event_rank": RANK["normal"],
            "max_retries": defaults.max_retries, "timeout_s": defaults.timeout_s
            }, new_ids[::2]


# ------------------------------------------------------------------ shared


def distinct(items: Sequence[Submitted]) -> tuple[list[Submitted], list[int]]:
    """The items to write (an idempotency key repeated in the batch counts once), and
    for each item its index among them; 409 when a repeat asks for another task."""
    sent: list[Submitted] = []
    where: list[int] = []
    first: dict[str, int] = {}
    for n, item in enumerate(items):
        key = item.idempotency_key
        if key is not None and key in first:
            if differ := differences(item, sent[first[key]], first_is_row=False):
                raise idempotency_conflict(key, differ, index=n)
            where.append(first[key])
            continue
        if key is not None:
            first[key] = len(sent)
        where.append(len(sent))
        sent.append(item)
    return sent, where


def _per_item(where: list[int], per_sent: list[tuple[Any, bool]]) -> list[tuple[Any, bool]]:
    """Each submitted item's (row, new): a key repeated in the batch gets the first
    item's row, not new."""
    made: list[tuple[Any, bool]] = []
    seen: set[int] = set()
    for n in where:
        row, new = per_sent[n]
        made.append((row, new and n not in seen))
        seen.add(n)
    return made


def _in_order(done: list[Any], ended: Sequence[Ended]) -> tuple[list[Any], list[Ended]]:
    """The ended rows in ``ended``'s order, and the stale ones of ``ended``."""
    current = {(r.id, r.attempt) for r in done}
    order = {f.task_id: n for n, f in enumerate(ended)}
    done.sort(key=lambda r: order[r.id])
    return done, [f for f in ended if (f.task_id, f.attempt) not in current]


def _item(f: Ended) -> dict[str, Any]:
    item: dict[str, Any] = {"id": f.task_id, "attempt": f.attempt, "output": f.output}
    if f.tokens is not None:
        item["tokens"] = f.tokens
    if f.cost is not None:
        item["cost"] = f.cost
    return item


# -------------------------------------------------------------- statements

# what a round trip needs of the attempts it ends (and their execution records)
ENDED = (t.id, t.agent, t.attempt, t.correlation_id, t.worker_id, t.started_at, t.finished_at)
_ALL = tuple(table.c)
# the columns a claiming statement returns after the task's own
_EXTRA = {"tasks_claim": (column("promoted", Integer), column("capped", Integer)),
          "tasks_cycle": (column("promoted", Integer), column("capped", Integer),
                          column("done"), column("notified", Integer), column("held"))}
# tasks_cycle's condition on ending, promoting or claiming any: none of its :owners is
# engaged with a lock (its CTE held)
_FREE = "AND cardinality((SELECT owners FROM held)) = 0"


def _names(columns: Sequence[Any], prefix: str = "") -> str:
    return ", ".join(prefix + c.name for c in columns)


def _pg_claim_fill(agents: bool, n: int, logs: bool = False, audited: bool = False
                   ) -> dict[str, str]:
    """A claim's blanks. Its size is written into the text, not sent as a parameter:
    with ``LIMIT $1`` PostgreSQL's generic plan assumes a large limit, so it would plan
    the statement again on every execution (about a millisecond of its CPU per round
    trip); with the number in the text each size gets one cached plan. ``audited``: a
    round trip's statement carries the request's audit row (``Store.folding``), written
    when it appended events (an empty poll writes none)."""
    return {"columns": _names(_ALL, "t."), "ended_columns": _names(ENDED, "t."),
            "unless": "", "free": "",
            "agents": "AND t.agent = ANY(:agents)" if agents else "", "n": str(int(n)),
            "nulls": ", ".join("NULL" for _ in _ALL),
            # the log lines a round trip carries: one more CTE, only when it has some
            "logged": sql.query("task_logs_insert", "postgresql") + "," if logs else "",
            "audit": store_audit.fragment("inserted", "promoted") if audited else ""}


_PG_CLAIMS: dict[tuple[str, bool, int, bool], Any] = {}


def _pg_claim_text(name: str, agents: bool, n: int, logs: bool = False,
                   audited: bool = False) -> str:
    fill = _pg_claim_fill(agents, n, logs, audited)
    if name == "tasks_cycle":
        fill["unless"] = fill["free"] = _FREE
    return sql.query(name, "postgresql", driver=False, **fill)


@lru_cache(maxsize=256)  # a text for each claim size a worker asks for
def _pg_cycle(agents: bool, n: int, logs: bool, audited: bool) -> tuple[str, tuple[str, ...]]:
    """``tasks_cycle`` as ``sql.numbered`` text for the driver."""
    return sql.numbered(_pg_claim_text("tasks_cycle", agents, n, logs, audited))


def _pg_claim_clause(name: str, agents: bool, n: int, logs: bool = False) -> Any:
    """``tasks_claim``/``tasks_cycle`` as a SQLAlchemy clause typed as the table's rows."""
    key = (name, agents, n, logs)
    if key not in _PG_CLAIMS:
        _PG_CLAIMS[key] = text(_pg_claim_text(name, agents, n, logs)).columns(
            *table.c, *_EXTRA[name])
    return _PG_CLAIMS[key]


def _pg_complete(columns: Sequence[Any]) -> Any:
    return text(sql.query("tasks_complete", "postgresql", ended_columns=_names(columns, "t."),
                          unless="")).columns(*columns)


_PG_COMPLETE: dict[bool, Any] = {}


def _pg_complete_full() -> Any:
    if True not in _PG_COMPLETE:
        _PG_COMPLETE[True] = _pg_complete(_ALL)
    return _PG_COMPLETE[True]


def _pg_complete_narrow() -> Any:
    if False not in _PG_COMPLETE:
        _PG_COMPLETE[False] = _pg_complete(ENDED)
    return _PG_COMPLETE[False]


_SQLITE: dict[tuple[str, bool, bool, bool], tuple[Any, ...]] = {}
# which statement of a SQLite file returns task rows: all columns, or those of ENDED
_SQLITE_RETURNS = {("tasks_claim", 2): "all", ("tasks_complete", 0): "ended"}


def _sqlite_statements(name: str, agents: bool = False, full: bool = False,
                       driver: bool = False) -> tuple[Any, ...]:
    """A SQLite file's statements: as text for its own connection (``driver``), else as
    SQLAlchemy clauses whose returned rows are typed as the table's."""
    key = (name, agents, full, driver)
    if key not in _SQLITE:
        ended = _ALL if full else ENDED
        texts = sql.statements(name, "sqlite", columns=_names(_ALL),
                               ended_columns=_names(ended),
                               agents="AND t.agent IN (SELECT value FROM json_each(:agents))"
                               if agents else "",
                               claim_index="ix_tasks_agent_claim_order" if agents
                               else "ix_tasks_claim_order")
        if driver:
            _SQLITE[key] = texts
        else:
            typed = {"all": _ALL, "ended": ended}
            _SQLITE[key] = tuple(
                text(s).columns(*typed[_SQLITE_RETURNS[name, n]])
                if (name, n) in _SQLITE_RETURNS else text(s) for n, s in enumerate(texts))
    return _SQLITE[key]


_PG_SUBMIT_FILL = {"columns": _names(_ALL), "f_columns": _names(_ALL, "f."),
                   "e_columns": _names(_ALL, "e."), "nulls": ", ".join("NULL" for _ in _ALL)}
# alone (autocommit): a key taken meanwhile fails the statement, which writes nothing
_PG_SUBMIT = sql.numbered(sql.query("tasks_submit", "postgresql", driver=False, on_conflict="",
                                     audit="", **_PG_SUBMIT_FILL))
_PG_SUBMIT_AUDITED = sql.numbered(sql.query(  # with the request's audit row (Store.folding)
    "tasks_submit", "postgresql", driver=False, on_conflict="",
    audit=store_audit.fragment("inserted"), **_PG_SUBMIT_FILL))
# in a caller's transaction: such a key is skipped; the caller's refusal rolls it all back
_PG_SUBMIT_IN = sql.query("tasks_submit", "postgresql", driver=True, on_conflict=(
    "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"),
    audit="", **_PG_SUBMIT_FILL)
IDEMPOTENCY_INDEX = "ix_tasks_idempotency_key"
SUBMIT_TRIES = 3  # a batch's statement sent again after losing a key to a concurrent one
_PG_COMPLETE_ONE_FILL = {"columns": _names(_ALL, "t."), "ended_columns": _names(_ALL, "t."),
                         "unless": "AND NOT (SELECT held FROM held)"}
_PG_COMPLETE_ONE = sql.query("tasks_complete_one", "postgresql", driver=True, audit="",
                             **_PG_COMPLETE_ONE_FILL)
_PG_COMPLETE_ONE_AUDITED = sql.query(  # with the request's audit row (``Store.folding``)
    "tasks_complete_one", "postgresql", driver=True, audit=store_audit.fragment("inserted"),
    **_PG_COMPLETE_ONE_FILL)
_PG_HEARTBEAT = text(sql.query("tasks_heartbeat", "postgresql"))
_SQLITE_SUBMIT, _order = sql.qmark(sql.query("tasks_submit", "sqlite"))
assert _order == ("seq", "id", "agent", "agent_version", "input", "priority", "status",
                  "max_retries", "timeout_s", "run_at", "idempotency_key", "correlation_id",
                  "causation_id", "capability", "type", "metadata", "now", "now"), _order
_SQLITE_LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM tasks"
_SQLITE_EARLIER = (f"SELECT {_names(_ALL)} FROM tasks "
                   "WHERE idempotency_key IN (SELECT value FROM json_each(:keys))")
_SQLITE_NAMED = ("SELECT name, version, status, definition FROM agent_versions "
                 "WHERE name = :agent AND version = :version")
_SQLITE_LATEST = ("SELECT name, version, status, definition FROM agent_versions "
                  "WHERE name = :agent AND status = 'published' ORDER BY sort_key DESC LIMIT 1")
# the attempt's lock owner holds a lock or waits in a lock's queue
_SQLITE_HELD = ("SELECT 1 FROM locks WHERE owner = :owner "
                "UNION ALL SELECT 1 FROM lock_waiters WHERE owner = :owner LIMIT 1")
_SQLITE_LOGS = ("INSERT OR IGNORE INTO task_logs (task_id, attempt, line, at, level, message) "
                "VALUES (?, ?, ?, ?, ?, ?)")  # a round trip sent again may carry them again
read_task = reader(_ALL)  # a task row of SQLite's own connection, as SQLAlchemy's
# a task row built from the values a submit inserted (the fields in the table's order)
TaskRow = namedtuple("TaskRow", (
    "seq", "id", "agent", "agent_version", "input", "priority", "status", "attempt",
    "retry_base", "max_retries", "timeout_s", "run_at", "lease_expires_at", "worker_id",
    "started_at", "cancel_requested", "idempotency_key", "correlation_id", "causation_id",
    "output", "error", "created_at", "updated_at", "finished_at", "capability", "type",
    "metadata"))
assert TaskRow._fields == tuple(c.name for c in _ALL), TaskRow._fields
_read_ended = reader(ENDED)
