"""An attempt's declared resources (SPEC §2.6): an agent's ``resources`` are locked,
all or none, for the attempt before its handler runs, whoever runs it: the
in-process worker, or the server for a remote worker's claim over HTTP. A task that
cannot get them within ``RESOURCE_WAIT`` is handed back to wait in the lock's queue
(its place kept) without holding a worker's slot. The locks are released when the
attempt ends, however it ends (``claims``, ``queue``), and renewed with its lease.
A remote worker's round trip (``claims.cycle``) looks which of the attempts it ends
hold or wait for a lock in their name (declared, or taken over HTTP as
``locks.task_owner``), so only those end where locks are given back.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from agentos import locks, queue, registry, resources
from agentos.errors import Conflict, Forbidden, InvalidInput
from agentos.store import Store
from agentos.tasks import Task

log = logging.getLogger("agentos.worker")

RESOURCE_WAIT = 1.0  # seconds a claimed task may wait for its resources in its slot
RESOURCE_RETRY = 5.0  # seconds until a task handed back for its resources runs anyway
RESOURCE_PLACE = 15.0  # seconds its place in the lock queue is kept meanwhile

Held = dict[str, locks.Grant]


async def take(store: Store, task: Task, definition: dict[str, Any], lease_s: float,
               wait: bool = True) -> Held | None:
    """Lock the agent's declared resources for the attempt ``task`` is running, or hand
    the task back (None) to wait in the queue of the one it could not get (``wait``
    False: None at once, nothing handed back). 400 for an input that names no valid
    resource, 403 for one the agent may not lock."""
    names = resources.render(definition.get("resources", []), task.input)
    if not names:
        return {}
    resources.check_permitted(task.agent, definition.get("permissions", {}).get("lock", []),
                              names)
    claim = locks.Claim(locks.task_owner(task.id), task.priority, lease_s,
                        task_id=task.id, agent=task.agent, attempt=task.attempt)
    got = await locks.acquire_many(store, names, claim,
                                   min(RESOURCE_WAIT, lease_s / 3) if wait else 0,
                                   RESOURCE_PLACE)
    if got.granted:
        return {g.resource: g for g in got.grants}
    if not wait:
        return None
    log.info("task %s waits for %s", task.id, got.waiting_for, extra={"action": "task_deferred"})
    try:
        await queue.defer(store, task.id, task.attempt, RESOURCE_RETRY, got.waiting_for)
    except Conflict as exc:  # a superseded attempt: nothing left to hand back
        log.warning("%s", exc.message, extra={"action": "result_rejected"})
    return None


async def take_for_claim(store: Store, claimed: list[Task], lease_s: float
                         ) -> list[tuple[Task, Held]]:
    """A remote worker's claim: the tasks it may run, each with the locks taken for it,
    in claim order. Free locks go to the tasks in that order (the most urgent, then the
    oldest, first); the others wait together for theirs, and one still waiting is
    handed back. A task whose resources can never be taken (bad input, not permitted)
    fails for good, as the worker would fail it."""
    held: dict[str, Held] = {}
    waiting: list[tuple[Task, dict[str, Any]]] = []
    for task in claimed:
        definition = await _definition(store, task.agent, task.agent_version)
        if not definition.get("resources"):
            held[task.id] = {}
            continue
        try:
            got = await take(store, task, definition, lease_s, wait=False)
        except (InvalidInput, Forbidden) as exc:
            await refuse(store, task, exc)
            continue
        if got is None:
            waiting.append((task, definition))
        else:
            held[task.id] = got
    late = await asyncio.gather(*(take(store, task, definition, lease_s)
                                  for task, definition in waiting))
    held.update((task.id, got) for (task, _), got in zip(waiting, late, strict=True)
                if got is not None)
    return [(task, held[task.id]) for task in claimed if task.id in held]


async def refuse(store: Store, task: Task, exc: InvalidInput | Forbidden) -> None:
    """Fail for good the attempt whose resources can never be taken (``take`` said why:
    its input names no valid resource, or its agent may not lock one)."""
    try:
        await queue.fail(store, task.id, task.attempt,
                         {"type": exc.code, "message": exc.message}, retryable=False)
    except Conflict as stale:  # a superseded attempt: its result no longer counts
        log.warning("%s", stale.message, extra={"action": "result_rejected"})


# published versions never change: each one's definition is read once per store
_DEFINITIONS: weakref.WeakKeyDictionary[Store, dict[tuple[str, str], dict[str, Any]]] = (
    weakref.WeakKeyDictionary())


async def _definition(store: Store, agent: str, version: str) -> dict[str, Any]:
    known = _DEFINITIONS.setdefault(store, {})
    if (agent, version) not in known:
        known[agent, version] = (await registry.get(store, agent, version)).definition
    return known[agent, version]
