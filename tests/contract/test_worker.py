"""The worker runs handlers: results, retries, timeouts, cancellation, events."""

import asyncio
import itertools
from pathlib import Path
from typing import Any

from agentos import agent_spec, claims, events, queue, registry
from agentos.store import Store
from agentos.tasks import Status, Task, TaskIn
from agentos.worker.loop import Worker


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


async def drain(store: Store, ids: list[str], **kw: Any) -> list[Task]:
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
    assert echo.output == {"echo": {"x": 1}, "attempt": 1}
    assert double.output == {"double": 42}
    [event], _ = await events.query(store, events.Query(type="work.done"))
    assert event.payload == {"value": 3} and event.causation_id == emitted.id
    assert event.correlation_id == emitted.correlation_id
    # the correlation tree: the task, and under it its lifecycle and what it emitted
    [root] = await events.correlation(store, emitted.correlation_id)
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


async def test_a_retried_attempt_does_not_emit_its_events_twice(store: Store) -> None:
    # Given handlers that emit, then fail on attempt 1 and succeed on attempt 2
    await agent(store, "emits", "emit_then_fail", max_retries=2)
    await agent(store, "syncemits", "sync_emit_then_fail", max_retries=2)
    first = await submit(store, "emits", order="o-1", key="fill:o-1")
    other = await submit(store, "emits", order="o-2")  # another task: its own events
    sync = await submit(store, "syncemits", order="o-3")
    tasks = await drain(store, [first, other, sync])
    assert [[a.outcome for a in t.attempts] for t in tasks] == [["failed", "succeeded"]] * 3
    # Then each event is in the log once, and the retry got the first attempt's back
    placed, _ = await events.query(store, events.Query(type="order.placed"))
    assert sorted(e.payload["order"] for e in placed) == ["o-1", "o-2", "o-3"]
    filled, _ = await events.query(store, events.Query(type="order.filled"))
    assert sorted(e.payload["order"] for e in filled) == ["o-1", "o-2"]
    by_task = {e.causation_id: e for e in placed}
    for task in tasks:
        assert task.output["placed"] == by_task[task.id].id
    [explicit] = [e for e in filled if e.payload["order"] == "o-1"]
    assert explicit.dedup_key == "fill:o-1" and tasks[0].output["filled"] == explicit.id
    # the same event twice within one attempt is two events, still not doubled by the retry
    ticks, _ = await events.query(store, events.Query(type="tick"))
    assert len(ticks) == 4
    # an explicit key is the event's identity across tasks: a second task's fill is the first
    again = await submit(store, "emits", order="o-1", key="fill:o-1", fails=0)
    [done] = await drain(store, [again])
    assert done.output["filled"] == explicit.id
    filled, _ = await events.query(store, events.Query(type="order.filled"))
    assert len(filled) == 2


async def test_a_retry_emitting_another_payload_appends_it_whatever_the_types_length(
        store: Store) -> None:
    # a type of 250 characters: the derived key must still tell the payloads apart (it
    # was cut at 255 characters, the payload's digest with it: the retry got attempt 1's)
    long_type = "t." + "x" * 248
    await agent(store, "byattempt", "emit_by_attempt_then_fail", max_retries=2)
    [done] = await drain(store, [await submit(store, "byattempt", type=long_type)])
    assert [a.outcome for a in done.attempts] == ["failed", "succeeded"]
    found, _ = await events.query(store, events.Query(type=long_type))
    assert sorted(e.payload["attempt"] for e in found) == [1, 2]
    assert all(len(e.dedup_key or "") <= 255 for e in found)


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
    [again] = await claims.claim(store, "w2")
    assert again.attempt == 2


async def test_workers_register_and_deregister(store: Store) -> None:
    from agentos.worker import instances

    worker = Worker(store, worker_id="w-test", agents=["echo"], concurrency=3)
    running = asyncio.create_task(worker.run())
    for _ in range(100):
        listed = await instances.list_all(store)
        if listed:
            break
        await asyncio.sleep(0.02)
    [me] = listed
    assert (me["id"], me["agents"], me["concurrency"], me["status"], me["alive"]) == (
        "w-test", ["echo"], 3, "idle", True)
    worker.stop()
    await asyncio.wait_for(running, 10)
    assert await instances.list_all(store) == []
    [gone] = await instances.list_all(store, include_stopped=True)
    assert gone["status"] == "stopped" and not gone["alive"]


async def run_until_final(store: Store, ids: list[str], worker: Worker,
                          then: Any = None) -> list[Task]:
    """Run ``worker`` until every task is final; ``then`` runs once all have started."""
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(1000):
            got = [await queue.get(store, i) for i in ids]
            if then is not None and all(g.status is not Status.PENDING for g in got):
                await then()
                then = None
            if all(g.status.final for g in got):
                return got
            await asyncio.sleep(0.02)
        raise AssertionError("tasks did not finish")
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)


async def test_sync_handlers_use_the_context_from_their_thread(store: Store) -> None:
    await agent(store, "echo", "echo")
    await registry.create(store, agent_spec.from_object(
        {"name": "syncemit", "version": "1.0.0",
         "handler": {"type": "python", "target": "tests.handlers:sync_emitter"},
         "config": {"factor": {"type": "integer", "value": 3}},
         "permissions": {"call_sub_agents": True}}), publish=True)
    [task] = await drain(store, [await submit(store, "syncemit", call=True)])
    assert task.status is Status.SUCCEEDED, task.to_dict()
    [event], _ = await events.query(store, events.Query(type="work.done"))
    assert task.output == {"event": event.id, "sub": {"echo": {"from": "sync"}, "attempt": 1}}
    assert event.payload == {"value": 3} and event.causation_id == task.id
    assert event.correlation_id == task.correlation_id


async def test_a_timed_out_sync_handler_keeps_its_task_until_its_thread_returns(
        store: Store, tmp_path: Path) -> None:
    # Given a sync handler that sleeps 0.8 s (it cannot be interrupted) and a 0.2 s timeout
    await agent(store, "rec", "record", timeout_s=0.2, max_retries=1)
    log = tmp_path / "runs.log"
    task_id = await submit(store, "rec", log=str(log), seconds=0.8)
    [task] = await run_until_final(store, [task_id], Worker(store, concurrency=1, lease_s=0.3))
    # Then both attempts time out, and the retry starts only once the first thread is done
    assert task.status is Status.FAILED
    assert [a.outcome for a in task.attempts] == ["timeout", "timeout"]
    spans = sorted(tuple(map(float, line.split()[1:3])) for line in log.read_text().splitlines())
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]  # never two runs at once
    first = task.attempts[0]
    assert (first.ended_at - first.started_at).total_seconds() >= 0.7  # recorded after the thread
    assert "0.2s" in first.error["message"]


async def test_a_sync_handler_sees_timeout_and_cancel_requests(store: Store,
                                                              tmp_path: Path) -> None:
    await agent(store, "patient", "patient", timeout_s=0.3, max_retries=0)
    await agent(store, "patient2", "patient")
    log = tmp_path / "ends.log"
    timed = await submit(store, "patient", log=str(log), seconds=30)
    asked = await submit(store, "patient2", log=str(log), seconds=30)

    async def cancel() -> None:
        await queue.cancel(store, asked)

    got = await run_until_final(store, [timed, asked], Worker(store, concurrency=2, lease_s=0.3),
                                then=cancel)
    assert [(g.status, g.attempts[0].outcome) for g in got] == [
        (Status.FAILED, "timeout"), (Status.CANCELLED, "cancelled")]
    ends = log.read_text().split()
    assert ends[0::2] == ["cancelled", "cancelled"]  # each saw ctx.cancelled
    assert all(float(s) < 10 for s in ends[1::2])


async def test_ctx_heartbeat_extends_the_lease(store: Store) -> None:
    await agent(store, "beater", "beater")
    task_id = await submit(store, "beater", before=0.5, after=1.5)
    leases = []

    async def watch() -> None:
        for _ in range(200):
            got = await queue.get(store, task_id)
            if got.status.final:
                return
            if got.lease_expires_at is not None:
                leases.append(got.lease_expires_at)
            await asyncio.sleep(0.02)

    # the worker's own heartbeats come every lease_s / 3 = 20 s: only ctx.heartbeat() moves it
    await run_until_final(store, [task_id], Worker(store, concurrency=1, lease_s=60),
                          then=watch)
    assert len(set(leases)) == 2 and (leases[-1] - leases[0]).total_seconds() >= 0.4


async def test_worker_status_is_busy_while_running(store: Store,
                                                   monkeypatch: Any) -> None:
    from agentos.worker import instances

    monkeypatch.setattr(instances, "HEARTBEAT_INTERVAL", 0.05)
    await agent(store, "slow", "slow")
    task_id = await submit(store, "slow", seconds=30)
    seen = []

    async def look() -> None:
        for _ in range(100):
            [me] = await instances.list_all(store)
            seen.append((me["status"], me["running"]))
            if me["status"] == "busy":
                break
            await asyncio.sleep(0.02)
        await queue.cancel(store, task_id)

    await run_until_final(store, [task_id], Worker(store, concurrency=2, lease_s=0.3),
                          then=look)
    assert seen[-1] == ("busy", 1)
    [me] = await instances.list_all(store, include_stopped=True)
    assert me["status"] == "stopped"


async def test_emit_honours_permissions_emit(store: Store) -> None:
    for name, allowed in (("allowed", ["work.*"]), ("refused", ["other.*", "work.x"]),
                          ("silent", [])):
        await registry.create(store, agent_spec.from_object(
            {"name": name, "version": "1.0.0",
             "handler": {"type": "python", "target": "tests.handlers:emitter"},
             "permissions": {"emit": allowed}, "limits": {"max_retries": 3}}), publish=True)
    await agent(store, "undeclared", "emitter")  # no permissions.emit: any type
    ok, refused, silent, free = await drain(store, [
        await submit(store, name) for name in ("allowed", "refused", "silent", "undeclared")])
    assert ok.status is Status.SUCCEEDED and free.status is Status.SUCCEEDED
    for task in (refused, silent):  # refused for good: one attempt, no retries
        assert task.status is Status.FAILED and len(task.attempts) == 1
        assert "may not emit 'work.done'" in task.attempts[0].error["message"]
    assert "permissions.emit allows other.*, work.x" in refused.error["message"]
    emitted, _ = await events.query(store, events.Query(type="work.done"))
    assert sorted(e.source for e in emitted) == ["agent:allowed", "agent:undeclared"]
