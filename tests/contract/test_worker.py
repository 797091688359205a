"""The worker runs handlers: results, retries, timeouts, cancellation, events."""

import asyncio
import itertools
from typing import Any

from agentos import agent_spec, events, queue, registry
from agentos.store import Store
from agentos.tasks import Status, TaskIn
from agentos.worker import Worker


async def agent(store: Store, name: str, target: str, **limits: Any) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": "1.0.0",
         "handler": {"type": "python", "target": f"tests.handlers:{target}"},
         "config": {"factor": {"type": "integer", "value": 3}},
         "limits": {"backoff": {"initial_s": 0.05, "max_s": 0.2, "jitter": False},
                    **limits}}), publish=True)


async def run_all(store: Store, **kw: Any) -> None:
    await asyncio.wait_for(Worker(store, burst=True, concurrency=4, **kw).run(), 30)


async def submit(store: Store, agent_name: str, **input: Any) -> str:
    [(task, _)] = await queue.submit(store, [TaskIn(agent=agent_name, input=input)])
    return task.id


async def drain(store: Store, ids: list[str], **kw: Any) -> list[queue.Task]:
    """Run workers until every task is final (retries come back after backoff)."""
    for _ in range(50):
        await run_all(store, **kw)
        got = [await queue.get(store, i) for i in ids]
        if all(g.status.final for g in got):
            return got
        await asyncio.sleep(0.1)
    raise AssertionError("tasks did not finish")


async def test_handlers_run_and_record_results(store: Store) -> None:
    await agent(store, "echo", "echo")
    await agent(store, "double", "sync_double")
    await agent(store, "emitter", "emitter")
    ids = [await submit(store, "echo", x=1), await submit(store, "double", n=21),
           await submit(store, "emitter")]
    [echo, double, emitted] = await drain(store, ids)
    assert echo.row.output == {"echo": {"x": 1}, "attempt": 1}
    assert double.row.output == {"double": 42}
    [event], _ = await events.query(store, events.Query(type="work.done"))
    assert event.payload == {"value": 3} and event.causation_id == emitted.id
    assert event.correlation_id == emitted.row.correlation_id
    # the correlation tree: the task, and under it its lifecycle and what it emitted
    [root] = await events.correlation(store, emitted.row.correlation_id)
    assert (root["kind"], root["id"]) == ("task", emitted.id)
    assert {c["type"] for c in root["children"]} == {
        "task.created", "task.started", "work.done", "task.succeeded"}


async def test_raises_twice_then_succeeds(store: Store) -> None:
    await agent(store, "flaky", "flaky", max_retries=3)
    [task] = await drain(store, [await submit(store, "flaky", fails=2)])
    assert task.status is Status.SUCCEEDED
    assert [a.outcome for a in task.attempts] == ["failed", "failed", "succeeded"]
    assert "attempt 1 fails" in task.attempts[0].error["message"]
    assert "Traceback" in task.attempts[0].error["traceback"]


async def test_always_failing_is_dead_lettered_with_growing_gaps(store: Store) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": "flaky", "version": "1.0.0",
         "handler": {"type": "python", "target": "tests.handlers:flaky"},
         "limits": {"max_retries": 2, "backoff": {"initial_s": 0.3, "multiplier": 3,
                                                  "jitter": False}}}), publish=True)
    task_id = await submit(store, "flaky", fails=99)
    worker = Worker(store, concurrency=1)  # polls every 0.5 s: gaps of 0.3 s then 0.9 s
    running = asyncio.create_task(worker.run())
    for _ in range(300):
        if (await queue.get(store, task_id)).status.final:
            break
        await asyncio.sleep(0.02)
    worker.stop()
    await asyncio.wait_for(running, 10)
    task = await queue.get(store, task_id)
    assert task.status is Status.FAILED and len(task.attempts) == 3  # max_retries + 1
    starts = [a.started_at for a in task.attempts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.9 and gaps[1] > gaps[0]


async def test_non_retryable_error_fails_at_once(store: Store) -> None:
    await agent(store, "broken", "broken", max_retries=5)
    [task] = await drain(store, [await submit(store, "broken", retryable=False)])
    assert task.status is Status.FAILED and len(task.attempts) == 1


async def test_timeout_cancels_the_handler(store: Store) -> None:
    await agent(store, "slow", "slow", max_retries=0, timeout_s=0.2)
    [task] = await drain(store, [await submit(store, "slow", seconds=30)])
    assert task.status is Status.FAILED
    assert task.attempts[0].outcome == "timeout"


async def test_cancelling_a_running_task(store: Store) -> None:
    await agent(store, "slow", "slow")
    task_id = await submit(store, "slow", seconds=30)
    worker = Worker(store, concurrency=1, lease_s=0.3)
    running = asyncio.create_task(worker.run())
    for _ in range(100):
        if (await queue.get(store, task_id)).status is Status.RUNNING:
            break
        await asyncio.sleep(0.02)
    await queue.cancel(store, task_id)
    for _ in range(200):
        if (await queue.get(store, task_id)).status.final:
            break
        await asyncio.sleep(0.02)
    worker.stop()
    await asyncio.wait_for(running, 10)
    done = await queue.get(store, task_id)
    assert done.status is Status.CANCELLED and done.attempts[0].outcome == "cancelled"


async def test_shutdown_hands_back_unfinished_tasks(store: Store) -> None:
    await agent(store, "slow", "slow", max_retries=0)
    task_id = await submit(store, "slow", seconds=30)
    worker = Worker(store, concurrency=1, grace=0.1)
    running = asyncio.create_task(worker.run())
    for _ in range(100):
        if (await queue.get(store, task_id)).status is Status.RUNNING:
            break
        await asyncio.sleep(0.02)
    worker.stop()
    await asyncio.wait_for(running, 10)
    back = await queue.get(store, task_id)
    # claimable again, and the interrupted attempt did not use up its only try
    assert back.status is Status.PENDING and back.attempts[0].outcome == "lost"
    [again] = await queue.claim(store, "w2")
    assert again.row.attempt == 2


async def test_workers_register_and_deregister(store: Store) -> None:
    from agentos import workers

    worker = Worker(store, worker_id="w-test", agents=["echo"], concurrency=3)
    running = asyncio.create_task(worker.run())
    for _ in range(100):
        listed = await workers.list_all(store)
        if listed:
            break
        await asyncio.sleep(0.02)
    [me] = listed
    assert (me["id"], me["agents"], me["concurrency"], me["status"], me["alive"]) == (
        "w-test", ["echo"], 3, "idle", True)
    worker.stop()
    await asyncio.wait_for(running, 10)
    assert await workers.list_all(store) == []
    [gone] = await workers.list_all(store, include_stopped=True)
    assert gone["status"] == "stopped" and not gone["alive"]
