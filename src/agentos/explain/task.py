"""Why is this task not running (or not ending), or why did it end (SPEC §2.12).

``explain(store, task_id)`` reads the task and what surrounds it in one read
transaction (``read``: only the facts its status needs, each one statement of
``store.explain``), asks every gate registered for that status (``gates.decide``) and
answers with the findings in gate order; the first blocking one is the gate that
holds the task now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import locks, resources
from agentos.errors import AgentOSError, NotFound
from agentos.explain import gates, task_gates  # noqa: F401  (task_gates registers the built-ins)
from agentos.explain.gates import RUNNING, Facts, LockState
from agentos.store import Store
from agentos.store import agent_config as store_config
from agentos.store import agent_state as store_state
from agentos.store import explain as store_explain
from agentos.tasks import Attempt, Status, Task

RUNNING_READ = 100  # the agent's running tasks read when its concurrency is capped


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def explain(store: Store, task_id: str) -> dict[str, Any]:
    """The task's findings, the gate that holds it now (None when nothing does) and a
    one-line summary; 404 for an unknown task."""
    facts = await read(store, task_id)
    found = gates.decide(facts)
    holding = next((f for f in found if f.blocking), None)
    lead = holding or (found[0] if found else None)
    t = facts.task
    summary = lead.summary if lead else t.status.value
    if holding is None and t.status is Status.PENDING:
        summary = f"ready: {summary}"  # nothing holds it: the next free slot takes it
    return {
        "task_id": t.id, "agent": t.agent, "version": t.agent_version,
        "status": t.status.value, "attempt": t.attempt,
        "gate": holding.gate if holding else None,
        "summary": summary,
        "until": _iso(holding.until) if holding else None,
        "findings": [f.to_dict() for f in found],
        "workflow": facts.step, "checked_at": facts.now.isoformat(),
    }


async def read(store: Store, task_id: str) -> Facts:
    """The task's ``Facts``: what the gates of its status look at, and what the gates
    registered with a ``read`` add, all in one read transaction."""
    async with store.read() as conn:
        row = await store_explain.task(conn, task_id)
        if row is None:
            raise NotFound(f"no task {task_id}", code="task_not_found",
                           details={"task_id": task_id})
        status = Status(row.status)
        attempts: tuple[Attempt, ...] = ()
        if status not in RUNNING:  # how earlier attempts ended (a running one has none to say)
            attempts = tuple(Attempt.from_row(r) for r in await store.tasks.attempts(conn,
                                                                                      task_id))
        task = Task.from_row(row, attempts)
        step = await store_explain.step_of(conn, task_id)
        facts: dict[str, Any] = {
            "task": task, "now": row.now, "definition": row.definition,
            "step": dict(step._mapping) if step else None}
        if status is Status.CANCELLED:
            cancel = await store_explain.cancel_request(
                conn, task_id, step.run_id if step else None, task.agent, task.finished_at)
            facts["cancelled_by"] = dict(cancel._mapping) if cancel else None
        elif status in RUNNING:
            facts.update(await _running(conn, task))
        elif status in gates.WAITING:
            facts.update(await _waiting(conn, task, row.definition, row.now))
        facts["extra"] = {g.name: await g.read(conn, task) for g in gates.for_status(status)
                          if g.read is not None}
    return Facts(**facts)


async def _running(conn: AsyncConnection, task: Task) -> dict[str, Any]:
    return {
        "workers": await store_state.workers_of(conn),
        "approvals": [dict(r._mapping) for r in await store_explain.approvals_awaited(
            conn, task.id)],
        "sub_tasks": [dict(r._mapping) for r in await store_explain.sub_tasks(
            conn, task.id, task.correlation_id)],
    }


async def _waiting(conn: AsyncConnection, task: Task, definition: dict[str, Any] | None,
                   now: datetime) -> dict[str, Any]:
    counts = await store_state.task_counts(conn, task.agent)
    capped = bool(((definition or {}).get("limits") or {}).get("concurrency"))
    out: dict[str, Any] = {
        "agent_tasks": counts,
        "running": await store_state.running(conn, agent=task.agent, limit=RUNNING_READ)
        if capped and counts["running"] else [],
        "workers": await store_state.workers_of(conn),
        "holds": await store_config.holds(conn, task.agent),
        "ahead": await store_explain.ahead(conn, task.priority, task.seq)
        if task.status is Status.PENDING else None,
    }
    try:
        names = resources.render((definition or {}).get("resources", []), task.input)
    except AgentOSError as exc:
        out["resource_error"] = exc.message
        return out
    rows, waiters = await store_explain.locks_of(conn, names)
    out["locks"] = _lock_states(names, rows, waiters, now, locks.task_owner(task.id))
    return out


def _lock_states(names: list[str], rows: list[Any], waiters: list[Any], now: datetime,
                 me: str) -> list[LockState]:
    """Each resource's holder and live queue (serving order), and ``me``'s place in it."""
    by_name = {r.resource: r for r in rows}
    states = []
    for name in names:
        row = by_name.get(name)
        holder = None
        if row is not None and row.owner is not None:
            holder = {"owner": row.owner, "task_id": row.task_id, "agent": row.agent,
                      "token": row.token, "expires_at": _iso(row.expires_at),
                      "lapsed": row.expires_at < now}
        queue = [{"owner": w.owner, "priority": w.priority, "task_id": w.task_id,
                  "agent": w.agent, "queued_at": _iso(w.created_at)}
                 for w in waiters if w.resource == name and w.expires_at >= now]
        position = next((n for n, w in enumerate(queue, 1) if w["owner"] == me), None)
        states.append(LockState(name, holder, queue, position))
    return states
