"""Reads for an agent's and a worker's live state, from the tables the queue, the locks
and the workers keep (nothing of its own is stored), and the deletion of an agent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import database_now
from agentos.store.routes import refresh_patterns
from agentos.store.tables import agent_versions, locks, tasks, workers, workflow_runs

t = tasks.c
L = locks.c
w = workers.c
UNFINISHED = ("pending", "scheduled", "running")


async def now(conn: AsyncConnection) -> Any:
    return await database_now(conn)


async def task_counts(conn: AsyncConnection, agent: str) -> dict[str, int]:
    """How many of the agent's tasks wait or run, by status (the (agent, status) index)."""
    rows = (await conn.execute(select(t.status, func.count()).where(
        t.agent == agent, t.status.in_(UNFINISHED)).group_by(t.status))).all()
    return {status: 0 for status in UNFINISHED} | {r[0]: int(r[1]) for r in rows}


async def running(conn: AsyncConnection, *, agent: str | None = None,
                  worker_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Running tasks of an agent or of a worker, oldest start first."""
    stmt = select(t.id, t.agent, t.agent_version, t.attempt, t.worker_id, t.priority,
                  t.started_at, t.lease_expires_at, t.cancel_requested).where(
        t.status == "running")
    if agent is not None:
        stmt = stmt.where(t.agent == agent)
    if worker_id is not None:
        stmt = stmt.where(t.worker_id == worker_id)
    rows = (await conn.execute(stmt.order_by(t.started_at).limit(limit))).all()
    return [dict(r._mapping) for r in rows]


async def last_failure(conn: AsyncConnection, agent: str) -> dict[str, Any] | None:
    """The agent's task that failed for good last."""
    row = (await conn.execute(select(t.id, t.error, t.finished_at).where(
        t.agent == agent, t.status == "failed").order_by(t.finished_at.desc()).limit(1))).first()
    return dict(row._mapping) if row else None


async def last_finished(conn: AsyncConnection, agent: str) -> dict[str, Any] | None:
    """The agent's task that ended last (succeeded, failed or cancelled)."""
    row = (await conn.execute(select(t.id, t.status, t.finished_at).where(
        t.agent == agent, t.status.in_(("succeeded", "failed", "cancelled")))
        .order_by(t.finished_at.desc()).limit(1))).first()
    return dict(row._mapping) if row else None


async def held_locks(conn: AsyncConnection, *, agent: str | None = None,
                     worker_id: str | None = None) -> list[dict[str, Any]]:
    """Locks held for task attempts of an agent, or of a worker's running tasks."""
    stmt = select(L.resource, L.token, L.owner, L.task_id, L.agent, L.expires_at).where(
        L.owner.is_not(None), L.task_id.is_not(None))
    if agent is not None:
        stmt = stmt.where(L.agent == agent)
    if worker_id is not None:
        stmt = stmt.join(tasks, t.id == L.task_id).where(t.worker_id == worker_id,
                                                         t.status == "running")
    return [dict(r._mapping) for r in (await conn.execute(stmt.order_by(L.resource))).all()]


async def shown_workers(conn: AsyncConnection, rows: list[dict[str, Any]]
                       ) -> list[dict[str, Any]]:
    """Workers' rows as they are shown: a remote worker's (``pid`` 0, its presence
    written at most every ``instances.PRESENCE_EVERY``) ``running`` counted now and its
    ``status`` busy or idle from that count, unless stopped; an in-process worker's as
    its last beat wrote them. The count is one grouped read of the running tasks, made
    only when the rows hold a remote worker (``tasks.worker_id`` has no index: each
    read goes through every running task)."""
    remote = {r["id"] for r in rows if r["pid"] == 0 and r["status"] != "stopped"}
    if not remote:
        return rows
    found: dict[str, int] = {w_id: n for w_id, n in (await conn.execute(
        select(t.worker_id, func.count()).where(t.status == "running",
                                                t.worker_id.in_(remote))
        .group_by(t.worker_id))).all()}
    for row in rows:
        if row["id"] in remote:
            row["running"] = int(found.get(row["id"], 0))
            row["status"] = "busy" if row["running"] else "idle"
    return rows


async def workers_of(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every worker that has not stopped (a handful: filtered by agent in Python)."""
    rows = (await conn.execute(select(workers).where(w.status != "stopped"))).all()
    return await shown_workers(conn, [dict(r._mapping) for r in rows])


async def worker(conn: AsyncConnection, worker_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(workers).where(w.id == worker_id))).first()
    return (await shown_workers(conn, [dict(row._mapping)]))[0] if row else None


async def published_versions(conn: AsyncConnection, agent: str) -> list[str]:
    av = agent_versions.c
    rows = (await conn.execute(select(av.version).where(av.name == agent,
                                                        av.status == "published"))).all()
    return [r[0] for r in rows]


async def delete_versions(conn: AsyncConnection, agent: str) -> int:
    """Remove every version of an agent (their search rows go with them, and their
    triggers' patterns from what appends queue for routing)."""
    av = agent_versions.c
    removed = (await conn.execute(delete(agent_versions).where(av.name == agent))).rowcount
    await refresh_patterns(conn)
    return int(removed or 0)


async def active_runs(conn: AsyncConnection, agent: str, limit: int = 100
                      ) -> list[dict[str, Any]]:
    """Running workflow runs that have a task of ``agent`` waiting or running (joined on
    the correlation id every task of a run carries)."""
    wr = workflow_runs.c
    rows = (await conn.execute(select(wr.id, wr.workflow, wr.version, wr.created_at).distinct()
                               .join(tasks, t.correlation_id == wr.correlation_id).where(
        t.agent == agent, t.status.in_(UNFINISHED), wr.status == "running")
        .order_by(wr.created_at).limit(limit))).all()
    return [dict(r._mapping) for r in rows]
