"""Resource locks (SPEC §2.6): leases, fencing tokens and a durable priority queue.

State lives in two tables. ``locks`` has one row per resource ever locked: the
holder (owner, priority, lease, metadata, the task that holds it) and ``token``,
the last fencing token handed out; the row outlives releases, so the token grows
with every grant and is never reused, across restarts. ``lock_waiters`` is the
queue, served by priority (higher first), then arrival. Their statements, and the
rules those keep on both backends, are the store's (``store.locks``).

    model.py     Claim, Grant, Result; request limits; the lock.* events
    state.py     state changes: take, queue, release, renew, expire, force-release
    waiting.py   waiting for a grant: acquire and acquire-many with a wait
    pool.py      acquire-any: the first free resource of a list or a prefix
    attempts.py  a task attempt's locks: its agent's declared resources, for either
                 kind of worker, and which attempts hold or wait for a lock in their
                 name (imported as ``agentos.locks.attempts``)
    reads.py     what the locks look like now

The package re-exports what callers use: ``locks.acquire(...)``, ``locks.Claim``.
"""

from agentos.locks.model import (
    DEFAULT_PRIORITY,
    DEFAULT_TTL,
    MAX_RESOURCES,
    MAX_TTL,
    Claim,
    Grant,
    Result,
    task_owner,
    validate,
)
from agentos.locks.pool import Pool, acquire_any, pool
from agentos.locks.reads import get, held_by_workers, list_locks, page
from agentos.locks.state import (
    force_release,
    release,
    release_many,
    release_owner_in,
    renew,
    renew_owner_in,
    run_sweeper,
    sweep,
)
from agentos.locks.waiting import acquire, acquire_many
from agentos.store.locks import CHANNEL

__all__ = ["CHANNEL", "DEFAULT_PRIORITY", "DEFAULT_TTL", "MAX_RESOURCES", "MAX_TTL", "Claim",
           "Grant", "Pool", "Result", "acquire", "acquire_any", "acquire_many",
           "force_release", "get", "held_by_workers", "list_locks", "page", "pool", "release",
           "release_many", "release_owner_in", "renew", "renew_owner_in", "run_sweeper",
           "sweep", "task_owner", "validate"]
