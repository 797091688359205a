"""The task queue's guarantees on SQLite and PostgreSQL."""

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text, update

from agentos import agent_spec, claims, events, queue, registry
from agentos.errors import Conflict, InvalidInput
from agentos.store import Store, open_store
from agentos.store.tables import tasks as table
from agentos.tasks import Outcome, Status, Task, TaskIn
from tests.snapshot import snapshot


async def agent(store: Store, name: str = "a", publish: bool = True, **limits: Any) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
         "limits": {"backoff": {"initial_s": 0.01, "max_s": 0.05, "jitter": False}, **limits}}),
        publish=publish)


async def submit(store: Store, **fields: Any) -> Task:
    [(task, created)] = await queue.submit(store, [TaskIn(agent="a", **fields)])
    assert created
    return task


async def test_a_big_batch_is_submitted_and_logged_in_its_own_order(store: Store) -> None:
    await agent(store)
    made = await queue.submit(store, [TaskIn(agent="a", input={"n": i}) for i in range(300)])
    assert [task.input["n"] for task, _ in made] == list(range(300))
    async with store.read() as conn:
        logged = await events.read_after(store, conn, 0, 1000, "task.created")
    assert [e.payload["task_id"] for e in logged] == [task.id for task, _ in made]


async def test_a_submit_answers_each_task_as_it_is_stored(store: Store) -> None:
    # the submit builds its answer from what it inserted (it does not read the rows
    # back): every field must be what a read of the stored task gives
    await agent(store, max_retries=4, timeout_s=12)  # limits as integers: stored as floats
    first = await submit(store, idempotency_key="seen")
    far = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    made = await queue.submit(store, [
        TaskIn(agent="a"),
        TaskIn(agent="a", version="1.0.0", input={"text": "é ✓ \u2028", "n": [1, 2.5, None],
                                                  "big": 2 ** 70, "deep": {"x": {"y": True}}},
               priority=9, max_retries=0, timeout_s=1.5, run_at=far, idempotency_key="k",
               correlation_id="corr", causation_id="cause", type="train",
               metadata={"who": "me", "n": 1.0}),
        TaskIn(agent="a", idempotency_key="seen"),
        TaskIn(agent="a", run_at=datetime.now(UTC) - timedelta(seconds=5))])
    assert [new for _, new in made] == [True, True, False, True]
    assert made[2][0].id == first.id
    for task, _ in made:
        stored = await queue.get(store, task.id)
        assert {**task.to_dict(), "attempts": None} == {**stored.to_dict(), "attempts": None}
        assert task.seq == stored.seq and task.created_at == stored.created_at
    assert made[1][0].run_at == far and made[1][0].status is Status.SCHEDULED
    assert (made[0][0].max_retries, made[0][0].timeout_s) == (4, 12.0)
    assert isinstance(made[0][0].timeout_s, float)
    assert made[0][0].seq < made[1][0].seq < made[3][0].seq


async def test_a_batch_resolves_each_agent_and_version_once_for_all_its_tasks(
        store: Store) -> None:
    # each (agent, version) a batch names is looked up once; every task still gets its own
    await agent(store, max_retries=1)
    await agent(store, name="b", max_retries=2)
    await registry.create(store, agent_spec.from_object(
        {"name": "a", "version": "1.1.0", "handler": {"type": "python", "target": "m:f"},
         "limits": {"max_retries": 5}}), publish=True)
    asked = [("a", None), ("b", None), ("a", "1.0.0"), ("a", None), ("b", "1.0.0"),
             ("a", "1.0.0")] * 3
    made = await queue.submit(store, [TaskIn(agent=n, version=v) for n, v in asked])
    assert [(t.agent, t.agent_version, t.max_retries) for t, _ in made] == [
        {("a", None): ("a", "1.1.0", 5), ("b", None): ("b", "1.0.0", 2),
         ("a", "1.0.0"): ("a", "1.0.0", 1), ("b", "1.0.0"): ("b", "1.0.0", 2)}[pair]
        for pair in asked]


async def test_submit_claim_complete(store: Store) -> None:
    await agent(store, max_retries=2, timeout_s=30)
    task = await submit(store, input={"x": 1}, priority=7, correlation_id="c-1")
    assert (task.status, task.max_retries, task.timeout_s) == (Status.PENDING, 2, 30)
    began = time.monotonic()
    [claimed] = await claims.claim(store, "w1")
    assert claimed.id == task.id and claimed.attempt == 1
    assert claimed.lease_expires_at is not None
    assert await claims.claim(store, "w2") == []  # never on two workers
    done = await claims.complete(store, task.id, 1, {"y": 2}, tokens={"total": 5}, cost=0.01)
    spent_ms = (time.monotonic() - began) * 1000  # claim to completion, and more
    assert done.status is Status.SUCCEEDED and done.output == {"y": 2}
    got = await queue.get(store, task.id)
    [attempt] = got.to_dict()["attempts"]
    assert attempt["outcome"] == "succeeded" and attempt["worker_id"] == "w1"
    assert attempt["tokens"] == {"total": 5}
    assert 0 <= attempt["duration_ms"] <= spent_ms + 5  # 5: the database's millisecond clock
    kinds = [e.type for e in (await events.query(store, events.Query(
        correlation_id="c-1")))[0]]
    assert kinds == ["task.created", "task.started", "task.succeeded"]


async def test_priority_then_fifo(store: Store) -> None:
    await agent(store)
    order = [(5, "a"), (9, "b"), (5, "c"), (1, "d"), (9, "e")]
    for priority, name in order:
        await submit(store, priority=priority, input={"n": name})
    claimed = await claims.claim(store, "w", limit=10)
    assert [c.input["n"] for c in claimed] == ["b", "e", "a", "c", "d"]


async def test_concurrency_limit_across_claims(store: Store) -> None:
    await agent(store, concurrency=2)
    for _ in range(5):
        await submit(store)
    first = await claims.claim(store, "w1", limit=5)
    assert len(first) == 2
    assert await claims.claim(store, "w2", limit=5) == []
    await claims.complete(store, first[0].id, 1, {})
    assert len(await claims.claim(store, "w2", limit=5)) == 1


async def test_a_full_capped_agent_does_not_block_others(store: Store) -> None:
    # Given agent x (concurrency 1) with a backlog above agent y's task
    await agent(store, "x", concurrency=1)
    await agent(store, "y")
    xs = [(await queue.submit(store, [TaskIn(agent="x", priority=8)]))[0][0] for _ in range(3)]
    [(y, _)] = await queue.submit(store, [TaskIn(agent="y", priority=5)])
    # When x is at its cap, the next claim skips x's backlog and takes y
    [first] = await claims.claim(store, "w1", limit=1)
    assert first.id == xs[0].id
    [second] = await claims.claim(store, "w2", limit=1)
    assert second.id == y.id
    assert await claims.claim(store, "w3", limit=5) == []
    # and x's free slot goes to its next task, in order
    await claims.complete(store, first.id, 1, {})
    [third] = await claims.claim(store, "w1", limit=5)
    assert third.id == xs[1].id


async def test_a_claim_fills_past_an_agent_that_fills_up(store: Store) -> None:
    # x has room for one; a batch claim takes that one, then keeps going to y and z
    await agent(store, "x", concurrency=1)
    await agent(store, "y")
    await agent(store, "z", concurrency=2)
    for _ in range(6):
        await queue.submit(store, [TaskIn(agent="x", priority=9)])
    for _ in range(3):
        await queue.submit(store, [TaskIn(agent="z", priority=7)])
    await queue.submit(store, [TaskIn(agent="y", priority=3)])
    claimed = await claims.claim(store, "w", limit=3)
    assert [c.agent for c in claimed] == ["x", "z", "z"]
    claimed = await claims.claim(store, "w", limit=3)
    assert [c.agent for c in claimed] == ["y"]


async def test_retries_with_growing_backoff_then_dead_letter(store: Store) -> None:
    await agent(store, max_retries=2)
    task = await submit(store)
    runs = []
    for attempt in (1, 2, 3):
        for _ in range(200):
            got = await claims.claim(store, "w")
            if got:
                break
            await asyncio.sleep(0.01)
        [c] = got
        assert c.attempt == attempt
        runs.append(datetime.now(UTC))
        after = await queue.fail(store, task.id, attempt, {"type": "Boom", "message": "no"})
    assert after.status is Status.FAILED
    full = await queue.get(store, task.id)
    assert [x["outcome"] for x in full.to_dict()["attempts"]] == ["failed"] * 3
    failed, _ = await queue.list_tasks(store, status=Status.FAILED)
    assert [f.id for f in failed] == [task.id]
    again = await queue.retry(store, task.id)
    assert again.status is Status.PENDING
    [c] = await claims.claim(store, "w")
    assert c.attempt == 4


async def claim_when_ready(store: Store) -> Task:
    for _ in range(200):  # a retry waits out its (short) backoff
        if got := await claims.claim(store, "w"):
            return got[0]
        await asyncio.sleep(0.01)
    raise AssertionError("nothing became claimable")


async def test_failure_retry_and_cancel_events_carry_the_correlation(store: Store) -> None:
    await agent(store, max_retries=1)
    failing = await submit(store, correlation_id="c-fail")
    await claim_when_ready(store)
    await queue.fail(store, failing.id, 1, {"type": "Boom", "message": "first"})
    await claim_when_ready(store)
    await queue.fail(store, failing.id, 2, {"type": "Boom", "message": "second"})
    waiting = await submit(store, correlation_id="c-wait")
    await queue.cancel(store, waiting.id)
    running = await submit(store, correlation_id="c-run")
    await claim_when_ready(store)
    await queue.cancel(store, running.id)
    await queue.fail(store, running.id, 1, {"type": "cancelled", "message": "stopped"},
                     outcome=Outcome.CANCELLED)

    async def lifecycle(correlation: str) -> list[tuple[str, dict[str, Any]]]:
        found, _ = await events.query(store, events.Query(correlation_id=correlation))
        assert all(e.correlation_id == correlation and e.causation_id == found[0].payload[
            "task_id"] for e in found)
        return [(e.type, e.payload) for e in found]

    fail_events = await lifecycle("c-fail")
    assert [t for t, _ in fail_events] == ["task.created", "task.started", "task.retrying",
                                           "task.started", "task.failed"]
    retrying, failed = fail_events[2][1], fail_events[4][1]
    assert (retrying["attempt"], retrying["outcome"], retrying["error"]) == (1, "failed", "first")
    assert retrying["retry_in_s"] > 0 and retrying["task_id"] == failing.id
    assert (failed["attempt"], failed["outcome"], failed["error"]) == (2, "failed", "second")
    assert [t for t, _ in await lifecycle("c-wait")] == ["task.created", "task.cancelled"]
    run_events = await lifecycle("c-run")
    assert [t for t, _ in run_events] == ["task.created", "task.started", "task.cancelled"]
    assert run_events[2][1]["attempt"] == 1


async def test_stale_attempts_are_fenced(store: Store) -> None:
    await agent(store, max_retries=3)
    task = await submit(store)
    await claims.claim(store, "w1", lease_s=0.05)
    await asyncio.sleep(0.1)
    assert await queue.reap(store) == 1
    lost = await queue.get(store, task.id)
    assert lost.to_dict()["attempts"][0]["outcome"] == "lost"
    async with store.write() as conn:  # skip the backoff
        await conn.execute(update(table).where(table.c.id == task.id)
                           .values(run_at=datetime.now(UTC) - timedelta(seconds=1)))
    [again] = await claims.claim(store, "w2")
    assert again.attempt == 2
    before = await snapshot(store)
    for call in (claims.complete(store, task.id, 1, {}), claims.heartbeat(store, task.id, 1),
                 queue.fail(store, task.id, 1, {"type": "late", "message": "late"})):
        with pytest.raises(Conflict):
            await call
    assert await snapshot(store) == before
    assert (await claims.complete(store, task.id, 2, {"ok": True})).status is Status.SUCCEEDED


async def test_cancel(store: Store) -> None:
    await agent(store)
    waiting = await submit(store)
    running = await submit(store)
    assert (await queue.cancel(store, waiting.id)).status is Status.CANCELLED
    [c] = await claims.claim(store, "w")
    assert c.id == running.id
    asked = await queue.cancel(store, running.id)
    assert asked.status is Status.RUNNING and asked.cancel_requested
    assert (await claims.heartbeat(store, running.id, 1)).cancel_requested
    ended = await queue.fail(store, running.id, 1, {"type": "cancelled", "message": "stop"},
                             outcome=Outcome.CANCELLED)
    assert ended.status is Status.CANCELLED
    with pytest.raises(Conflict):
        await claims.complete(store, running.id, 1, {})
    with pytest.raises(Conflict):
        await queue.cancel(store, running.id)


async def test_idempotency_and_run_at(store: Store) -> None:
    await agent(store)
    first = await submit(store, idempotency_key="job-1")
    [(again, created)] = await queue.submit(store, [TaskIn(agent="a", idempotency_key="job-1")])
    assert again.id == first.id and not created
    later = await submit(store, run_at=datetime.now(UTC) + timedelta(hours=1))
    assert later.status is Status.SCHEDULED
    claimed = await claims.claim(store, "w", limit=10)
    assert [c.id for c in claimed] == [first.id]


async def test_a_batch_with_repeated_and_earlier_keys_makes_each_task_once(store: Store) -> None:
    await agent(store)
    first = await submit(store, idempotency_key="k-1")
    made = await queue.submit(store, [
        TaskIn(agent="a", idempotency_key="k-2", input={"n": 1}),
        TaskIn(agent="a", idempotency_key="k-1"),
        TaskIn(agent="a", idempotency_key="k-2", input={"n": 1}),
        TaskIn(agent="a", input={"n": 3})])
    assert [(t.id == first.id, new) for t, new in made] == [
        (False, True), (True, False), (False, False), (False, True)]
    assert made[0][0].id == made[2][0].id and made[0][0].input == {"n": 1}
    created, _ = await events.query(store, events.Query(type="task.created", limit=100))
    assert [e.payload["task_id"] for e in created] == [first.id, made[0][0].id, made[3][0].id]


@pytest.mark.parametrize(("change", "fields"), [
    ({"input": {"n": 2}}, ["input"]),
    ({"priority": 9}, ["priority"]),
    ({"agent": "b"}, ["agent"]),
    ({"version": "2.0.0"}, ["version"]),
    ({"max_retries": 7, "timeout_s": 9.0}, ["max_retries", "timeout_s"]),
    ({"run_at": datetime(2031, 1, 1, tzinfo=UTC)}, ["run_at"]),
    ({"correlation_id": "other", "causation_id": "cause"}, ["correlation_id", "causation_id"]),
])
async def test_an_idempotency_key_reused_for_another_task_is_refused(
        store: Store, change: dict[str, Any], fields: list[str]) -> None:
    await agent(store)
    await agent(store, name="b")
    first = await submit(store, idempotency_key="k", input={"n": 1}, priority=4)
    before = await snapshot(store)
    # alone, in a batch with a new task (which is not written either), or repeated in a batch
    for batch in ([TaskIn(agent="a", idempotency_key="k", input={"n": 1}, priority=4)
                   .model_copy(update=change)],
                  [TaskIn(agent="a", input={"new": True}),
                   TaskIn(agent="a", idempotency_key="k", input={"n": 1}, priority=4)
                   .model_copy(update=change)]):
        with pytest.raises(Conflict) as refused:
            await queue.submit(store, batch)
        assert refused.value.code == "idempotency_conflict"
        assert refused.value.details["fields"] == fields
        assert refused.value.details["task_id"] == first.id
    assert await snapshot(store) == before
    repeated = [TaskIn(agent="a", idempotency_key="r", input={"n": 1}, priority=4),
                TaskIn(agent="a", idempotency_key="r", input={"n": 1}, priority=4)
                .model_copy(update=change)]
    with pytest.raises(Conflict) as refused:
        await queue.submit(store, repeated)
    assert refused.value.details["fields"] == fields and refused.value.details["index"] == 1
    assert await snapshot(store) == before
    # the same request again, fields it left out included, is the first task
    [(again, created)] = await queue.submit(store, [
        TaskIn(agent="a", idempotency_key="k", input={"n": 1}, priority=4)])
    assert again.id == first.id and not created


async def test_a_batch_losing_a_key_to_a_concurrent_submit_writes_nothing(
        store: Store, database_url: str) -> None:
    """Two batches at once hold one idempotency key with different fields: the one that
    loses the key is refused whole. The winner holds its transaction open until the
    loser's statement waits for it, so the loser could not see the key when it began
    (on PostgreSQL its own new task used to stay written, though the batch was refused)."""
    await agent(store)
    other = open_store(database_url)  # the loser: another process's connections
    try:
        async with store.write() as conn:
            await queue.submit_in(store, conn, [TaskIn(agent="a", idempotency_key="k",
                                                       input={"n": 1})])
            loser = asyncio.create_task(queue.submit(other, [
                TaskIn(agent="a", input={"new": True}),
                TaskIn(agent="a", idempotency_key="k", input={"n": 2})]))
            await _until_waiting(store, database_url, loser)
        with pytest.raises(Conflict) as refused:
            await asyncio.wait_for(loser, 10)
    finally:
        await other.close()
    assert refused.value.code == "idempotency_conflict"
    assert refused.value.details["fields"] == ["input"]
    async with store.read() as conn:
        inputs = (await conn.execute(select(table.c.input))).scalars().all()
        created = await events.read_after(store, conn, 0, 100, "task.created")
    assert inputs == [{"n": 1}] and len(created) == 1  # the loser's new task: not written


async def _until_waiting(store: Store, database_url: str, task: asyncio.Task[Any]) -> None:
    """Until ``task``'s statement waits for a lock (PostgreSQL: a row lock of the
    winner's uncommitted key; SQLite: the write lock, for a while)."""
    if not database_url.startswith("postgresql"):
        await asyncio.sleep(0.3)
        assert not task.done()
        return
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with store.read() as conn:
            waiting = (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"))).scalar_one()
        if waiting:
            return
        assert not task.done(), task
        assert asyncio.get_running_loop().time() < deadline, "the loser never waited"
        await asyncio.sleep(0.02)


async def test_concurrent_submits_of_one_key_make_one_task(store: Store,
                                                           database_url: str) -> None:
    # Given eight processes' stores (each its own connections) submitting the same key
    await agent(store)
    stores = [open_store(database_url) for _ in range(8)]
    try:
        got = await asyncio.gather(*(queue.submit(s, [TaskIn(agent="a", idempotency_key="once")])
                                     for s in stores))
    finally:
        for s in stores:
            await s.close()
    # Then one of them made it and the others got that same task back
    assert len({task.id for [(task, _)] in got}) == 1
    assert sorted(new for [(_, new)] in got) == [False] * 7 + [True]
    listed, _ = await queue.list_tasks(store)
    assert len(listed) == 1


async def test_bad_submissions_write_nothing(store: Store) -> None:
    await agent(store)
    await agent(store, name="drafty", publish=False)
    before = await snapshot(store)
    for item in (TaskIn(agent="ghost"), TaskIn(agent="drafty"),
                 TaskIn(agent="a", version="9.9.9")):
        with pytest.raises(InvalidInput):
            await queue.submit(store, [TaskIn(agent="a"), item])
    for bad in ({"priority": 11}, {"priority": 0}, {"timeout_s": -1}, {"input": [1]},
                {"run_at": "2026-01-01T00:00:00"}):
        with pytest.raises(ValueError):
            TaskIn.model_validate({"agent": "a", **bad})
    assert await snapshot(store) == before
