"""What a task's explanation reads (``agentos.explain``), each fact one statement, all in
the caller's read transaction; the domain reads only the facts the task's state needs
(an ended task: itself, its attempts and who cancelled it; a waiting one: its agent's
load, the workers, the holds and the locks it needs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import utcnow
from agentos.store.tables import (
    agent_versions,
    approvals,
    audit_log,
    lock_waiters,
    locks,
    tasks,
    workflow_runs,
    workflow_step_tasks,
)

t = tasks.c
AHEAD_COUNTED = 10_000  # tasks ahead in claim order counted at most (a count is a scan)
CANCEL_SLACK = timedelta(minutes=1)  # an audit row may be stamped just after the change
UNFINISHED = ("pending", "scheduled", "running")


async def task(conn: AsyncConnection, task_id: str) -> Any | None:
    """The task's row with its agent version's ``definition`` (None if that version is
    gone) and the database's clock as ``now``, or None: one statement."""
    av = agent_versions.c
    return (await conn.execute(
        select(tasks, av.definition, utcnow().label("now"))
        .select_from(tasks.outerjoin(agent_versions, and_(av.name == t.agent,
                                                          av.version == t.agent_version)))
        .where(t.id == task_id))).first()


async def ahead(conn: AsyncConnection, priority: int, seq: int) -> int:
    """Pending tasks before this one in claim order (priority, then arrival), counted up
    to ``AHEAD_COUNTED`` + 1 (the claim-order index)."""
    before = select(t.seq).where(t.status == "pending", or_(
        t.priority > priority, and_(t.priority == priority, t.seq < seq))
    ).limit(AHEAD_COUNTED + 1).subquery()
    return int((await conn.execute(select(func.count()).select_from(before))).scalar_one())


async def locks_of(conn: AsyncConnection, resources: list[str]
                   ) -> tuple[list[Any], list[Any]]:
    """The lock rows of ``resources`` and their waiters in serving order (priority, then
    arrival)."""
    if not resources:
        return [], []
    rows = (await conn.execute(select(locks).where(locks.c.resource.in_(resources)))).all()
    w = lock_waiters.c
    waiters = (await conn.execute(select(lock_waiters).where(w.resource.in_(resources))
                                  .order_by(w.resource, w.priority.desc(), w.id))).all()
    return list(rows), list(waiters)


async def cancel_request(conn: AsyncConnection, task_id: str, run_id: str | None,
                         agent: str, finished_at: datetime | None) -> Any | None:
    """The audit row of the request that cancelled the task: its own cancel, its
    workflow run's, or its agent's removal (the latest before it ended)."""
    log = audit_log.c
    named = [and_(log.action == "tasks.cancel", log.resource_id == task_id),
             and_(log.action == "agents.delete_agent", log.resource_id == agent)]
    if run_id is not None:
        named.append(and_(log.action == "workflow_runs.cancel", log.resource_id == run_id))
    stmt = select(audit_log).where(or_(*named), log.outcome == "ok")
    if finished_at is not None:
        stmt = stmt.where(log.at <= finished_at + CANCEL_SLACK)
    return (await conn.execute(stmt.order_by(log.seq.desc()).limit(1))).first()


async def step_of(conn: AsyncConnection, task_id: str) -> Any | None:
    """The workflow step the task runs for, with its run's status, or None."""
    s = workflow_step_tasks.c
    r = workflow_runs.c
    return (await conn.execute(
        select(s.run_id, s.step, s.round, s.item, r.workflow, r.status.label("run_status"))
        .join(workflow_runs, r.id == s.run_id).where(s.task_id == task_id))).first()


async def approvals_awaited(conn: AsyncConnection, task_id: str) -> list[Any]:
    """Pending approvals the task's handler asked for (``ctx.approval``)."""
    a = approvals.c
    return list((await conn.execute(select(a.id, a.title, a.role, a.expires_at, a.created_at)
                                    .where(a.status == "pending", a.task_id == task_id)
                                    .order_by(a.created_at))).all())


async def sub_tasks(conn: AsyncConnection, task_id: str, correlation_id: str,
                    limit: int = 20) -> list[Any]:
    """Unfinished tasks the task started (``ctx.call``: same correlation, the task as
    their cause), through the correlation index."""
    return list((await conn.execute(
        select(t.id, t.agent, t.status, t.attempt, t.run_at, t.worker_id)
        .where(t.correlation_id == correlation_id, t.causation_id == task_id,
               t.status.in_(UNFINISHED))
        .order_by(t.seq).limit(limit))).all())
