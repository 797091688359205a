"""What a lock request is and what it gets: ``Claim``, ``Grant``, ``Result``; the
limits a request is checked against, and the ``lock.*`` events."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from agentos import events, ids, resources
from agentos.errors import InvalidInput, Unavailable
from agentos.events import EventIn
from agentos.store.errors import BUSY

DEFAULT_TTL = 30.0  # seconds
DEFAULT_PRIORITY = 5
MAX_TTL = 3600.0  # seconds; the server's limit is AGENTOS_LOCK_MAX_TTL_S
MAX_RESOURCES = 100  # per acquire-many
WAIT_SLACK = 5.0  # seconds a waiter's entry outlives its wait (a vanished client's then lapses)


@dataclass(frozen=True)
class Claim:
    """Who asks for a lock, and on what terms."""

    owner: str
    priority: int = DEFAULT_PRIORITY
    ttl_s: float = DEFAULT_TTL
    metadata: dict[str, Any] | None = None
    task_id: str | None = None  # held for this task (released when its attempt ends)
    agent: str | None = None
    attempt: int | None = None  # with task_id: refused unless this attempt is running

    def holder(self) -> dict[str, Any]:
        """The lock row's holder columns for this claim."""
        return {"owner": self.owner, "priority": self.priority, "metadata": self.metadata,
                "task_id": self.task_id, "agent": self.agent}


@dataclass(frozen=True)
class Grant:
    resource: str
    token: int
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "token": self.token,
                "expires_at": self.expires_at.isoformat()}


@dataclass(frozen=True)
class Result:
    """An acquire's answer: every grant, or the queue position on the resource it waits for."""

    grants: tuple[Grant, ...] = ()
    position: int | None = None
    waiting_for: str | None = None
    entry: int | None = None  # the queue entry's id, where the join said it

    @property
    def granted(self) -> bool:
        return self.position is None

    def to_dict(self, many: bool = False) -> dict[str, Any]:
        if not self.granted:
            return {"granted": False, "position": self.position, "resource": self.waiting_for}
        if not many:
            return {"granted": True, **self.grants[0].to_dict()}
        return {"granted": True, "locks": [g.to_dict() for g in self.grants]}


def validate(resource: str | None, claim: Claim, wait_s: float = 0, *,
             max_ttl_s: float = MAX_TTL, max_wait_s: float | None = None) -> None:
    """400 for a request that could never be right; nothing is written before this
    (``resource`` None: the claim alone, for a pool checked by ``pool``)."""
    if resource is not None:
        resources.check(resource)
    if not claim.owner or len(claim.owner) > 255:
        raise InvalidInput("owner must be 1 to 255 characters", code="bad_owner")
    if not 1 <= claim.priority <= 10:
        raise InvalidInput(f"priority must be between 1 and 10, not {claim.priority}",
                           code="bad_priority")
    if not 0 < claim.ttl_s <= max_ttl_s:
        raise InvalidInput(f"ttl_s must be above 0 and at most {max_ttl_s:g}, not "
                           f"{claim.ttl_s:g}", code="bad_ttl",
                           details={"max_ttl_s": max_ttl_s})
    if wait_s < 0 or (max_wait_s is not None and wait_s > max_wait_s):
        raise InvalidInput(f"wait_s must be between 0 and {max_wait_s:g}", code="bad_wait",
                           details={"max_wait_s": max_wait_s})


def task_owner(task_id: str) -> str:
    """The owner id of every lock a task's attempts take."""
    return f"task:{task_id}"


# ----------------------------------------------------------------- events


def event(kind: str, resource: str, owner: str | None, token: int | None,
          task_id: str | None = None, **payload: Any) -> EventIn:
    """The ``lock.<kind>`` event of a change made by the full path."""
    body = {"resource": resource, "type": resources.type_of(resource), "owner": owner,
            "token": token, **({"task_id": task_id} if task_id else {}), **payload}
    return EventIn(type=f"lock.{kind}", source="locks", payload=body, causation_id=task_id)


def hot_event(resource: str, owner: str, **payload: Any) -> dict[str, Any]:
    """The parameters of the event a one-statement path appends, but for what only the
    statement knows (on PostgreSQL it adds that to the payload itself)."""
    return {"event_id": ids.uuid7(), "rank": int(events.Priority.NORMAL),
            "created_at": datetime.now(UTC),
            "payload": events.dump_json({"resource": resource,
                                         "type": resources.type_of(resource),
                                         "owner": owner, **payload})}


def claim_params(resource: str, claim: Claim, **payload: Any) -> dict[str, Any]:
    """The parameters of a statement that takes or queues for a lock for ``claim``."""
    return {"resource": resource, "type": resources.type_of(resource), "owner": claim.owner,
            "priority": claim.priority, "ttl_s": float(claim.ttl_s),
            "metadata": None if claim.metadata is None else events.dump_json(claim.metadata),
            "task_id": claim.task_id, "agent": claim.agent,
            **hot_event(resource, claim.owner, **payload,
                        **({"task_id": claim.task_id} if claim.task_id else {}),
                        priority=claim.priority)}


log = logging.getLogger(__name__)
T = TypeVar("T")
DEADLOCK_TRIES = 4  # a transaction the database chose as a deadlock's victim, run again


async def again_if_victim(op: Callable[[], Awaitable[T]]) -> T:
    """Run the write transaction ``op`` makes, again (up to ``DEADLOCK_TRIES`` times, a
    few random milliseconds apart) when the database rolled it back whole as the victim
    of a deadlock or a serialization conflict (``database_busy``). Each try starts from
    scratch, so nothing of a rolled-back try is kept. Waiters of a pool queue in every
    candidate's queue and grants leave those queues, so a hand-over and a waiter settling
    can lock the same rows in crossed orders on PostgreSQL: one of them is refused, and
    retrying it is the cure."""
    for attempt in range(DEADLOCK_TRIES):
        try:
            return await op()
        except Unavailable as exc:
            if exc.code != BUSY or attempt == DEADLOCK_TRIES - 1:
                raise
            log.info("a lock transaction was refused (%s); trying again", exc,
                     extra={"action": "lock_retried", "try": attempt + 1})
            await asyncio.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
    raise AssertionError("unreachable")
