"""The status changes the SQL makes, held against the domain's transition table
(``tasks.TRANSITIONS``) on both backends.

For every action the statements perform and every status a task can be in, the task
is put in that status through the queue itself and the action is tried: where the
table allows it the task reaches the action's status; everywhere else the action is
refused (a 409, or nothing claimed or reaped) and no row of any table changes. Each
way the SQL does an action is tried (a worker's completion goes by the one-step
cycle, by the cycle's transaction and by ``claims.complete``), so a statement that
drifts from the table fails here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from agentos import agent_spec, claims, queue, registry, tasks
from agentos.errors import Conflict
from agentos.store import Store
from agentos.store.tables import tasks as table
from agentos.tasks import Status, Task, TaskIn
from tests.snapshot import snapshot

LATER = timedelta(hours=1)


async def agent(store: Store) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": "a", "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
         "limits": {"backoff": {"initial_s": 60, "jitter": False}}}), publish=True)


async def make(store: Store, status: Status, retries: int = 0) -> Task:
    """A task in ``status``, got there by the queue's own actions."""
    run_at = datetime.now(UTC) + LATER if status is Status.SCHEDULED else None
    [(task, _)] = await queue.submit(store, [TaskIn(agent="a", max_retries=retries,
                                                    run_at=run_at)])
    if status in (Status.RUNNING, Status.SUCCEEDED, Status.FAILED):
        [task] = await claims.claim(store, "w1")
        if status is Status.SUCCEEDED:
            task = await claims.complete(store, task.id, task.attempt, {"ok": True})
        elif status is Status.FAILED:
            task = await queue.fail(store, task.id, task.attempt, {"message": "no"})
    elif status is Status.CANCELLED:
        task = await queue.cancel(store, task.id)
    assert task.status is status, (task.status, status)
    return task


async def lapse(store: Store, task: Task) -> None:
    """The lease of ``task`` (whatever its status) ran out: the reaper's sweep decides."""
    async with store.write() as conn:
        await conn.execute(update(table).where(table.c.id == task.id).values(
            lease_expires_at=datetime.now(UTC) - timedelta(seconds=5)))


async def cycle_complete(store: Store, task: Task, took_locks: bool) -> Any:
    done = await claims.cycle(store, "w1", [claims.Finished(
        task.id, task.attempt, {"ok": True}, took_locks=took_locks)])
    if done.stale:  # the worker's cycle drops a completion that does not count
        raise Conflict("not recorded", code="stale_attempt")


# action -> (the ways the SQL does it: name -> call, how a refusal shows)
Way = Callable[[Store, Task], Awaitable[Any]]
WAYS: dict[str, dict[str, Way]] = {
    "claim": {"claim": lambda s, t: claims.claim(s, "w2", limit=10),
              "cycle": lambda s, t: claims.cycle(s, "w2", [], limit=10)},
    "heartbeat": {"heartbeat": lambda s, t: claims.heartbeat(s, t.id, t.attempt)},
    "complete": {"complete": lambda s, t: claims.complete(s, t.id, t.attempt, {"ok": True}),
                 "cycle one step": lambda s, t: cycle_complete(s, t, False),
                 "cycle transaction": lambda s, t: cycle_complete(s, t, True)},
    "fail": {"fail": lambda s, t: queue.fail(s, t.id, t.attempt, {"message": "x"})},
    "lose": {"reap": lambda s, t: queue.reap(s)},
    "cancel": {"cancel": lambda s, t: queue.cancel(s, t.id)},
    "retry": {"retry": lambda s, t: queue.retry(s, t.id)},
}
# where an allowed action takes a task (status, cancel requested), with no retries left
REACHES = {
    "claim": (Status.RUNNING, False), "heartbeat": (Status.RUNNING, False),
    "complete": (Status.SUCCEEDED, False), "fail": (Status.FAILED, False),
    "lose": (Status.FAILED, False), "cancel": (Status.CANCELLED, False),
    "retry": (Status.PENDING, False),
}
CASES = [(action, way, status) for action, ways in WAYS.items() for way in ways
         for status in Status]


def test_every_action_of_the_table_is_tried() -> None:
    # promote (scheduled -> pending when due) is a step of every claim: its own test below
    assert set(WAYS) == set(tasks.TRANSITIONS) - {"promote"} == set(REACHES)


def refused(result: Any) -> bool:
    return result == [] or result == 0 or (hasattr(result, "claimed") and not result.claimed)


@pytest.mark.parametrize(("action", "way", "status"), CASES,
                         ids=[f"{a}-{w}-{s.value}".replace(" ", "_") for a, w, s in CASES])
async def test_the_sql_makes_exactly_the_tables_transitions(
        store: Store, action: str, way: str, status: Status) -> None:
    await agent(store)
    task = await make(store, status)
    call = WAYS[action][way]
    if action == "lose":
        await lapse(store, task)
    if status not in tasks.TRANSITIONS[action]:
        before = await snapshot(store)
        try:
            result = await call(store, task)
        except Conflict as exc:
            assert exc.code in ("invalid_transition", "stale_attempt"), exc.code
        else:
            assert refused(result), result
        assert await snapshot(store) == before
        return
    result = await call(store, task)
    if action == "lose":
        assert result == 1
    after = await queue.get(store, task.id)
    expected, asked = REACHES[action]
    if action == "cancel" and status is Status.RUNNING:  # asked to stop; its worker ends it
        expected, asked = Status.RUNNING, True
    assert (after.status, after.cancel_requested) == (expected, asked)
    assert after.attempt == task.attempt + (1 if action == "claim" else 0)


@pytest.mark.parametrize("action", ["fail", "lose"])
async def test_a_failure_with_retries_left_schedules_the_next_attempt(
        store: Store, action: str) -> None:
    await agent(store)
    task = await make(store, Status.RUNNING, retries=1)
    if action == "lose":
        await lapse(store, task)
    await WAYS[action][next(iter(WAYS[action]))](store, task)
    after = await queue.get(store, task.id)
    assert after.status is Status.SCHEDULED and after.run_at > datetime.now(UTC)
    assert after.status in {s for s in Status if s in tasks.TRANSITIONS["promote"]}


async def test_a_scheduled_task_is_promoted_when_due_and_only_then(store: Store) -> None:
    await agent(store)
    task = await make(store, Status.SCHEDULED)
    before = await snapshot(store)
    assert await claims.claim(store, "w2") == []  # not due: stays scheduled
    assert await snapshot(store) == before
    async with store.write() as conn:
        await conn.execute(update(table).where(table.c.id == task.id).values(
            run_at=datetime.now(UTC) - timedelta(seconds=1)))
    [claimed] = await claims.claim(store, "w2")  # promoted to pending, then claimed
    assert (claimed.id, claimed.status, claimed.attempt) == (task.id, Status.RUNNING, 1)
