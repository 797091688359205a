"""Workflows' queries: definitions (``workflow_versions``), runs, their steps, the tasks
that run them, transitions, waits for events and artifacts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import bindparam, case, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import database_now, upsert, utcnow
from agentos.store.tables import (
    approvals,
    consumers,
    events,
    task_attempts,
    tasks,
    workflow_artifacts,
    workflow_runs,
    workflow_step_tasks,
    workflow_steps,
    workflow_transitions,
    workflow_versions,
    workflow_waits,
)

if TYPE_CHECKING:
    from agentos.store.base import Store

wv = workflow_versions.c
runs = workflow_runs.c
steps = workflow_steps.c
links = workflow_step_tasks.c
waits = workflow_waits.c
artifacts = workflow_artifacts.c

# notified by every commit that makes a run running (a start, a rerun): what an idle
# engine waits for, where a running one is woken by every append
RUNS_CHANNEL = "agentos_workflow_runs"

def events_needed(consumer: str, running: Sequence[str]) -> Any:
    """Retention's rule for workflows (a condition on ``events``): the chain of a run
    whose status is one of ``running``, and every event the engine's consumer (named
    ``consumer``) has not read yet: a run may be waiting for it."""
    cursor = select(consumers.c.cursor_seq).where(consumers.c.name == consumer
                                                  ).scalar_subquery()
    return or_(events.c.correlation_id.in_(select(runs.correlation_id).where(
        runs.status.in_(list(running)))), events.c.seq > func.coalesce(cursor, 2**62))


async def now(conn: AsyncConnection) -> datetime:
    value: datetime = await database_now(conn)
    return value


# ---------------------------------------------------------------- definitions


async def version(conn: AsyncConnection, name: str, ver: str) -> Any | None:
    return (await conn.execute(select(workflow_versions).where(
        wv.name == name, wv.version == ver))).first()


async def versions(conn: AsyncConnection, name: str) -> list[Any]:
    """Every version of a workflow, highest first."""
    return list((await conn.execute(select(workflow_versions).where(wv.name == name)
                                    .order_by(wv.sort_key.desc()))).all())


async def latest(conn: AsyncConnection, name: str, statuses: Sequence[str]) -> Any | None:
    """The highest version of ``name`` in one of ``statuses``."""
    return (await conn.execute(select(workflow_versions).where(
        wv.name == name, wv.status.in_(statuses)).order_by(wv.sort_key.desc()).limit(1))
    ).first()


async def all_versions(conn: AsyncConnection, *, status: str | None, after: str | None
                       ) -> list[Any]:
    """Every version (of ``status``), by name, for a listing that keeps one per name."""
    stmt = select(workflow_versions)
    if status is not None:
        stmt = stmt.where(wv.status == status)
    if after is not None:
        stmt = stmt.where(wv.name > after)
    return list((await conn.execute(stmt.order_by(wv.name, wv.sort_key.desc()))).all())


async def insert_version(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(workflow_versions).values(**values))


async def update_version(conn: AsyncConnection, name: str, ver: str,
                         values: dict[str, Any]) -> None:
    await conn.execute(update(workflow_versions).where(wv.name == name, wv.version == ver)
                       .values(updated_at=utcnow(), **values))


async def delete_version(conn: AsyncConnection, name: str, ver: str) -> None:
    await conn.execute(delete(workflow_versions).where(wv.name == name, wv.version == ver))


@asynccontextmanager
async def savepoint(conn: AsyncConnection) -> AsyncIterator[None]:
    """A savepoint in ``conn``'s transaction: what the block wrote is undone if it
    raises, and the transaction goes on (on PostgreSQL a failed statement no longer
    spoils the whole transaction)."""
    inline = getattr(conn, "sync", None)  # SQLite's write connection: a sync one inside
    if inline is not None:
        with inline.begin_nested():
            yield
        return
    async with conn.begin_nested():
        yield


# ----------------------------------------------------------------------- runs


async def insert_runs(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.execute(insert(workflow_runs), rows)


async def run_by_key(conn: AsyncConnection, key: str) -> Any | None:
    """The run started with idempotency ``key``, if any. On PostgreSQL the key is first
    locked to the end of the transaction (an advisory lock on its hash), so two starts
    with one key take turns: the second reads the run the first committed instead of
    both finding none and the second's insert failing on the unique index. (SQLite's
    write transaction holds the whole database already.)"""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 16))"),
                           {"k": f"agentos.workflow_run:{key}"})
    return (await conn.execute(select(workflow_runs).where(runs.idempotency_key == key))
            ).first()


async def get_run(conn: AsyncConnection, run_id: str) -> Any | None:
    return (await conn.execute(select(workflow_runs).where(runs.id == run_id))).first()


async def any_running(conn: AsyncConnection, status: str) -> bool:
    """Whether some run has ``status`` (one index probe)."""
    return (await conn.execute(select(runs.id).where(runs.status == status).limit(1))
            ).first() is not None


async def any_running_now(store: Store, status: str) -> bool:
    """``any_running`` in a read of its own (a follower asks it at every append): one
    statement on a driver connection, not through SQLAlchemy's pool (SQLite: the
    store's own read connection, ``read_row``)."""
    if store.dialect == "sqlite":
        return cast(Any, store).read_row(_SQLITE_ANY_RUNNING, {"status": status}) is not None
    async with store.driver_read() as db:
        if db is not None:
            return await (await db.execute(_PG_ANY_RUNNING, {"status": status},
                                           prepare=True)).fetchone() is not None
    async with store.read() as conn:
        return await any_running(conn, status)


_PG_ANY_RUNNING = "SELECT 1 FROM workflow_runs WHERE status = %(status)s LIMIT 1"
_SQLITE_ANY_RUNNING = "SELECT 1 FROM workflow_runs WHERE status = :status LIMIT 1"


async def busy(conn: AsyncConnection, status: str) -> bool:
    """Whether some run has ``status``, a step's task link is ``status`` or a wait is
    armed (one statement; the links' probe scans them)."""
    return bool((await conn.execute(select(or_(
        select(runs.id).where(runs.status == status).exists(),
        select(links.task_id).where(links.status == status).exists(),
        select(waits.run_id).exists())))).scalar())


async def lock_runs(conn: AsyncConnection, run_ids: Iterable[str]) -> list[Any]:
    """The runs' rows, locked to the end of the transaction in id order (so two
    transactions locking overlapping sets never deadlock)."""
    ids = sorted(set(run_ids))
    if not ids:
        return []
    return list((await conn.execute(select(workflow_runs).where(runs.id.in_(ids))
                                    .order_by(runs.id).with_for_update())).all())


async def page_runs(conn: AsyncConnection, *, workflow: str | None, status: str | None,
                    since: datetime | None, until: datetime | None, before: str | None,
                    limit: int) -> list[Any]:
    """Runs newest first (ids are UUIDv7: time-ordered), below ``before``."""
    stmt = select(workflow_runs)
    if workflow is not None:
        stmt = stmt.where(runs.workflow == workflow)
    if status is not None:
        stmt = stmt.where(runs.status == status)
    if since is not None:
        stmt = stmt.where(runs.created_at >= since)
    if until is not None:
        stmt = stmt.where(runs.created_at < until)
    if before is not None:
        stmt = stmt.where(runs.id < before)
    return list((await conn.execute(stmt.order_by(runs.id.desc()).limit(limit))).all())


_RUN_UPDATE = (update(workflow_runs).where(runs.id == bindparam("b_id"))
               .values(status=bindparam("b_status"), output=bindparam("b_output"),
                       error=bindparam("b_error"), finished_at=bindparam("b_finished_at"),
                       updated_at=utcnow()))


async def update_runs(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Set each run's status, output, error and finished_at (keys ``b_<column>``)."""
    if rows:
        await conn.execute(_RUN_UPDATE, rows)


async def children(conn: AsyncConnection, run_ids: Sequence[str]) -> list[Any]:
    """The running sub-runs of ``run_ids``."""
    if not run_ids:
        return []
    return list((await conn.execute(select(workflow_runs).where(
        runs.parent_run_id.in_(run_ids), runs.status == "running"))).all())


async def runs_of_correlation(conn: AsyncConnection, correlation_id: str) -> list[Any]:
    return list((await conn.execute(select(workflow_runs).where(
        runs.correlation_id == correlation_id).order_by(runs.id))).all())


# ---------------------------------------------------------------------- steps


async def insert_steps(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(workflow_steps), rows)


def _items_total(conn: AsyncConnection) -> Any:
    """How many items a fan-out step has (NULL for a step that is none), counted by
    the database, so that loading a run does not read its items."""
    items = steps["items"]  # (``steps.items`` is the collection's method)
    if conn.dialect.name == "postgresql":
        return case((func.jsonb_typeof(items) == "array", func.jsonb_array_length(items)))
    return case((func.json_type(items) == "array", func.json_array_length(items)))


async def steps_of(conn: AsyncConnection, run_ids: Sequence[str]) -> list[Any]:
    """The runs' steps; a fan-out's items are not read (``items_total`` counts them;
    ``items_of`` reads them)."""
    if not run_ids:
        return []
    columns: list[Any] = [c for c in workflow_steps.c if c.name != "items"]
    return list((await conn.execute(
        select(*columns, _items_total(conn).label("items_total"))
        .where(steps.run_id.in_(run_ids)))).all())


async def items_of(conn: AsyncConnection, run_id: str, step: str) -> list[Any] | None:
    """A fan-out step's items."""
    found: list[Any] | None = (await conn.execute(select(steps["items"]).where(
        steps.run_id == run_id, steps.step == step))).scalar()
    return found


STEP_COLUMNS = ("status", "round", "items_started", "items_ended", "items_failed",
                "output", "error", "approval_id", "sub_run_id", "started_at", "finished_at")
_STEP_UPDATE = (update(workflow_steps)
                .where(steps.run_id == bindparam("b_run_id"), steps.step == bindparam("b_step"))
                .values({c: bindparam(f"b_{c}") for c in STEP_COLUMNS}))
_STEP_ITEMS_UPDATE = _STEP_UPDATE.values(items=bindparam("b_items"))


async def update_steps(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Write each step's state (keys ``b_run_id``, ``b_step`` and ``b_<column>`` for
    every column of ``STEP_COLUMNS``; ``b_items`` too where a fan-out's items were
    set or cleared) in one executemany each."""
    plain = [r for r in rows if "b_items" not in r]
    with_items = [r for r in rows if "b_items" in r]
    if plain:
        await conn.execute(_STEP_UPDATE, plain)
    if with_items:
        await conn.execute(_STEP_ITEMS_UPDATE, with_items)


# ------------------------------------------------------- the tasks of steps


async def insert_links(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(workflow_step_tasks), rows)


async def ended_links(conn: AsyncConnection, task_ids: Sequence[str]) -> list[Any]:
    """The running links of ``task_ids`` whose task has ended, with how it ended
    (``task_status``, ``task_output``, ``task_error``)."""
    if not task_ids:
        return []
    t = tasks.c
    stmt = (select(workflow_step_tasks, t.status.label("task_status"),
                   t.output.label("task_output"), t.error.label("task_error"))
            .join(tasks, t.id == links.task_id)
            .where(links.task_id.in_(task_ids), links.status == "running",
                   t.status.in_(("succeeded", "failed", "cancelled"))))
    return list((await conn.execute(stmt)).all())


_LINK_UPDATE = (update(workflow_step_tasks).where(links.task_id == bindparam("b_task_id"))
                .values(status=bindparam("b_status"), output=bindparam("b_output"),
                        error=bindparam("b_error")))


async def update_links(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_LINK_UPDATE, rows)


async def outputs_of(conn: AsyncConnection, run_id: str, step: str, round_: int
                     ) -> list[Any]:
    """A step's children in item order, with their outputs."""
    return list((await conn.execute(select(links.item, links.status, links.output).where(
        links.run_id == run_id, links.step == step, links.round == round_)
        .order_by(links.item))).all())


async def running_tasks(conn: AsyncConnection, run_id: str, step: str | None = None
                        ) -> list[str]:
    """Ids of the tasks still running for a run (or one of its steps)."""
    stmt = select(links.task_id).where(links.run_id == run_id, links.status == "running")
    if step is not None:
        stmt = stmt.where(links.step == step)
    return [r.task_id for r in await conn.execute(stmt)]


def _links_with_tasks(source: Any) -> Any:
    t = tasks.c
    return (select(source, t.status.label("task_status"), t.attempt, t.agent,
                   t.created_at.label("task_created_at"),
                   t.finished_at.label("task_finished_at"))
            .join(tasks, t.id == source.c.task_id, isouter=True))


async def links_shown(conn: AsyncConnection, run_id: str, per_step: int) -> list[Any]:
    """The first ``per_step`` tasks of each of a run's steps (round, then item order),
    with their task's state now."""
    ranked = select(workflow_step_tasks, func.row_number().over(
        partition_by=links.step, order_by=(links.round, links.item)).label("n")).where(
        links.run_id == run_id).subquery()
    r = ranked.c
    return list((await conn.execute(_links_with_tasks(ranked).where(r.n <= per_step)
                                    .order_by(r.step, r.round, r.item))).all())


async def link_counts(conn: AsyncConnection, run_id: str) -> dict[str, int]:
    """How many tasks each of a run's steps has had."""
    rows = await conn.execute(select(links.step, func.count()).where(links.run_id == run_id)
                              .group_by(links.step))
    return {step: int(n) for step, n in rows}


async def links_page(conn: AsyncConnection, run_id: str, step: str,
                     after: tuple[int, int] | None, limit: int, *,
                     running: bool = False) -> list[Any]:
    """A step's tasks after (round, item) ``after`` in that order, at most ``limit``
    (``running``: only those not ended), with their task's state now."""
    stmt = _links_with_tasks(workflow_step_tasks).where(links.run_id == run_id,
                                                        links.step == step)
    if after is not None:
        stmt = stmt.where(or_(links.round > after[0],
                              (links.round == after[0]) & (links.item > after[1])))
    if running:
        stmt = stmt.where(links.status == "running")
    return list((await conn.execute(stmt.order_by(links.round, links.item).limit(limit))
                 ).all())


async def run_of_task(conn: AsyncConnection, task_id: str) -> Any | None:
    return (await conn.execute(select(workflow_step_tasks).where(links.task_id == task_id))
            ).first()


# ---------------------------------------------------------------- transitions


async def insert_transitions(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(workflow_transitions), rows)


async def transitions_page(conn: AsyncConnection, run_id: str, after: int | None,
                           limit: int) -> list[Any]:
    """A run's transitions after the one with id ``after``, oldest first, at most
    ``limit``."""
    c = workflow_transitions.c
    stmt = select(workflow_transitions).where(c.run_id == run_id)
    if after is not None:
        stmt = stmt.where(c.id > after)
    return list((await conn.execute(stmt.order_by(c.id).limit(limit))).all())


async def transitions_of(conn: AsyncConnection, run_id: str, last: int) -> list[Any]:
    """A run's latest ``last`` transitions, oldest first."""
    c = workflow_transitions.c
    rows = list((await conn.execute(select(workflow_transitions).where(c.run_id == run_id)
                                    .order_by(c.id.desc()).limit(last))).all())
    return rows[::-1]


# ---------------------------------------------------------------------- waits


async def insert_waits(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(workflow_waits), rows)


async def waits_for(conn: AsyncConnection, types: Iterable[str]) -> list[Any]:
    """The waits whose type glob may match one of ``types`` (the glob read as a LIKE
    pattern, '*' as '%' and '?' as '_': it may let through a few more, never fewer;
    the caller matches exactly), so a batch of events reads none of the waits for
    other types."""
    glob = waits.event_glob
    like = func.replace(func.replace(glob, "*", "%"), "?", "_")
    wanted = sorted(set(types))
    if not wanted:
        return []
    return list((await conn.execute(select(workflow_waits).where(
        or_(*(literal(t).like(like) for t in wanted))))).all())


async def take_waits(conn: AsyncConnection, keys: Sequence[tuple[str, str]]) -> set[
        tuple[str, str]]:
    """Delete the waits of (run, step) ``keys``; the ones that were there (a wait ends
    once, whoever deletes it first)."""
    taken: set[tuple[str, str]] = set()
    for run_id, step in keys:
        row = (await conn.execute(delete(workflow_waits).where(
            waits.run_id == run_id, waits.step == step).returning(waits.run_id))).first()
        if row is not None:
            taken.add((run_id, step))
    return taken


async def lapsed_waits(conn: AsyncConnection, limit: int) -> list[Any]:
    """Waits whose timeout passed, locked (others' are skipped on PostgreSQL)."""
    stmt = (select(workflow_waits).where(waits.expires_at <= utcnow())
            .order_by(waits.expires_at).limit(limit).with_for_update(skip_locked=True))
    return list((await conn.execute(stmt)).all())


async def waits_of(conn: AsyncConnection, run_id: str) -> list[Any]:
    return list((await conn.execute(select(workflow_waits).where(waits.run_id == run_id)))
                .all())


# ------------------------------------------------------------------ artifacts


async def put_artifact(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Store an artifact, replacing one of the same name in the run."""
    stmt = upsert(conn, workflow_artifacts).values(**values)
    changed = {k: stmt.excluded[k] for k in values if k not in ("run_id", "name")}
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[artifacts.run_id, artifacts.name],
        set_={**changed, "created_at": utcnow()}))


async def artifacts_of(conn: AsyncConnection, run_id: str) -> list[Any]:
    stmt = (select(artifacts.name, artifacts.step, artifacts.task_id, artifacts.kind,
                   artifacts.size, artifacts.created_at)
            .where(artifacts.run_id == run_id).order_by(artifacts.name))
    return list((await conn.execute(stmt)).all())


async def artifact(conn: AsyncConnection, run_id: str, name: str) -> Any | None:
    return (await conn.execute(select(workflow_artifacts).where(
        artifacts.run_id == run_id, artifacts.name == name))).first()


async def cancel_links(conn: AsyncConnection, run_id: str, step: str) -> list[str]:
    """Mark a step's running tasks cancelled here; their ids (to cancel in the queue)."""
    rows = await conn.execute(update(workflow_step_tasks).where(
        links.run_id == run_id, links.step == step, links.status == "running")
        .values(status="cancelled").returning(links.task_id))
    return [r.task_id for r in rows]


async def attempts_of(conn: AsyncConnection, task_ids: Sequence[str]) -> list[Any]:
    """The ended attempts of ``task_ids`` (their execution records)."""
    if not task_ids:
        return []
    c = task_attempts.c
    return list((await conn.execute(select(task_attempts).where(c.task_id.in_(task_ids))
                                    .order_by(c.task_id, c.number))).all())


async def anything_due(conn: AsyncConnection) -> bool:
    """Whether a pending approval or a wait has passed its timeout."""
    a = approvals.c
    due = select(a.id).where(a.status == "pending", a.expires_at <= utcnow()).limit(1)
    lapsed = select(waits.run_id).where(waits.expires_at <= utcnow()).limit(1)
    return bool((await conn.execute(due)).first() or (await conn.execute(lapsed)).first())
