"""Tasks, their attempts (execution records) and the workers that run them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentos.api.schemas.common import Model, Page, SeqPage, Timestamp

FINAL = ("succeeded", "failed", "cancelled")  # statuses a task never leaves on its own


class Attempt(Model):
    """One attempt at a task: who ran it, how it ended, its error and what it used."""

    number: int
    worker_id: str | None
    outcome: str  # running, succeeded, failed, timeout, lost, cancelled, deferred
    started_at: Timestamp | None
    ended_at: Timestamp | None = None
    duration_ms: float | None = None
    error: dict[str, Any] | None = None  # {"type", "message", "traceback"?, "stderr"?}
    tokens: Any = None
    cost: float | None = None


class Task(Model):
    """A task: what to run, its state, and (once ended) its output or error."""

    id: str
    seq: int
    agent: str
    version: str
    input: dict[str, Any]
    priority: int
    status: str  # pending, scheduled, running, succeeded, failed, cancelled
    attempt: int
    max_retries: int
    timeout_s: float
    run_at: Timestamp | None
    lease_expires_at: Timestamp | None
    worker_id: str | None
    started_at: Timestamp | None
    cancel_requested: bool
    idempotency_key: str | None
    correlation_id: str
    causation_id: str | None
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: Timestamp
    updated_at: Timestamp
    finished_at: Timestamp | None
    capability: str | None = None  # the capability of its agent it needs (waits while off)
    type: str | None = None  # what kind of work it is (the producer's word for it)
    metadata: dict[str, Any] | None = None  # the producer's own labels

    @property
    def final(self) -> bool:
        """Whether the task has ended (succeeded, failed or cancelled)."""
        return self.status in FINAL


class TaskDetail(Task):
    """A task with every attempt, oldest first (the running one last)."""

    attempts: list[Attempt] = Field(default_factory=list)


class SubmittedTask(Task):
    """A task of a batch submit: ``created`` is False when its idempotency key was
    used before (this is that first task)."""

    created: bool


class SubmittedBatch(Model):
    tasks: list[SubmittedTask]


class TaskPage(SeqPage[Task]):
    """Tasks in submission order, or newest first with ``order=desc``."""

    ITEMS = "tasks"
    tasks: list[Task]


class LockGrant(Model):
    """A lock held for an attempt: the fencing token to pass along with every write."""

    resource: str
    token: int
    expires_at: Timestamp


class ClaimedTask(Task):
    """A task claimed over the HTTP worker protocol, with the locks its agent declares."""

    locks: list[LockGrant] = Field(default_factory=list)
    model: dict[str, Any] | None = None  # its agent's model, resolved (a model_ref's)


class AttemptRef(Model):
    id: str
    attempt: int


class Claimed(Model):
    """A claim's answer: the tasks to run now; ``stale``: completions it carried that
    were no longer current (not recorded)."""

    tasks: list[ClaimedTask]
    stale: list[AttemptRef] = Field(default_factory=list)


class Heartbeat(Model):
    lease_expires_at: Timestamp | None
    cancel_requested: bool


class WorkerLock(Model):
    resource: str
    token: int
    task_id: str | None
    agent: str | None
    expires_at: Timestamp | None


class Worker(Model):
    """A worker instance: where it runs, what it serves, whether it is alive."""

    id: str
    host: str
    pid: int
    agents: list[str] | None  # None: every agent
    concurrency: int
    running: int
    status: str  # idle, busy, lost, stopped
    alive: bool
    started_at: Timestamp
    last_heartbeat_at: Timestamp
    stopped_at: Timestamp | None
    locks: list[WorkerLock] = Field(default_factory=list)
    # agents whose handler it cannot load, and why: it does not claim their tasks
    unloadable: dict[str, str] = Field(default_factory=dict)


class WorkerPage(Page[Worker]):
    ITEMS = "workers"
    CURSOR = ("next_after", "after")
    workers: list[Worker]
    next_after: str | None = None
