"""Deleting an agent with hundreds of unfinished tasks, on both backends: every one is
cancelled or asked to stop in the deletion's own transaction (a fixed number of
statements, not a transaction per task), the waiting ones give back the locks they
hold or wait for, and each cancel is an event naming the status it left."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from agentos import agent_removal, claims, locks, queue
from agentos.store import Store
from agentos.store.tables import events, tasks
from agentos.tasks import TaskIn
from tests.contract.test_handler_kinds import agent


async def test_an_agents_hundreds_of_tasks_are_cancelled_in_its_deletion(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 300 tasks of an agent waiting, 20 due later, and 5 of them claimed
    await agent(store, "bulk", {"type": "python", "target": "tests.handlers:echo"})
    later = datetime.now(UTC) + timedelta(hours=1)
    made = await queue.submit(store, [TaskIn(agent="bulk", input={"n": n}) for n in range(300)]
                              + [TaskIn(agent="bulk", input={"n": n}, run_at=later)
                                 for n in range(20)])
    ids = [task.id for task, _ in made]
    running = await claims.claim(store, "w1", limit=5)
    waiting = [i for i in ids[:300] if i not in {t.id for t in running}]
    # one waiting task holds a lock, another waits in a lock's queue
    assert (await locks.acquire(store, "device:a", locks.Claim(
        owner=locks.task_owner(waiting[0])))).granted
    await locks.acquire(store, "device:b", locks.Claim(owner="someone"))
    assert not (await locks.acquire(store, "device:b", locks.Claim(
        owner=locks.task_owner(waiting[1])), wait_s=0.05, keep_place_s=60)).granted
    # When it is deleted, with force, counting the write transactions
    writes = 0
    write = store.write

    @asynccontextmanager
    async def counted() -> AsyncIterator[Any]:
        nonlocal writes
        writes += 1
        async with write() as conn:
            yield conn

    monkeypatch.setattr(store, "write", counted)
    removed = await agent_removal.delete(store, "bulk", force=True, by="test")
    monkeypatch.undo()
    # Then all 320 went in two transactions (the deletion's, and one for any task
    # submitted meanwhile): it took one per task
    assert removed["cancelled_tasks"] == 320 and writes == 2
    async with store.read() as conn:
        rows = (await conn.execute(select(tasks.c.status, tasks.c.cancel_requested))).all()
        cancels = (await conn.execute(select(events.c.payload).where(
            events.c.type == "task.cancelled"))).scalars().all()
    assert Counter((r.status, r.cancel_requested) for r in rows) == {
        ("cancelled", False): 315, ("running", True): 5}
    assert Counter(p["was"] for p in cancels) == {"pending": 295, "scheduled": 20}
    assert (await locks.get(store, "device:a"))["holder"] is None
    assert (await locks.get(store, "device:b"))["queue"] == []
