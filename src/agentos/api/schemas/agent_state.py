"""/api/v1/agents/{name}/state, /api/v1/workers/{id} and DELETE /api/v1/agents/{name}."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class RunningTask(BaseModel):
    id: str
    agent: str
    version: str
    attempt: int
    worker_id: str | None
    priority: int
    started_at: str | None
    lease_expires_at: str | None
    cancel_requested: bool


class HeldLock(BaseModel):
    resource: str
    token: int
    owner: str | None
    task_id: str | None
    agent: str | None
    expires_at: str | None


class Hold(BaseModel):
    reason: Literal["budget", "capability"]
    ref: str
    until: str | None  # null: until someone changes it
    since: str | None
    detail: dict[str, Any]


class ServingWorker(BaseModel):
    id: str
    alive: bool
    last_heartbeat_at: str | None


class LastError(BaseModel):
    task_id: str
    at: str | None
    error: dict[str, Any] | None


class ActiveRun(BaseModel):
    id: str
    workflow: str
    version: str
    started_at: str | None


class AgentState(BaseModel):
    agent: str
    status: Literal["idle", "busy", "waiting", "error", "disabled"]
    running: int
    queue_depth: int  # pending + scheduled
    pending: int
    scheduled: int
    running_tasks: list[RunningTask]
    held_locks: list[HeldLock]
    workflow_runs: list[ActiveRun]  # running runs with a task of this agent unfinished
    held: list[Hold]
    workers: list[ServingWorker]
    last_heartbeat_at: str | None
    last_error: LastError | None
    published_versions: list[str]


class WorkerState(BaseModel):
    id: str
    host: str
    pid: int
    agents: list[str] | None
    concurrency: int
    status: str  # idle | busy | stopped | lost
    alive: bool
    running: int
    started_at: str | None
    last_heartbeat_at: str | None
    stopped_at: str | None
    running_tasks: list[RunningTask]
    held_locks: list[HeldLock]
    unloadable: dict[str, str] = {}  # agents whose handler it cannot load, and why


class AgentDeleted(BaseModel):
    agent: str
    cancelled_tasks: int
    versions: int
    config: int
    capabilities: int
    holds: int
    metric_series: int
    budgets: int
