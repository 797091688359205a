"""Resource locks: holders, queues, grants."""

from __future__ import annotations

from typing import Any

from agentos.api.schemas.common import Model, Page, Timestamp
from agentos.api.schemas.tasks import LockGrant

__all__ = ["Acquired", "ForceReleased", "Holder", "Lock", "LockGrant", "LockPage", "Released",
           "Waiter"]


class Holder(Model):
    owner: str
    token: int
    priority: int | None
    acquired_at: Timestamp | None
    expires_at: Timestamp | None
    lapsed: bool  # the lease ran out; the sweeper frees it at once
    metadata: dict[str, Any] | None
    task_id: str | None  # held for this task's attempt
    agent: str | None


class Waiter(Model):
    position: int
    owner: str
    priority: int
    queued_at: Timestamp | None
    expires_at: Timestamp | None
    ttl_s: float
    task_id: str | None
    agent: str | None


class Lock(Model):
    """A resource's holder and queue, in the order it is served."""

    resource: str
    type: str
    last_token: int  # the last fencing token handed out
    holder: Holder | None
    queue: list[Waiter]


class LockPage(Page[Lock]):
    """Held locks and locks with waiters, by resource."""

    ITEMS = "locks"
    CURSOR = ("next_after", "after")
    locks: list[Lock]
    next_after: str | None = None


class Acquired(Model):
    """An acquire's answer. Granted: ``token`` and ``expires_at`` (one resource) or
    ``locks`` (several); not granted: the ``position`` in the queue of ``resource``."""

    granted: bool
    resource: str | None = None
    token: int | None = None
    expires_at: Timestamp | None = None
    position: int | None = None
    locks: list[LockGrant] | None = None


class Released(Model):
    released: bool
    resource: str
    token: int


class ForceReleased(Model):
    force_released: bool
    resource: str
    owner: str  # who held it
    token: int
