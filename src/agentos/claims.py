"""Claims: the queue's hot path — take ready tasks, keep their leases, record results.

A worker's round trip is one ``cycle``: a single write transaction that ends
the attempts it finished since the last one (``complete``, fenced per task:
only the task's running attempt counts) and claims as many tasks as it has
free slots. Each part is one statement per batch (named SQL in
``store/sql/tasks_*``), and the ``task.succeeded``/``task.started`` events of
the whole batch are one append. Leases are kept the same way: one statement
renews every running attempt a worker holds (``beat_many``).

Claim order is most urgent first, then oldest; on PostgreSQL rows another
claimer holds are skipped (``FOR UPDATE SKIP LOCKED``), on SQLite the write
transaction excludes every other claimer. An agent's ``limits.concurrency``
is counted under that agent's claim lock (an advisory lock on PostgreSQL):
the one-statement claim stops at the first task of such an agent, and the
rest of the batch is chosen agent by agent (``_choose``), so no two claims can
both take an agent's last slot and a capped agent's backlog never hides other
agents' tasks.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Integer, and_, column, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import events, ids, locks, tasks
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.events import Draft, EventIn
from agentos.queue import Task, limits_of, read_sqlite_task, task_event
from agentos.store import Store, sql
from agentos.store.columns import utcnow
from agentos.store.sqlite import reader
from agentos.store.tables import agent_versions
from agentos.store.tables import tasks as table
from agentos.tasks import Status

MAX_CLAIM = 1000
t = table.c


@dataclass(frozen=True, slots=True)
class Finished:
    """An attempt whose handler returned: to be recorded as succeeded."""

    task_id: str
    attempt: int
    output: dict[str, Any]
    tokens: Any = None
    cost: float | None = None
    took_locks: bool = True  # False: the attempt took no lock (saves the look-up)


@dataclass
class Cycle:
    claimed: list[Task] = field(default_factory=list)
    stale: list[Finished] = field(default_factory=list)  # superseded: not recorded


async def cycle(store: Store, worker_id: str, finished: list[Finished],
                agents: list[str] | None = None, limit: int = 0,
                lease_s: float = tasks.DEFAULT_LEASE) -> Cycle:
    """Record ``finished`` and claim up to ``limit`` tasks, in one transaction
    (on PostgreSQL one statement, when no finished attempt may hold a lock)."""
    if not 0 <= limit <= MAX_CLAIM:
        raise InvalidInput(f"limit must be between 0 and {MAX_CLAIM}", code="bad_limit")
    if not any(f.took_locks for f in finished):
        if store.dialect == "postgresql":
            return await _cycle_pg(store, worker_id, finished, agents, limit, lease_s)
        async with store.driver() as db:
            if db is not None:
                out, short = _cycle_sqlite(store, db, worker_id, finished, agents, limit,
                                           lease_s)
        if db is not None:
            if out.claimed or len(out.stale) < len(finished):
                store.wake(events.CHANNEL)  # committed: this process's listeners too
            if short:
                out.claimed += await _claim_rest(store, worker_id, agents,
                                                 limit - len(out.claimed), lease_s)
            return out
    out = Cycle()
    async with store.write() as conn:
        drafts: list[EventIn | Draft] = []
        if finished:
            done, out.stale = await _complete_in(store, conn, finished)
            drafts += await _release(store, conn, done, finished)
            drafts += [task_event(r, "succeeded", attempt=r.attempt) for r in done]
        if limit:
            claimed = await _claim_in(store, conn, worker_id, agents, limit, lease_s)
            drafts += [task_event(r, "started", attempt=r.attempt, worker_id=worker_id)
                       for r in claimed]
            out.claimed = [Task(r) for r in claimed]
        if drafts:
            await events.append_in(store, conn, drafts)
        else:
            store.nothing_changed(conn)  # an empty poll is not worth an audit row
    return out


async def _cycle_pg(store: Store, worker_id: str, finished: list[Finished],
                    agents: list[str] | None, limit: int, lease_s: float) -> Cycle:
    """``cycle`` in one round trip (``tasks_cycle``); a claim it leaves short is
    finished in a transaction of its own."""
    [stmt] = _statements(store, "tasks_cycle", bool(agents), limit, narrow=True)
    params: dict[str, Any] = {
        "batch": _json([_item(f) for f in finished]), "ids": [f.task_id for f in finished],
        "worker_id": worker_id,
        "lease_s": lease_s, "event_rank": int(events.Priority.NORMAL),
        "event_ids": _json(ids.uuid7_many(len(finished) + limit))}
    if agents:
        params["agents"] = list(agents)
    async with store.driver() as driver:
        if driver is not None:
            [query] = _statements(store, "tasks_cycle", bool(agents), limit, narrow=True,
                                  driver=True)
            rows = await (await driver.execute(query, params, prepare=True)).fetchall()
    if driver is not None:
        if rows[0].notified:
            store.wake(events.CHANNEL)  # committed: this process's listeners too
    else:
        async with store.statement() as conn:
            rows = (await conn.execute(stmt, params)).all()
            if rows[0].notified:
                await store.notify(conn, events.CHANNEL, sent=True)
            else:
                store.nothing_changed(conn)  # an empty poll is not worth an audit row
    head = rows[0]
    current = {(task_id, attempt) for task_id, attempt in head.done}
    out = Cycle([Task(r) for r in rows if r.id is not None],
                [f for f in finished if (f.task_id, f.attempt) not in current])
    if (head.capped or head.promoted) and len(out.claimed) < limit:
        out.claimed += await _claim_rest(store, worker_id, agents, limit - len(out.claimed),
                                         lease_s)
    out.claimed.sort(key=lambda task: (-task.row.priority, task.row.seq))  # claim order
    return out


def _cycle_sqlite(store: Store, db: Any, worker_id: str, finished: list[Finished],
                  agents: list[str] | None, limit: int, lease_s: float
                  ) -> tuple[Cycle, bool]:
    """``cycle`` on SQLite's own connection, in ``Store.driver()``'s write transaction:
    the same named statements, without a layer between them and SQLite while every
    other writer waits. Returns the cycle and whether the claim stopped at a capped
    agent's task (the caller claims the rest: ``_claim_rest``)."""
    out = Cycle()
    moment = datetime.now(UTC)
    now = _stamp(moment)
    drafts: list[EventIn | Draft] = []
    if finished:
        end, record = _statements(store, "tasks_complete", narrow=True, driver=True)
        batch = _json([_item(f) for f in finished])
        done = [_read_ended(r) for r in db.execute(end, {"batch": batch, "now": now})]
        current = {(r.id, r.attempt) for r in done}
        out.stale = [f for f in finished if (f.task_id, f.attempt) not in current]
        if done:
            if out.stale:  # only the current ones' execution records
                batch = _json([_item(f) for f in finished if (f.task_id, f.attempt) in current])
            db.execute(record, {"batch": batch, "now": now})
            order = {f.task_id: n for n, f in enumerate(finished)}
            done.sort(key=lambda r: order[r.id])
            drafts += [task_event(r, "succeeded", attempt=r.attempt) for r in done]
    short = False
    if limit:
        promote, pick, take = _statements(store, "tasks_claim", bool(agents), driver=True)
        params: dict[str, Any] = {"now": now, "n": limit}
        if agents:
            params["agents"] = _json(list(agents))
        db.execute(promote, params)
        taken = []
        for task_id, _, _, capped in db.execute(pick, params).fetchall():
            if capped:  # counted under the claim's rules: left to _claim_rest
                short = True
                break
            taken.append(task_id)
        if taken:
            params.update(ids=_json(taken), worker_id=worker_id,
                          lease=_stamp(moment + timedelta(seconds=lease_s)))
            claimed = [_read_task(r) for r in db.execute(take, params)]
            claimed.sort(key=lambda r: (-r.priority, r.seq))
            drafts += [task_event(r, "started", attempt=r.attempt, worker_id=worker_id)
                       for r in claimed]
            out.claimed = [Task(r) for r in claimed]
    if drafts:
        events.insert_sqlite(db, drafts, [events.dump_json(d.payload) for d in drafts],
                             ids.uuid7_many(len(drafts)), moment)
    return out, short


async def _claim_rest(store: Store, worker_id: str, agents: list[str] | None, limit: int,
                      lease_s: float) -> list[Task]:
    """The rest of a claim that a one-step round trip left short (a capped agent's
    task, or scheduled tasks it promoted), in a transaction of its own."""
    async with store.write() as conn:
        more = await _claim_in(store, conn, worker_id, agents, limit, lease_s)
        if more:
            await events.append_in(store, conn, [task_event(
                r, "started", attempt=r.attempt, worker_id=worker_id) for r in more])
        else:
            store.nothing_changed(conn)
    return [Task(r) for r in more]


async def claim(store: Store, worker_id: str, agents: list[str] | None = None,
                limit: int = 1, lease_s: float = tasks.DEFAULT_LEASE) -> list[Task]:
    """Claim up to ``limit`` ready tasks, most urgent first, then oldest."""
    if not 1 <= limit <= MAX_CLAIM:
        raise InvalidInput(f"limit must be between 1 and {MAX_CLAIM}", code="bad_limit")
    return (await cycle(store, worker_id, [], agents, limit, lease_s)).claimed


async def complete(store: Store, task_id: str, attempt: int, output: dict[str, Any] | None,
                   tokens: Any = None, cost: float | None = None,
                   release_locks: bool = True) -> Task:
    """End the attempt as succeeded; 409 if it is not the task's running attempt."""
    item = Finished(task_id, attempt, output or {}, tokens, cost, release_locks)
    async with store.write() as conn:
        done, _ = await _complete_in(store, conn, [item], full=True)
        if not done:
            await _refuse(conn, task_id, attempt, "complete")
        drafts = await _release(store, conn, done, [item])
        await events.append_in(store, conn, [*drafts,
                                             task_event(done[0], "succeeded", attempt=attempt)])
    return Task(done[0])


async def heartbeat(store: Store, task_id: str, attempt: int,
                    lease_s: float = tasks.DEFAULT_LEASE) -> Task:
    """Extend the lease (and the attempt's locks'); the answer says whether
    cancellation was requested. 409 if the attempt is not the running one."""
    async with store.write() as conn:
        if not await _beat_in(store, conn, [(task_id, attempt, True)], lease_s):
            await _refuse(conn, task_id, attempt, "heartbeat")
        row = (await conn.execute(select(table).where(t.id == task_id))).one()
    return Task(row)


async def beat_many(store: Store, running: list[tuple[str, int, bool]],
                    lease_s: float = tasks.DEFAULT_LEASE) -> dict[str, bool]:
    """Extend the leases of ``running`` (task id, attempt, took locks) in one statement.

    Returns task id -> cancellation requested, for the attempts still current; one
    missing was superseded (its lease lapsed and the task moved on).
    """
    if not running:
        return {}
    async with store.write() as conn:
        beaten = await _beat_in(store, conn, running, lease_s)
        store.nothing_changed(conn)
    return beaten


# -------------------------------------------------------------- statements


_EXTRA = {  # the columns a statement returns after the task's own
    "tasks_claim": (column("promoted", Integer), column("capped", Integer)),
    "tasks_cycle": (column("promoted", Integer), column("capped", Integer), column("done"),
                    column("notified", Integer)),
}


# what a round trip needs of the attempts it ends (and their execution records)
_ENDED = (t.id, t.agent, t.attempt, t.correlation_id, t.worker_id, t.started_at, t.finished_at)
# rows of SQLite's own connection as SQLAlchemy would give them
_read_task = read_sqlite_task
_read_ended = reader(list(_ENDED))


def _named(name: str, dialect: str, agents: bool = False, n: int = 0,
           narrow: bool = False, driver: bool = False) -> list[Any]:
    """The named statements, columns filled in, typed so rows come back as the table's
    (``driver``: as text for ``Store.driver()``, whose rows are named tuples).

    A claim's size is written into the text (``/*n*/``), not sent as a parameter:
    with ``LIMIT $1`` PostgreSQL's generic plan assumes a large limit, so it would
    plan the statement again on every execution (about a millisecond of its CPU per
    round trip); with the number in the text each size gets one cached plan.
    ``narrow``: the attempts a statement ends come back with the columns of ``_ENDED``
    only (a round trip's cycle always asks for that).
    """
    ended = _ENDED if narrow else tuple(table.c)
    prefix = "t." if dialect == "postgresql" else ""
    agent_filter = {"postgresql": "AND t.agent = ANY(:agents)",
                    "sqlite": "AND t.agent IN (SELECT value FROM json_each(:agents))"}
    out: list[Any] = []
    for statement in sql.statements(name, dialect):
        # the claimed rows come back whole, the ended ones as asked
        returns = (tuple(table.c) if "RETURNING /*columns*/" in statement
                   else ended if "RETURNING /*ended columns*/" in statement else None)
        statement = (statement
                     .replace("/*ended columns*/", ", ".join(prefix + c.name for c in ended))
                     .replace("/*columns*/", ", ".join(prefix + c.name for c in table.c))
                     .replace("/*agents*/", agent_filter[dialect] if agents else "")
                     .replace("/*n*/", str(int(n))))
        if driver:  # sqlite3 takes :name parameters as they are
            out.append(sql.for_driver(statement) if dialect == "postgresql" else statement)
            continue
        clause = text(statement)
        if dialect == "postgresql" and name in _EXTRA:
            clause = clause.columns(*table.c, *_EXTRA[name])  # type: ignore[assignment]
        elif returns:
            clause = clause.columns(*returns)  # type: ignore[assignment]
        out.append(clause)
    return out


_STATEMENTS: dict[tuple[str, str, bool, int, bool, bool], list[Any]] = {}


def _statements(store: Store, name: str, agents: bool = False, n: int = 0,
                narrow: bool = False, driver: bool = False) -> list[Any]:
    key = (name, store.dialect, agents, n, narrow, driver)
    if key not in _STATEMENTS:
        _STATEMENTS[key] = _named(name, store.dialect, agents, n, narrow, driver)
    return _STATEMENTS[key]


def _stamp(moment: datetime) -> str:
    """A moment as SQLite stores it (naive UTC text that sorts as time)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------- complete


async def _complete_in(store: Store, conn: AsyncConnection, finished: list[Finished],
                       full: bool = False) -> tuple[list[Any], list[Finished]]:
    """End the current ones of ``finished`` as succeeded: (their rows, the stale ones).
    The rows have the columns of ``_ENDED``, or all of them when ``full``."""
    batch = _json([_item(f) for f in finished])
    if store.dialect == "postgresql":
        [stmt] = _statements(store, "tasks_complete", narrow=not full)
        done = list((await conn.execute(stmt, {"batch": batch,
                                               "ids": [f.task_id for f in finished]})).all())
    else:
        tasks_stmt, attempts_stmt = _statements(store, "tasks_complete", narrow=not full)
        now = _stamp(datetime.now(UTC))
        done = list((await conn.execute(tasks_stmt, {"batch": batch, "now": now})).all())
        if len(done) < len(finished):  # only the current ones' execution records
            ids = {r.id for r in done}
            batch = _json([_item(f) for f in finished if f.task_id in ids])
        if done:
            await conn.execute(attempts_stmt, {"batch": batch, "now": now})
    current = {(r.id, r.attempt) for r in done}
    order = {f.task_id: n for n, f in enumerate(finished)}
    done.sort(key=lambda r: order[r.id])
    return done, [f for f in finished if (f.task_id, f.attempt) not in current]


def _item(f: Finished) -> dict[str, Any]:
    item: dict[str, Any] = {"id": f.task_id, "attempt": f.attempt, "output": f.output}
    if f.tokens is not None:
        item["tokens"] = f.tokens
    if f.cost is not None:
        item["cost"] = f.cost
    return item


async def _release(store: Store, conn: AsyncConnection, done: list[Any],
                   finished: list[Finished]) -> list[EventIn]:
    """Give back the locks of the ended attempts that may hold some."""
    may_hold = {f.task_id for f in finished if f.took_locks}
    ended = [row for row in done if row.id in may_hold]
    if not ended:
        return []
    return await locks.release_owner_in(store, conn, [locks.task_owner(row.id) for row in ended],
                                        max(row.finished_at for row in ended))


async def _refuse(conn: AsyncConnection, task_id: str, attempt: int, action: str) -> None:
    """Raise why ``attempt`` of ``task_id`` may not ``action``: unknown, or not current."""
    row = (await conn.execute(select(t.status, t.attempt).where(t.id == task_id))).first()
    if row is None:
        raise NotFound(f"no task {task_id}", code="task_not_found")
    raise Conflict(
        f"cannot {action} task {task_id} attempt {attempt}: the task is {row.status} "
        f"at attempt {row.attempt}", code="stale_attempt",
        details={"task_id": task_id, "attempt": attempt, "current_attempt": row.attempt,
                 "status": row.status})


# --------------------------------------------------------------- heartbeat


async def _beat_in(store: Store, conn: AsyncConnection, running: list[tuple[str, int, bool]],
                   lease_s: float) -> dict[str, bool]:
    batch = _json([{"id": i, "attempt": n} for i, n, _ in running])
    [stmt] = _statements(store, "tasks_heartbeat")
    if store.dialect == "postgresql":
        rows = (await conn.execute(stmt, {"batch": batch, "lease_s": lease_s})).all()
        now = (await conn.execute(select(utcnow()))).scalar_one() if any(
            held for _, _, held in running) else None
    else:
        now = datetime.now(UTC)
        rows = (await conn.execute(stmt, {
            "batch": batch, "now": _stamp(now),
            "lease": _stamp(now + timedelta(seconds=lease_s))})).all()
    beaten = {r.id: bool(r.cancel_requested) for r in rows}
    for task_id, _, held in running:
        if held and task_id in beaten:
            assert now is not None
            await locks.renew_owner_in(conn, locks.task_owner(task_id), lease_s, now)
    return beaten


# ------------------------------------------------------------------- claim


async def _claim_in(store: Store, conn: AsyncConnection, worker_id: str,
                    agents: list[str] | None, limit: int, lease_s: float) -> list[Any]:
    """Claim up to ``limit`` tasks within the caller's write transaction."""
    if store.dialect == "postgresql":
        claimed, promoted, capped = await _claim_pg(store, conn, worker_id, agents, limit,
                                                    lease_s)
        if promoted and len(claimed) < limit:  # now visible: try once more
            more, _, capped = await _claim_pg(store, conn, worker_id, agents,
                                              limit - len(claimed), lease_s)
            claimed += more
    else:
        claimed, capped = await _claim_sqlite(store, conn, worker_id, agents, limit, lease_s)
    if capped and len(claimed) < limit:
        chosen = await _choose(store, conn, agents, limit - len(claimed))
        if chosen:
            claimed += await _take(conn, [r.id for r in chosen], worker_id, lease_s)
    claimed.sort(key=lambda r: (-r.priority, r.seq))
    return claimed


async def _claim_pg(store: Store, conn: AsyncConnection, worker_id: str,
                    agents: list[str] | None, limit: int, lease_s: float
                    ) -> tuple[list[Any], int, int]:
    [stmt] = _statements(store, "tasks_claim", bool(agents), limit)
    params: dict[str, Any] = {"worker_id": worker_id, "lease_s": lease_s}
    if agents:
        params["agents"] = list(agents)
    rows = (await conn.execute(stmt, params)).all()
    return [r for r in rows if r.id is not None], rows[0].promoted, rows[0].capped


async def _claim_sqlite(store: Store, conn: AsyncConnection, worker_id: str,
                        agents: list[str] | None, limit: int, lease_s: float
                        ) -> tuple[list[Any], bool]:
    promote, pick, take = _statements(store, "tasks_claim", bool(agents))
    now = datetime.now(UTC)
    params: dict[str, Any] = {"now": _stamp(now), "n": limit}
    if agents:
        params["agents"] = _json(list(agents))
    await conn.execute(promote, params)
    picked = (await conn.execute(pick, params)).all()
    taken = []
    for row in picked:  # the rows before the first capped agent's
        if row.capped:
            break
        taken.append(row.id)
    capped = len(taken) < len(picked)
    if not taken:
        return [], capped
    params.update(ids=_json(taken), worker_id=worker_id,
                  lease=_stamp(now + timedelta(seconds=lease_s)))
    claimed = list((await conn.execute(take, params)).all())
    return claimed, capped


async def _take(conn: AsyncConnection, ids: list[str], worker_id: str,
                lease_s: float) -> list[Any]:
    """Claim the chosen rows (the capped agents' path)."""
    now: datetime = (await conn.execute(select(utcnow()))).scalar_one()
    return list((await conn.execute(
        update(table).where(t.id.in_(ids)).values(
            status=Status.RUNNING.value, attempt=t.attempt + 1, worker_id=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_s), started_at=now, updated_at=now)
        .returning(*table.c))).all())


async def _lock_agent(store: Store, conn: AsyncConnection, agent: str, wait: bool) -> bool:
    """Hold ``agent``'s claim lock until the transaction ends; without ``wait``,
    give up (False) if another claimer holds it."""
    if store.dialect != "postgresql":
        return True  # SQLite: the write transaction already excludes every other claimer
    key = zlib.crc32(f"agentos.agent:{agent}".encode())
    if wait:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        return True
    return bool((await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                    {"k": key})).scalar_one())


def _full_agents() -> Any:
    """Agents at their concurrency limit: running tasks >= the highest limit of any
    of their versions (none uncapped). Small: it only reads running tasks."""
    av = agent_versions.c
    busy = (select(t.agent, func.count().label("running"))
            .where(t.status == Status.RUNNING.value).group_by(t.agent).subquery())
    cap = av.definition[("limits", "concurrency")].as_integer()
    return (select(av.name).select_from(agent_versions.join(busy, busy.c.agent == av.name))
            .group_by(av.name, busy.c.running)
            .having(and_(func.count() == func.count(cap), busy.c.running >= func.max(cap))))


async def _choose(store: Store, conn: AsyncConnection, agents: list[str] | None,
                  limit: int) -> list[Any]:
    """Up to ``limit`` ready tasks in claim order, within each agent's concurrency limit.

    Agents already at their limit are left out in SQL. The first read usually
    suffices; when an agent fills up during this claim, its other rows are
    skipped and the next read leaves it out, so a capped agent's backlog never
    hides other agents' tasks (each further read rules out one more agent).
    """
    chosen: list[Any] = []
    room: dict[str, int] = {}  # capped agents seen so far: slots left in this claim
    limits: dict[tuple[str, str], Any] = {}
    first = True
    while True:
        want = (limit - len(chosen)) * 2  # over-fetch: some may be held back by limits
        stmt = select(table).where(t.status == Status.PENDING.value,
                                   t.agent.not_in(_full_agents()))
        if agents:
            stmt = stmt.where(t.agent.in_(agents))
        if full := [agent for agent, left in room.items() if left == 0]:
            stmt = stmt.where(t.agent.not_in(full))
        if chosen:  # our own row locks do not hide them from us
            stmt = stmt.where(t.id.not_in([r.id for r in chosen]))
        rows = list((await conn.execute(stmt.order_by(t.priority.desc(), t.seq).limit(want)
                                        .with_for_update(skip_locked=True))).all())
        if unknown := [r for r in rows if (r.agent, r.agent_version) not in limits]:
            limits.update(await limits_of(conn, unknown))
        caps: dict[str, int] = {}
        for r in rows:
            cap = limits.get((r.agent, r.agent_version), {}).get("concurrency")
            if cap and r.agent not in room:
                caps[r.agent] = max(cap, caps.get(r.agent, 0))
        for agent in sorted(caps):  # sorted: two claimers lock agents in the same order
            # a later read may only try: waiting out of order could deadlock
            if not await _lock_agent(store, conn, agent, wait=first):
                room[agent] = 0
                continue
            running = (await conn.execute(select(func.count()).select_from(table).where(
                t.agent == agent, t.status == Status.RUNNING.value))).scalar_one()
            room[agent] = max(caps[agent] - running, 0)
        for row in rows:
            if row.agent in room:
                if room[row.agent] == 0:
                    continue
                room[row.agent] -= 1
            chosen.append(row)
            if len(chosen) == limit:
                return chosen
        if len(rows) < want:  # nothing more is ready
            return chosen
        first = False
