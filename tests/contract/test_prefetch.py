"""A worker claims ahead of its free slots while its handlers end quickly (prefetch), and
only for its free slots when they are slow; what it claimed ahead keeps every
guarantee a running task has: its lease, cancellation, and its hand-back on shutdown."""

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from agentos import claims, queue
from agentos.store import Store
from agentos.tasks import Status, Task, TaskIn
from agentos.worker.loop import Worker
from tests.contract.test_worker import agent


async def claim_sizes(store: Store) -> list[int]:
    """How many tasks each claim took: a claim stamps its tasks' start with one time."""
    done, _ = await queue.list_tasks(store, limit=1000)
    return sorted(Counter((t.worker_id, t.started_at) for t in done).values())


async def test_a_busy_worker_with_quick_handlers_claims_ahead_of_its_free_slots(
        store: Store) -> None:
    # Given a backlog of quick tasks
    await agent(store, "echo", "echo")
    await queue.submit(store, [TaskIn(agent="echo", input={"n": n}) for n in range(400)])
    # When a worker with 2 slots drains it
    await asyncio.wait_for(Worker(store, burst=True, concurrency=2).run(), 60)
    # Then every task ran once, and claims grew past the 2 free slots
    done, _ = await queue.list_tasks(store, limit=1000)
    assert {t.status for t in done} == {Status.SUCCEEDED} and len(done) == 400
    assert {t.attempt for t in done} == {1}
    sizes = await claim_sizes(store)
    assert sizes[-1] > 2, sizes


async def test_without_prefetch_a_worker_claims_only_for_its_free_slots(store: Store) -> None:
    await agent(store, "echo", "echo")
    await queue.submit(store, [TaskIn(agent="echo") for _ in range(100)])
    await asyncio.wait_for(Worker(store, burst=True, concurrency=2, prefetch=0).run(), 60)
    assert (await claim_sizes(store))[-1] <= 2


async def test_a_worker_with_slow_handlers_leaves_the_backlog_to_other_workers(
        store: Store) -> None:
    # Given tasks whose handler takes a while
    await agent(store, "slow", "slow")
    await queue.submit(store, [TaskIn(agent="slow", input={"seconds": 0.3})
                               for _ in range(4)])
    # When one worker with one slot runs them
    await asyncio.wait_for(Worker(store, burst=True, concurrency=1).run(), 60)
    # Then it claimed one at a time: nothing waited in it while another could run it
    assert await claim_sizes(store) == [1, 1, 1, 1]


async def claimed_ahead(store: Store, worker: Worker, n: int) -> list[Task]:
    """``n`` tasks the worker claimed and holds waiting for a free slot."""
    got = await claims.claim(store, worker.id, limit=n, lease_s=worker.lease_s)
    for task in got:
        worker._waiting[task.id] = task
    return got


async def test_tasks_claimed_ahead_are_handed_back_unspent_on_shutdown(store: Store) -> None:
    # Given a worker holding two claimed tasks that have not started
    await agent(store, "echo", "echo", max_retries=0)
    await queue.submit(store, [TaskIn(agent="echo") for _ in range(2)])
    worker = Worker(store, concurrency=1)
    waiting = await claimed_ahead(store, worker, 2)
    # When it stops
    await worker._drain()
    # Then both are claimable again at once, their attempts not counted against retries
    for task in waiting:
        back = await queue.get(store, task.id)
        assert back.status is Status.PENDING and back.output is None
        assert [a.outcome for a in back.attempts] == ["lost"]
        assert back.attempts[0].error["type"] == "handed_back" and back.retry_base == 1


async def test_a_task_asked_to_cancel_while_it_waits_ends_cancelled_without_running(
        store: Store) -> None:
    # Given a worker holding a claimed task that waits for a slot
    await agent(store, "echo", "echo")
    await queue.submit(store, [TaskIn(agent="echo")])
    worker = Worker(store, concurrency=1, lease_s=1.5)
    [task] = await claimed_ahead(store, worker, 1)
    # When someone asks to cancel it, and the worker's lease keeper next renews it
    await queue.cancel(store, task.id)
    keeper = asyncio.create_task(worker._keep_leases())
    try:
        deadline = time.monotonic() + 30
        while not (got := await queue.get(store, task.id)).status.final:
            assert time.monotonic() < deadline, got.to_dict()
            await asyncio.sleep(0.05)
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    # Then it ended cancelled, its handler never ran, and the worker no longer holds it
    assert got.status is Status.CANCELLED and got.output is None
    assert [a.outcome for a in got.attempts] == ["cancelled"]
    assert task.id not in worker._waiting and not worker._running


async def test_claiming_ahead_takes_only_tasks_of_agents_without_a_concurrency_limit(
        store: Store) -> None:
    # Given a backlog of a capped agent's tasks
    await agent(store, "capped", "echo", concurrency=5)
    await queue.submit(store, [TaskIn(agent="capped") for _ in range(10)])
    # When a worker with one free slot claims with room for 5 more ahead
    got = await claims.cycle(store, "w", [], None, 1, prefetch=5)
    # Then it takes one: the ones ahead would count against the limit while they wait
    assert len(got.claimed) == 1
    # while an uncapped agent's tasks are taken ahead
    await agent(store, "free", "echo")
    await queue.submit(store, [TaskIn(agent="free", priority=9) for _ in range(10)])
    got = await claims.cycle(store, "w", [], None, 1, prefetch=5)
    assert len(got.claimed) == 6 and {t.agent for t in got.claimed} == {"free"}


async def test_a_cancel_that_fails_to_record_is_tried_again_and_the_keeper_keeps_going(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a waiting task asked to cancel, and a database that refuses the first write
    await agent(store, "echo", "echo")
    await queue.submit(store, [TaskIn(agent="echo")])
    worker = Worker(store, concurrency=1, lease_s=1.5)
    [task] = await claimed_ahead(store, worker, 1)
    await queue.cancel(store, task.id)
    calls = []
    real_fail = queue.fail

    async def flaky_fail(*args: Any, **kw: Any) -> Task:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("database away for a moment")
        return await real_fail(*args, **kw)

    monkeypatch.setattr(queue, "fail", flaky_fail)
    # When the lease keeper renews it twice
    keeper = asyncio.create_task(worker._keep_leases())
    try:
        deadline = time.monotonic() + 30
        while not (got := await queue.get(store, task.id)).status.final:
            assert time.monotonic() < deadline, got.to_dict()
            assert not keeper.done(), keeper
            await asyncio.sleep(0.05)
        # Then the second try ended it, and the keeper still runs
        assert not keeper.done()
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    assert got.status is Status.CANCELLED and len(calls) == 2


async def test_a_more_urgent_task_claimed_later_starts_before_those_claimed_ahead(
        store: Store) -> None:
    # Given a worker with its one slot free, holding two routine tasks claimed ahead
    await agent(store, "echo", "echo")
    await queue.submit(store, [TaskIn(agent="echo", priority=1) for _ in range(2)])
    worker = Worker(store, concurrency=1)
    routine = await claimed_ahead(store, worker, 2)
    # When its next round trip claims an urgent task submitted meanwhile
    [(urgent, _)] = await queue.submit(store, [TaskIn(agent="echo", priority=9)])
    await worker._cycle(1)
    # Then the urgent one takes the slot, and the routine ones wait in claim order
    assert list(worker._running) == [urgent.id]
    assert list(worker._waiting) == [t.id for t in routine]
    await worker._drain()
    assert (await queue.get(store, urgent.id)).status is Status.SUCCEEDED


async def test_tasks_claimed_ahead_go_back_when_the_handlers_turn_slow(store: Store) -> None:
    # Given a worker whose one slot runs a long task, holding two claimed ahead
    await agent(store, "slow", "slow")
    await agent(store, "echo", "echo")
    [(long, _)] = await queue.submit(store, [TaskIn(agent="slow", input={"seconds": 30},
                                                    priority=9)])
    await queue.submit(store, [TaskIn(agent="echo", priority=1) for _ in range(2)])
    worker = Worker(store, concurrency=1, grace=0.1, poll_interval=0.1)
    held = await claimed_ahead(store, worker, 3)
    worker._start()
    assert list(worker._running) == [long.id]
    # When no handler ends for a while
    running = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 30
        while worker._waiting or [t for t in held[1:] if (
                await queue.get(store, t.id)).status is not Status.PENDING]:
            assert time.monotonic() < deadline, worker._waiting
            await asyncio.sleep(0.05)
        # Then the two waiting go back unspent, claimable by another worker, while the
        # long one keeps running here
        for task in held[1:]:
            back = await queue.get(store, task.id)
            assert [a.outcome for a in back.attempts] == ["lost"] and back.retry_base == 1
        assert (await queue.get(store, long.id)).status is Status.RUNNING
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
