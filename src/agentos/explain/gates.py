"""The gates that may hold a task, as a registry (SPEC §2.12).

A gate is a pure decision over ``Facts``, the snapshot of a task and what surrounds it
(read once, in one read transaction): it returns a ``Finding`` when it applies, else
None. ``blocking`` findings are what keeps the task from running (or, once it runs,
from ending); the others say where it stands. The first blocking finding, in gate
order, is the one that holds the task now.

A concept adds a gate from its own module, without touching the others':

    def _held_by_quota(facts: gates.Facts) -> gates.Finding | None:
        quota = facts.extra["quota"]           # what its ``read`` returned
        ...

    gates.register("quota", _held_by_quota, statuses=gates.WAITING, order=15,
                   read=quota_of)              # async (conn, task) -> Any, same transaction

The built-in gates are in ``explain.task_gates``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.tasks import Status, Task

WAITING = frozenset({Status.PENDING, Status.SCHEDULED})
RUNNING = frozenset({Status.RUNNING})
ENDED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


@dataclass(frozen=True)
class LockState:
    """One resource the task needs: its holder (None: free) and its live queue."""

    resource: str
    holder: dict[str, Any] | None  # owner, task_id, agent, expires_at, lapsed
    queue: list[dict[str, Any]]  # owner, priority, task_id, agent, queued_at (serving order)
    position: int | None  # the task's place in that queue (1 first), None: not queued


@dataclass(frozen=True)
class Facts:
    """A task and what surrounds it, as one read transaction saw it."""

    task: Task  # with its attempts
    now: datetime  # the database's clock
    definition: dict[str, Any] | None  # its agent version's (None: that version is gone)
    agent_tasks: dict[str, int] = field(default_factory=dict)  # the agent's by status
    running: list[dict[str, Any]] = field(default_factory=list)  # the agent's running tasks
    workers: list[dict[str, Any]] = field(default_factory=list)  # registered, not stopped
    holds: list[dict[str, Any]] = field(default_factory=list)  # the agent's, in force
    locks: list[LockState] = field(default_factory=list)  # the declared resources
    resource_error: str | None = None  # why the declared resources cannot be named
    ahead: int | None = None  # pending tasks before it in claim order
    step: dict[str, Any] | None = None  # the workflow step it runs for
    approvals: list[dict[str, Any]] = field(default_factory=list)  # its handler awaits
    sub_tasks: list[dict[str, Any]] = field(default_factory=list)  # unfinished, it started
    cancelled_by: dict[str, Any] | None = None  # the audit row of the cancel request
    extra: dict[str, Any] = field(default_factory=dict)  # registered gates' own reads


@dataclass(frozen=True)
class Finding:
    """What one gate says about the task."""

    gate: str
    summary: str  # one line, for people
    blocking: bool = True  # keeps the task from running (or from ending)
    until: datetime | None = None  # when it lifts by itself, if it does
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "blocking": self.blocking, "summary": self.summary,
                "until": self.until.isoformat() if self.until else None,
                "details": self.details}


Check = Callable[[Facts], Finding | None]
Read = Callable[[AsyncConnection, Task], Awaitable[Any]]


@dataclass(frozen=True)
class Gate:
    name: str
    check: Check
    statuses: frozenset[Status]  # the task statuses it is asked about
    order: int  # lower first: the first blocking finding holds the task
    read: Read | None = None  # its own facts, into ``Facts.extra[name]``


_GATES: dict[str, Gate] = {}


def register(name: str, check: Check, *, statuses: frozenset[Status], order: int,
             read: Read | None = None) -> None:
    """Add (or replace) the gate ``name``."""
    _GATES[name] = Gate(name, check, statuses, order, read)


def for_status(status: Status) -> list[Gate]:
    """The gates asked about a task in ``status``, in order."""
    return sorted((g for g in _GATES.values() if status in g.statuses),
                  key=lambda g: (g.order, g.name))


def decide(facts: Facts) -> list[Finding]:
    """Every finding of the gates that apply to the task, in gate order."""
    found = []
    for gate in for_status(facts.task.status):
        finding = gate.check(facts)
        if finding is not None:
            found.append(finding)
    return found
