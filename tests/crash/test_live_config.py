"""Live config across processes: a value set in this process reaches the next attempt
in a running worker process without a restart: on PostgreSQL by NOTIFY (0.3 s after
the change, although the worker's cache would keep the old value for a minute), on
SQLite within the cache's one-second TTL."""

from __future__ import annotations

import asyncio
import time

from agentos import agent_config, agent_spec, queue, registry
from agentos.store import Store, open_store
from agentos.tasks import Status, TaskIn
from tests.crash.test_workers import start_worker


async def run_one(store: Store) -> int:
    [(task, _)] = await queue.submit(store, [TaskIn(agent="tuned")])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = await queue.get(store, task.id)
        if done.status is Status.SUCCEEDED:
            return int(done.to_dict()["output"]["config"]["level"])
        await asyncio.sleep(0.02)
    raise AssertionError("the worker did not run the task within 30 s")


async def test_a_change_reaches_the_next_attempt_in_another_process(database_url: str,
                                                                    backend: str) -> None:
    store = open_store(database_url)
    await registry.create(store, agent_spec.from_object({
        "name": "tuned", "version": "1.0.0",
        "handler": {"type": "python", "target": "tests.handlers:config_echo"},
        "config": {"level": {"type": "integer", "value": 1}}}), publish=True)
    worker = start_worker(database_url, "--concurrency", "1", "--poll", "0.05")
    try:
        assert await run_one(store) == 1  # the worker's cache now holds the overrides
        for level in (2, 3):
            await agent_config.set_value(store, "tuned", "level", level, by="test")
            await asyncio.sleep(0.3 if backend == "postgres" else 1.1)
            assert await run_one(store) == level
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        await store.close()
