"""Tasks (SPEC §2.4): the model, its states and legal transitions, the retry policy.

Pure code: ``queue.py`` applies these decisions to the database.

    submit ─▶ pending ◀─ promote ── scheduled ◀─ submit (run_at later)
                 │                     ▲
               claim                   │ fail / lost, retries left (backoff)
                 ▼                     │
              running ──────────────────┘
                 │ complete        │ fail / lost, none left    │ cancel
                 ▼                 ▼                            ▼
             succeeded           failed                     cancelled
    (an operator's retry moves failed or cancelled back to pending)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from agentos import inputs
from agentos.errors import Conflict

DEFAULT_MAX_RETRIES = 3
DEFAULT_TIMEOUT = 300.0  # seconds
DEFAULT_LEASE = 30.0  # seconds a claim lasts without a heartbeat
# handlers a worker runs at once: agents mostly wait on LLMs and tools
DEFAULT_CONCURRENCY = 16


class Status(StrEnum):
    PENDING = "pending"  # submit / promote / lease lost with retries left and no delay
    SCHEDULED = "scheduled"  # submit with a later run_at / fail with retries left
    RUNNING = "running"  # claim: a worker holds the lease of attempt N
    SUCCEEDED = "succeeded"  # complete
    FAILED = "failed"  # fail or lease lost with no retries left: dead-lettered
    CANCELLED = "cancelled"  # cancel

    @property
    def final(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


# a status by its value, without Enum's call (a batch of 1,000 builds 1,000 tasks)
_STATUS: dict[str, Status] = {s.value: s for s in Status}


# action -> states it may start from
TRANSITIONS: dict[str, frozenset[Status]] = {
    "promote": frozenset({Status.SCHEDULED}),
    "claim": frozenset({Status.PENDING}),
    "heartbeat": frozenset({Status.RUNNING}),
    "complete": frozenset({Status.RUNNING}),
    "fail": frozenset({Status.RUNNING}),
    "lose": frozenset({Status.RUNNING}),
    "cancel": frozenset({Status.PENDING, Status.SCHEDULED, Status.RUNNING}),
    "retry": frozenset({Status.FAILED, Status.CANCELLED}),
}


def check(current: Status, action: str, task_id: str) -> None:
    if current not in TRANSITIONS[action]:
        raise Conflict(f"cannot {action} task {task_id}: it is {current.value}",
                       code="invalid_transition",
                       details={"task_id": task_id, "status": current.value, "action": action})


class Outcome(StrEnum):
    """How one attempt ended (its execution record)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    LOST = "lost"  # the lease lapsed: the worker died or stalled
    CANCELLED = "cancelled"
    DEFERRED = "deferred"  # handed back to wait for a resource lock (not a retry)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: delay = min(max, initial * multiplier**(n-1))."""

    initial_s: float = 1.0
    max_s: float = 300.0
    multiplier: float = 2.0
    jitter: bool = True

    def delay(self, failures: int, rng: random.Random | None = None) -> timedelta:
        base = min(self.max_s, self.initial_s * self.multiplier ** max(failures - 1, 0))
        if self.jitter:
            # "equal jitter": at least half the delay, so gaps still grow
            base = base / 2 + (rng or random).random() * base / 2
        return timedelta(seconds=base)

    @classmethod
    def from_limits(cls, limits: dict[str, Any]) -> Backoff:
        b = limits.get("backoff") or {}
        return cls(**{k: b[k] for k in ("initial_s", "max_s", "multiplier", "jitter") if k in b})


@dataclass(frozen=True)
class Decision:
    """What to do after an attempt failed (or was lost)."""

    status: Status
    delay: timedelta | None  # for SCHEDULED: when to try again


def after_failure(attempts_used: int, max_retries: int, backoff: Backoff,
                  retryable: bool = True, rng: random.Random | None = None) -> Decision:
    """Retry with backoff while attempts remain, else dead-letter the task."""
    if retryable and attempts_used <= max_retries:
        return Decision(Status.SCHEDULED, backoff.delay(attempts_used, rng))
    return Decision(Status.FAILED, None)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's execution record (the running one is built from its task's row)."""

    number: int
    worker_id: str | None
    outcome: str
    started_at: datetime | None
    ended_at: datetime | None = None
    duration_ms: float | None = None
    error: dict[str, Any] | None = None
    tokens: Any = None
    cost: float | None = None

    @classmethod
    def from_row(cls, r: Any) -> Attempt:
        return cls(r.number, r.worker_id, r.outcome, r.started_at, r.ended_at, r.duration_ms,
                   r.error, r.tokens, r.cost)


@dataclass(slots=True)
class Task:
    """A task as stored (``attempts``: its execution records, when read with them)."""

    id: str
    seq: int
    agent: str
    agent_version: str
    input: dict[str, Any]
    priority: int
    status: Status
    attempt: int  # the current (or last) attempt's number
    retry_base: int  # attempts before the last operator retry
    max_retries: int
    timeout_s: float
    run_at: datetime
    lease_expires_at: datetime | None
    worker_id: str | None
    started_at: datetime | None  # the current (or last) attempt's start
    cancel_requested: bool
    idempotency_key: str | None
    correlation_id: str
    causation_id: str | None
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    capability: str | None = None  # the capability of its agent it needs
    type: str | None = None  # what kind of work it is (the producer's word for it)
    metadata: dict[str, Any] | None = None  # the producer's labels
    attempts: tuple[Attempt, ...] = ()

    @classmethod
    def from_row(cls, r: Any, attempts: tuple[Attempt, ...] = ()) -> Task:
        return cls(r.id, r.seq, r.agent, r.agent_version, r.input, r.priority,
                   _STATUS.get(r.status) or Status(r.status), r.attempt, r.retry_base,
                   r.max_retries, r.timeout_s, r.run_at, r.lease_expires_at, r.worker_id,
                   r.started_at, bool(r.cancel_requested), r.idempotency_key, r.correlation_id,
                   r.causation_id, r.output, r.error, r.created_at, r.updated_at,
                   r.finished_at, getattr(r, "capability", None), getattr(r, "type", None),
                   getattr(r, "metadata", None), attempts)

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        out = {
            "id": self.id, "seq": self.seq, "agent": self.agent, "version": self.agent_version,
            "input": self.input, "priority": self.priority, "status": self.status.value,
            "attempt": self.attempt, "max_retries": self.max_retries,
            "timeout_s": float(self.timeout_s), "run_at": iso(self.run_at),
            "lease_expires_at": iso(self.lease_expires_at), "worker_id": self.worker_id,
            "started_at": iso(self.started_at), "cancel_requested": self.cancel_requested,
            "idempotency_key": self.idempotency_key, "correlation_id": self.correlation_id,
            "causation_id": self.causation_id, "output": self.output, "error": self.error,
            "created_at": iso(self.created_at), "updated_at": iso(self.updated_at),
            "finished_at": iso(self.finished_at), "capability": self.capability,
            "type": self.type, "metadata": self.metadata,
        }
        if self.attempts:
            out["attempts"] = [{
                "number": x.number, "worker_id": x.worker_id, "outcome": x.outcome,
                "started_at": iso(x.started_at), "ended_at": iso(x.ended_at),
                "duration_ms": x.duration_ms, "error": x.error, "tokens": x.tokens,
                "cost": x.cost} for x in self.attempts]
        return out


Priority = Annotated[int, Field(ge=1, le=10)]
MAX_METADATA_BYTES = 8192  # of a task's metadata as JSON: labels, not data (that is input)


def _small_metadata(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES}")
    return value


class TaskTemplate(BaseModel):
    """What to run: the part of a task a schedule repeats on every tick."""

    model_config = ConfigDict(extra="forbid")

    agent: Annotated[str, Field(min_length=1, max_length=63)]
    version: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = 5
    max_retries: Annotated[int, Field(ge=0, le=100)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=7 * 86_400)] | None = None


class TaskIn(TaskTemplate):
    """A task as a producer submits it."""

    # later than now: the task starts "scheduled"; at most inputs.MAX_AHEAD away
    run_at: Annotated[AwareDatetime | None, AfterValidator(inputs.not_too_far)] = None
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    correlation_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    causation_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    # a capability the agent declares that the task needs: it waits while it is off
    capability: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")] | None = None
    # what kind of work it is (execute, train, analyze, ...), and labels of the producer's
    # own (who asked, for which customer): shown and filtered on, never read by the queue
    type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")] | None = None
    metadata: Annotated[dict[str, Any], AfterValidator(_small_metadata)] | None = None
