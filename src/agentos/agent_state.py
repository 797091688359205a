"""Live state of an agent and of a worker instance (SPEC §2.9), computed when asked
from what the queue, the locks and the workers already keep: nothing is stored twice.

    status    disabled  no published version (nothing routes to it, no task can start)
              busy      tasks of it are running
              waiting   tasks of it are queued (ready, scheduled, or held) and none runs
              error     idle, and the last task that ended failed for good
              idle      none of the above

``held`` lists what keeps its tasks from being claimed (a spent budget, a capability
switched off).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from agentos import registry
from agentos.errors import NotFound
from agentos.store import Store
from agentos.store import agent_config as store_config
from agentos.store import agent_state as store_state
from agentos.worker import instances


class Status(StrEnum):
    DISABLED = "disabled"
    BUSY = "busy"
    WAITING = "waiting"
    ERROR = "error"
    IDLE = "idle"


def status_of(published: bool, running: int, queued: int, last_failed: bool) -> Status:
    """The agent's status from its facts; the first rule that holds decides."""
    if not published:
        return Status.DISABLED
    if running:
        return Status.BUSY
    if queued:
        return Status.WAITING
    if last_failed:
        return Status.ERROR
    return Status.IDLE


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _serves(worker_agents: list[str] | None, agent: str) -> bool:
    return worker_agents is None or agent in worker_agents


async def of_agent(store: Store, agent: str) -> dict[str, Any]:
    """Status, running tasks, held locks, active workflow runs (those with a task of it
    waiting or running), queue depth, holds, last heartbeat and error."""
    await registry.get(store, agent)  # 404 for an unknown agent
    async with store.read() as conn:
        now = await store_state.now(conn)
        counts = await store_state.task_counts(conn, agent)
        running = await store_state.running(conn, agent=agent)
        held_locks = await store_state.held_locks(conn, agent=agent)
        runs = await store_state.active_runs(conn, agent)
        holds = await store_config.holds(conn, agent)
        failure = await store_state.last_failure(conn, agent)
        finished = await store_state.last_finished(conn, agent)
        published = await store_state.published_versions(conn, agent)
        workers = await store_state.workers_of(conn)
    cutoff = now - timedelta(seconds=instances.ALIVE_WITHIN)
    serving = [w for w in workers if _serves(w["agents"], agent)
               or any(r["worker_id"] == w["id"] for r in running)]
    beats = [w["last_heartbeat_at"] for w in serving]
    queued = counts["pending"] + counts["scheduled"]
    status = status_of(bool(published), counts["running"], queued,
                       finished is not None and finished["status"] == "failed")
    return {
        "agent": agent,
        "status": status.value,
        "running": counts["running"],
        "queue_depth": queued,
        "pending": counts["pending"],
        "scheduled": counts["scheduled"],
        "running_tasks": [_task(r) for r in running],
        "held_locks": [_lock(r) for r in held_locks],
        "workflow_runs": [{"id": r["id"], "workflow": r["workflow"], "version": r["version"],
                           "started_at": _iso(r["created_at"])} for r in runs],
        "held": [_hold(h) for h in holds],
        "workers": [{"id": w["id"], "alive": w["last_heartbeat_at"] >= cutoff,
                     "last_heartbeat_at": _iso(w["last_heartbeat_at"])} for w in serving],
        "last_heartbeat_at": _iso(max(beats)) if beats else None,
        "last_error": None if failure is None else {
            "task_id": failure["id"], "at": _iso(failure["finished_at"]),
            "error": failure["error"]},
        "published_versions": sorted(published),
    }


async def of_worker(store: Store, worker_id: str) -> dict[str, Any]:
    """One worker instance: its record, running tasks and the locks they hold."""
    async with store.read() as conn:
        now = await store_state.now(conn)
        row = await store_state.worker(conn, worker_id)
        if row is None:
            raise NotFound(f"no worker {worker_id}", code="worker_not_found",
                           details={"id": worker_id})
        running = await store_state.running(conn, worker_id=worker_id)
        held_locks = await store_state.held_locks(conn, worker_id=worker_id)
    alive = row["status"] != "stopped" and \
        row["last_heartbeat_at"] >= now - timedelta(seconds=instances.ALIVE_WITHIN)
    status = row["status"] if row["status"] == "stopped" or alive else "lost"
    return {
        "id": row["id"], "host": row["host"], "pid": row["pid"], "agents": row["agents"],
        "concurrency": row["concurrency"], "status": status, "alive": alive,
        "running": len(running), "started_at": _iso(row["started_at"]),
        "last_heartbeat_at": _iso(row["last_heartbeat_at"]),
        "stopped_at": _iso(row["stopped_at"]),
        "running_tasks": [_task(r) for r in running],
        "held_locks": [_lock(r) for r in held_locks],
        "unloadable": row.get("unloadable") or {},
    }


def _task(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "agent": r["agent"], "version": r["agent_version"],
            "attempt": r["attempt"], "worker_id": r["worker_id"], "priority": r["priority"],
            "started_at": _iso(r["started_at"]),
            "lease_expires_at": _iso(r["lease_expires_at"]),
            "cancel_requested": r["cancel_requested"]}


def _lock(r: dict[str, Any]) -> dict[str, Any]:
    return {"resource": r["resource"], "token": r["token"], "owner": r["owner"],
            "task_id": r["task_id"], "agent": r["agent"], "expires_at": _iso(r["expires_at"])}


def _hold(h: dict[str, Any]) -> dict[str, Any]:
    return {"reason": h["reason"], "ref": h["ref"], "until": _iso(h["until"]),
            "since": _iso(h["since"]), "detail": h["detail"]}
