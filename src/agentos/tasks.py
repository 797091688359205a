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

import random
from dataclasses import dataclass
from datetime import timedelta
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


Priority = Annotated[int, Field(ge=1, le=10)]


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


# The fields an idempotency key stands for, in the order a conflict lists them. A field
# the producer leaves out, which the server fills in (version, limits, run_at,
# correlation_id), matches whatever the first task got.
IDEMPOTENT_FIELDS = ("agent", "version", "input", "priority", "max_retries", "timeout_s",
                     "run_at", "correlation_id", "causation_id")
_FILLED_IN = {"version", "max_retries", "timeout_s", "run_at", "correlation_id"}
_COLUMN = {"version": "agent_version"}  # the task row's name for a field


def differences(item: TaskIn, first: Any) -> list[str]:
    """The fields of ``item`` that differ from ``first``, the task (row) or the item its
    idempotency key was first used for: a retry of the same request has none."""
    out = []
    for name in IDEMPOTENT_FIELDS:
        mine = getattr(item, name)
        theirs = getattr(first, name if isinstance(first, TaskIn) else _COLUMN.get(name, name))
        if mine is None and name in _FILLED_IN:
            continue
        if mine != theirs:
            out.append(name)
    return out


def idempotency_conflict(key: str, fields: list[str], task_id: str | None = None,
                         index: int | None = None) -> Conflict:
    """409: an idempotency key used again for a different task (as payment APIs answer)."""
    details: dict[str, Any] = {"idempotency_key": key, "fields": fields}
    if task_id is not None:
        details["task_id"] = task_id
    if index is not None:
        details["index"] = index
    return Conflict(f"idempotency key {key!r} was used for a different task: "
                    f"{', '.join(fields)} differ", code="idempotency_conflict", details=details)
