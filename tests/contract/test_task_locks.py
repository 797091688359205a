"""Tasks and locks: declared resources are held while the handler runs, never by two
tasks at once, and released however the attempt ends; permissions.lock is enforced."""

import asyncio
import itertools
from pathlib import Path
from typing import Any

from agentos import agent_spec, events, locks, queue, registry
from agentos.store import Store
from agentos.tasks import Status, Task, TaskIn
from agentos.worker import instances
from agentos.worker.loop import Worker


async def agent(store: Store, name: str, target: str, resources: list[str] | None = None,
                allowed: list[str] | None = None, **limits: Any) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": "1.0.0",
         "handler": {"type": "python", "target": f"tests.handlers:{target}"},
         "resources": resources if resources is not None else ["device:{input.device_id}"],
         "permissions": {"lock": allowed if allowed is not None else ["device:*"]},
         "limits": {"max_retries": 0, **limits}}), publish=True)


async def submit(store: Store, agent_name: str, priority: int = 5, **input: Any) -> str:
    [(task, _)] = await queue.submit(store, [TaskIn(agent=agent_name, input=input,
                                                    priority=priority)])
    return task.id


async def until_final(store: Store, ids: list[str], timeout: float = 40) -> list[Task]:
    async with asyncio.timeout(timeout):
        while True:
            got = [await queue.get(store, i) for i in ids]
            if all(g.status.final for g in got):
                return got
            await asyncio.sleep(0.05)


async def holder(store: Store, resource: str) -> Any:
    return (await locks.get(store, resource))["holder"]


async def test_two_tasks_on_one_device_never_run_at_once(store: Store, tmp_path: Path) -> None:
    await agent(store, "dev", "hold")
    log = tmp_path / "holds.log"
    ids = [await submit(store, "dev", device_id="pixel-7", seconds=0.2, log=str(log))
           for _ in range(4)]
    other = await submit(store, "dev", device_id="pixel-8", seconds=0.2, log=str(log))
    worker = Worker(store, concurrency=4)
    running = asyncio.create_task(worker.run())
    try:
        done = await until_final(store, [*ids, other])
    finally:
        worker.stop()
        await running
    assert all(t.status is Status.SUCCEEDED for t in done), [t.to_dict() for t in done]
    assert done[0].output == {"held": ["device:pixel-7"]}
    spans = {}
    for line in log.read_text().splitlines():
        task_id, start, end = line.split()
        spans[task_id] = (float(start), float(end))
    same = sorted(spans[i] for i in ids)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(same)), same
    assert (await locks.get(store, "device:pixel-7"))["last_token"] >= 4
    assert await holder(store, "device:pixel-7") is None
    assert (await locks.get(store, "device:pixel-7"))["queue"] == []


async def test_a_waiting_task_is_handed_back_and_keeps_its_place(store: Store) -> None:
    """The second task cannot get the device within the short wait: it leaves its slot,
    keeps its place in the lock's queue, and runs as soon as the device is free."""
    await agent(store, "dev", "hold")
    first = await submit(store, "dev", device_id="d1", seconds=2.5)
    worker = Worker(store, concurrency=2)
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            while await holder(store, "device:d1") is None:
                await asyncio.sleep(0.02)
        second = await submit(store, "dev", device_id="d1", seconds=0)
        async with asyncio.timeout(10):  # handed back: scheduled, and waiting in the queue
            while (await queue.get(store, second)).status is not Status.SCHEDULED:
                await asyncio.sleep(0.02)
        queued = (await locks.get(store, "device:d1"))["queue"]
        assert [w["task_id"] for w in queued] == [second]
        [a, b] = await until_final(store, [first, second])
    finally:
        worker.stop()
        await running
    assert a.status is b.status is Status.SUCCEEDED  # max_retries 0: the hand-back is free
    assert [x.outcome for x in b.attempts] == ["deferred", "succeeded"]
    # it ran once the device was released, not after the 5 s fallback
    assert (b.finished_at - a.finished_at).total_seconds() < 2


async def test_locks_are_released_however_the_attempt_ends(store: Store) -> None:
    await agent(store, "ok", "hold")
    await agent(store, "bad", "broken")
    await agent(store, "slow", "slow", timeout_s=0.3)
    await agent(store, "long", "slow")
    ids = {"succeeded": await submit(store, "ok", device_id="ok"),
           "failed": await submit(store, "bad", device_id="bad", retryable=False),
           "timeout": await submit(store, "slow", device_id="slow", seconds=30)}
    cancelled = await submit(store, "long", device_id="long", seconds=30)
    worker = Worker(store, concurrency=4, lease_s=1.5)
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            while await holder(store, "device:long") is None:
                await asyncio.sleep(0.02)
        assert (await holder(store, "device:long"))["task_id"] == cancelled
        [view] = await instances.list_all(store)
        assert "device:long" in [x["resource"] for x in view["locks"]]
        await queue.cancel(store, cancelled)
        done = await until_final(store, [*ids.values(), cancelled])
    finally:
        worker.stop()
        await running
    assert [t.status.value for t in done] == ["succeeded", "failed", "failed", "cancelled"]
    assert done[2].attempts[0].outcome == "timeout"
    for name in ("ok", "bad", "slow", "long"):
        assert await holder(store, f"device:{name}") is None, name
    page, _ = await events.query(store, events.Query(type="lock.released", limit=100))
    assert len(page) == 4 and all(e.payload["reason"] == "attempt_ended" for e in page)


async def test_permissions_lock_is_enforced(store: Store) -> None:
    await agent(store, "phones", "hold", allowed=["phone:*"])
    await agent(store, "extra", "extra_lock", resources=[], allowed=["device:*"])
    refused = await submit(store, "phones", device_id="x")
    missing = await submit(store, "extra", resource="device:free")  # no declared resources
    outside = await submit(store, "extra", resource="phone:nope")
    no_input = await submit(store, "phones")  # the template's input is missing
    worker = Worker(store, concurrency=4)
    running = asyncio.create_task(worker.run())
    try:
        [a, b, c, d] = await until_final(store, [refused, missing, outside, no_input])
    finally:
        worker.stop()
        await running
    assert a.status is Status.FAILED and a.error["type"] == "lock_not_permitted"
    assert b.status is Status.SUCCEEDED and b.output == {"token": 1}
    assert c.status is Status.FAILED and "may not lock phone:nope" in c.error["message"]
    assert d.status is Status.FAILED and d.error["type"] == "resource_input_missing"
    assert await holder(store, "device:x") is None and await holder(store, "device:free") is None
    assert (await locks.get(store, "phone:nope"))["last_token"] == 0  # never locked


async def test_ctx_lock_is_released_with_the_attempt(store: Store) -> None:
    await agent(store, "extra", "extra_lock", resources=[])
    task_id = await submit(store, "extra", resource="device:e", fail_after=True)
    worker = Worker(store, concurrency=1)
    running = asyncio.create_task(worker.run())
    try:
        [task] = await until_final(store, [task_id])
    finally:
        worker.stop()
        await running
    assert task.status is Status.FAILED
    assert await holder(store, "device:e") is None
