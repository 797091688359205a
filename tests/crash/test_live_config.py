"""Live config across processes: a value set in this process reaches the next attempt
on every running worker process without a restart: on PostgreSQL by NOTIFY (0.3 s after
the change, although each worker's cache would keep the old value for a minute), on
SQLite within the cache's one-second TTL. Two workers, each of which has run the agent
(its cache holds the overrides) before every change."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agentos import agent_config, agent_spec, queue, registry
from agentos.store import Store, open_store
from agentos.tasks import Status, TaskIn
from tests.crash.test_workers import start_worker
from tests.waiting import eventually_async


async def run_batch(store: Store, n: int = 8) -> list[tuple[str, int]]:
    """Submit ``n`` tasks and wait for them: (worker id, level it saw) of each."""
    made = await queue.submit(store, [TaskIn(agent="tuned") for _ in range(n)])
    async def all_done() -> list[Any]:
        done = [await queue.get(store, task.id) for task, _ in made]
        return done if all(d.status is Status.SUCCEEDED for d in done) else []

    done = await eventually_async(all_done, 30, "the workers to run the tasks", interval=0.02)
    return [(str(d.attempts[-1].worker_id), int(d.to_dict()["output"]["config"]["level"]))
            for d in done]


async def seen_by_both(store: Store, workers: int = 2) -> set[int]:
    """Run batches until every worker ran one of them; the levels they saw."""
    who: set[str] = set()
    levels: set[int] = set()
    deadline = time.monotonic() + 60
    while len(who) < workers:
        assert time.monotonic() < deadline, f"only {who} ran tasks within 60 s"
        ran = await run_batch(store)
        who |= {w for w, _ in ran}
        levels |= {level for _, level in ran}
    return levels


async def test_a_change_reaches_the_next_attempt_on_every_worker(database_url: str,
                                                                 backend: str) -> None:
    store = open_store(database_url)
    await registry.create(store, agent_spec.from_object({
        "name": "tuned", "version": "1.0.0",
        "handler": {"type": "python", "target": "tests.handlers:config_echo"},
        "config": {"level": {"type": "integer", "value": 1}}}), publish=True)
    workers = [start_worker(database_url, "--concurrency", "1", "--poll", "0.05")
               for _ in range(2)]
    try:
        assert await seen_by_both(store) == {1}  # both caches now hold the overrides
        for level in (2, 3):
            await agent_config.set_value(store, "tuned", "level", level, by="test")
            await asyncio.sleep(0.3 if backend == "postgres" else 1.1)
            assert await seen_by_both(store) == {level}
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        await store.close()
