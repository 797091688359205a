"""The worker's hot path (``claims``): batched round trips, fenced per task, on both backends."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from agentos import claims, events, queue
from agentos.claims import Finished
from agentos.errors import AgentOSError
from agentos.store import Store
from agentos.store.tables import tasks as table
from agentos.tasks import Outcome, Status, TaskIn
from tests.contract.test_queue import agent, submit


async def task_events(store: Store) -> list[events.Event]:
    found, _ = await events.query(store, events.Query(type="task.*", limit=1000))
    return found


async def test_a_round_trip_records_the_current_attempts_and_fences_the_rest(
        store: Store) -> None:
    # Given three running tasks, one of which lost its lease (and was reaped)
    await agent(store, max_retries=3)
    one, two, three = [await submit(store) for _ in range(3)]
    assert len(await claims.claim(store, "w1", limit=3)) == 3
    async with store.write() as conn:
        await conn.execute(update(table).where(table.c.id == two.id).values(
            lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await queue.reap(store) == 1
    # When the worker reports all three finished in one round trip
    done = await claims.cycle(store, "w1", [Finished(t.id, 1, {"n": n}, took_locks=False)
                                            for n, t in enumerate((one, two, three))])
    # Then the two current attempts succeed, and the superseded one changes nothing
    assert [f.task_id for f in done.stale] == [two.id]
    for task, n in ((one, 0), (three, 2)):
        got = await queue.get(store, task.id)
        assert (got.status, got.output) == (Status.SUCCEEDED, {"n": n})
        assert got.to_dict()["attempts"][0]["outcome"] == Outcome.SUCCEEDED
    lost = await queue.get(store, two.id)
    assert lost.status in (Status.SCHEDULED, Status.PENDING) and lost.output is None
    assert lost.to_dict()["attempts"][0]["outcome"] == Outcome.LOST
    succeeded = [e.payload["task_id"] for e in await task_events(store)
                 if e.type == "task.succeeded"]
    assert succeeded == [one.id, three.id]


async def test_a_round_trip_appends_its_events_in_order_in_each_task_s_correlation(
        store: Store) -> None:
    await agent(store)
    first = await submit(store, correlation_id="c-first")
    second = await submit(store, correlation_id="c-second", priority=9)
    third = await submit(store, correlation_id="c-third")
    [claimed] = await claims.claim(store, "w1", limit=1)
    assert claimed.id == second.id  # the most urgent first
    done = await claims.cycle(store, "w1", [Finished(second.id, 1, {}, took_locks=False)],
                              limit=5, lease_s=60)
    assert [t.id for t in done.claimed] == [first.id, third.id] and not done.stale
    assert all(t.status == Status.RUNNING and t.attempt == 1 for t in done.claimed)
    lease = done.claimed[0].lease_expires_at
    assert lease is not None and lease > datetime.now(UTC) + timedelta(seconds=50)
    tail = [(e.type, e.payload["task_id"], e.correlation_id, e.causation_id)
            for e in (await task_events(store))[-3:]]
    assert tail == [("task.succeeded", second.id, "c-second", second.id),
                    ("task.started", first.id, "c-first", first.id),
                    ("task.started", third.id, "c-third", third.id)]
    started = (await task_events(store))[-1]
    assert started.payload == {"task_id": third.id, "agent": "a", "attempt": 1,
                               "worker_id": "w1"}
    for task in done.claimed:
        [attempt] = (await queue.get(store, task.id)).to_dict()["attempts"]
        assert (attempt["worker_id"], attempt["outcome"]) == ("w1", "running")


async def test_a_claim_takes_a_scheduled_task_as_soon_as_it_is_due(store: Store) -> None:
    await agent(store)
    task = await submit(store, run_at=datetime.now(UTC) + timedelta(hours=1))
    assert await claims.claim(store, "w1") == []
    async with store.write() as conn:  # its time comes
        await conn.execute(update(table).where(table.c.id == task.id).values(
            run_at=datetime.now(UTC) - timedelta(seconds=1)))
    [claimed] = await claims.claim(store, "w1")  # promoted and claimed by one call
    assert claimed.id == task.id and claimed.status == Status.RUNNING


async def test_a_batch_claim_keeps_claim_order_across_capped_and_uncapped_agents(
        store: Store) -> None:
    # Given agent x (concurrency 1) and agent y (no cap), interleaved in claim order
    await agent(store, "x", concurrency=1)
    await agent(store, "y")

    async def put(name: str, priority: int) -> str:
        [(task, _)] = await queue.submit(store, [TaskIn(agent=name, priority=priority)])
        return task.id

    y_high = await put("y", 9)
    x_first, x_second = await put("x", 8), await put("x", 8)
    y_low = await put("y", 5)
    # When one claim may take them all, it takes x's first only, in order
    claimed = await claims.claim(store, "w1", limit=10)
    assert [t.id for t in claimed] == [y_high, x_first, y_low]
    assert (await queue.get(store, x_second)).status is Status.PENDING
    # and x's next task waits for a free slot
    assert await claims.claim(store, "w2", limit=10) == []
    await claims.cycle(store, "w1", [Finished(x_first, 1, {}, took_locks=False)])
    assert [t.id for t in await claims.claim(store, "w2", limit=10)] == [x_second]


async def test_one_statement_renews_every_running_lease_and_carries_cancellation(
        store: Store) -> None:
    await agent(store, max_retries=3)
    kept, cancelled, lost = [await submit(store) for _ in range(3)]
    running = await claims.claim(store, "w1", limit=3, lease_s=5)
    before = {t.id: t.lease_expires_at for t in running}
    await queue.cancel(store, cancelled.id)  # running: only asked to stop
    async with store.write() as conn:
        await conn.execute(update(table).where(table.c.id == lost.id).values(
            lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await queue.reap(store) == 1
    beaten = await claims.beat_many(store, [(t.id, 1, False) for t in running], lease_s=60)
    assert beaten == {kept.id: False, cancelled.id: True}  # the lost one is superseded
    for task_id in beaten:
        lease = (await queue.get(store, task_id)).lease_expires_at
        assert lease is not None and lease > before[task_id] + timedelta(seconds=50)
    assert (await queue.get(store, lost.id)).lease_expires_at is None


async def test_the_planner_statistics_of_the_queue_follow_a_burst_of_submits(
        store: Store) -> None:
    # a burst between two autovacuum visits would leave PostgreSQL planning claims for
    # an empty queue (a sort of every pending task); the reaper analyzes the table
    await agent(store)
    assert await store.refresh_statistics(queue.STATISTICS_KEPT) == []  # nothing changed
    await queue.submit(store, [TaskIn(agent="a") for _ in range(1500)])
    analyzed: list[str] = []
    for _ in range(50):  # the statistics collector reports changes within a second
        if analyzed := await store.refresh_statistics(queue.STATISTICS_KEPT):
            break
        if store.dialect != "postgresql":
            break
        await asyncio.sleep(0.1)
    if store.dialect == "postgresql":
        assert analyzed == ["tasks"]
        async with store.read() as conn:
            counted = (await conn.execute(text(
                "SELECT reltuples FROM pg_class WHERE relname = 'tasks'"))).scalar_one()
        assert counted == 1500
        assert await store.refresh_statistics(queue.STATISTICS_KEPT) == []  # current now
    else:
        assert analyzed == []  # SQLite plans claims from the index without statistics


async def test_a_round_trip_survives_losing_its_connection(store: Store) -> None:
    # Given a worker's round trips on the store's own driver connection
    await agent(store)
    first, second = await submit(store), await submit(store)
    [claimed] = await claims.claim(store, "w1")
    assert claimed.id == first.id
    # When that connection is lost (the server ended it; SQLite's file connection closed)
    if store.dialect == "postgresql":
        from agentos.store.postgres import DRIVER_NAME

        async with store.read() as conn:
            ended = (await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = current_database()"),
                {"name": DRIVER_NAME})).scalar_one()
        assert ended == 1
    else:
        store._driver.close()  # type: ignore[attr-defined]
    # Then the next round trip fails as unavailable and changes nothing ...
    finished = [Finished(first.id, 1, {"ok": True}, took_locks=False)]
    try:
        await claims.cycle(store, "w1", finished, limit=1)
    except AgentOSError as exc:
        assert exc.code == "database_unavailable"
        assert (await queue.get(store, first.id)).status is Status.RUNNING
        assert (await queue.get(store, second.id)).status is Status.PENDING
        # ... and the one after it reconnects and does the work
        done = await claims.cycle(store, "w1", finished, limit=1)
    else:
        raise AssertionError("a round trip on a lost connection succeeded")
    assert [t.id for t in done.claimed] == [second.id] and not done.stale
    assert (await queue.get(store, first.id)).status is Status.SUCCEEDED


async def test_a_driver_block_that_fails_writes_nothing(store: Store) -> None:
    await agent(store)
    task = await submit(store)
    statement = "UPDATE tasks SET priority = 9 WHERE id = " + (
        "%(id)s" if store.dialect == "postgresql" else ":id")
    with pytest.raises(RuntimeError):
        async with store.driver() as db:
            if store.dialect == "postgresql":  # autocommit: one statement is all or nothing
                await db.execute("BEGIN")
                await db.execute(statement, {"id": task.id})
            else:
                db.execute(statement, {"id": task.id})
            raise RuntimeError("the caller failed after writing")
    assert (await queue.get(store, task.id)).priority == 5
    [claimed] = await claims.claim(store, "w1")  # the connection is usable again
    assert claimed.id == task.id


async def test_an_ended_attempt_is_recorded_once_with_its_running_time(store: Store) -> None:
    await agent(store)
    task = await submit(store)
    began = time.monotonic()
    assert [t.id for t in await claims.claim(store, "w1")] == [task.id]
    running = (await queue.get(store, task.id)).to_dict()
    assert running["started_at"] is not None
    [attempt] = running["attempts"]  # the running attempt comes from the task's row
    assert (attempt["outcome"], attempt["ended_at"]) == ("running", None)
    await asyncio.sleep(0.05)  # the attempt runs at least this long
    await claims.cycle(store, "w1", [Finished(task.id, 1, {}, cost=0.25, took_locks=False)])
    spent_ms = (time.monotonic() - began) * 1000
    [attempt] = (await queue.get(store, task.id)).to_dict()["attempts"]
    assert (attempt["outcome"], attempt["worker_id"], attempt["cost"]) == ("succeeded", "w1",
                                                                          0.25)
    assert attempt["started_at"] == running["started_at"]
    ran_ms = (datetime.fromisoformat(attempt["ended_at"])
              - datetime.fromisoformat(attempt["started_at"])).total_seconds() * 1000
    assert abs(attempt["duration_ms"] - ran_ms) <= 1  # the two timestamps' difference
    assert 45 <= attempt["duration_ms"] <= spent_ms + 5  # the 50 ms slept, the test's span
