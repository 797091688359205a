"""Deleting an agent (SPEC §2.9): its versions leave the registry, and with them
everything kept about it for operating it: live config, capability switches, holds,
metrics and its own budgets. The event log and the audit log are never rewritten:
old events and audit rows naming it still read as they were, and so do its tasks
and LLM call records (history, like the log).

Refused (409 ``agent_busy``) while tasks of it run, unless ``force``: then every
unfinished task of it is cancelled first (a running one cooperatively: its worker
stops the handler at its next heartbeat). Tasks still waiting are cancelled either
way, since no version is left to run them. One ``agent.deleted`` event records it.
"""

from __future__ import annotations

from typing import Any

from agentos import cache, events, queue, registry
from agentos.errors import Conflict
from agentos.store import Store
from agentos.store import agent_config as store_config
from agentos.store import agent_state as store_state
from agentos.store import budgets as store_budgets
from agentos.store import metrics as store_metrics


async def delete(store: Store, agent: str, *, force: bool = False, by: str) -> dict[str, Any]:
    """Delete ``agent``; returns what went: versions, config overrides, capability
    switches, holds, metric series, budgets, and the tasks cancelled. The refusal, the
    cancellations and the deletions are one write transaction, of a few statements
    however many tasks the agent has."""
    await registry.get(store, agent)  # 404 for an unknown agent
    async with store.write() as conn:
        counts = await store_state.task_counts(conn, agent)
        if counts["running"] and not force:
            raise Conflict(f"{counts['running']} task(s) of {agent} are running: wait for "
                           "them, or delete with force=true to cancel them",
                           code="agent_busy",
                           details={"agent": agent, "running": counts["running"]})
        cancelled, drafts = await queue.cancel_agent_in(store, conn, agent)
        removed: dict[str, Any] = {"versions": await store_state.delete_versions(conn, agent)}
        removed |= await store_config.forget_agent(conn, agent)
        removed["metric_series"] = await store_metrics.forget_agent(conn, agent)
        removed["budgets"] = await store_budgets.forget_agent(conn, agent)
        await cache.changed(store, conn)
        await events.append_in(store, conn, [*drafts, events.Draft(
            type="agent.deleted", source=by, subject=agent,
            payload={"agent": agent, "force": force, "cancelled": cancelled, **removed})])
    # a task submitted meanwhile on PostgreSQL found the versions still there: it cannot
    # run now (on SQLite the write transaction above kept every submit out)
    async with store.write() as conn:
        late, drafts = await queue.cancel_agent_in(store, conn, agent)
        if drafts:
            await events.append_in(store, conn, drafts)
    return {"agent": agent, "cancelled_tasks": cancelled + late, **removed}
