"""The workflow engine's follower of the log (``engine.follow``) on both backends:
while no run is running an append wakes nothing and no batch runs, yet a backlog is
read through, a run that starts (here or, on PostgreSQL, in another process) is moved
on at once, and the cursor follows the log within ``IDLE_READ_S``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agentos import audit, consumers, events
from agentos.store import Store, open_store
from agentos.store import workflows as store_workflows
from agentos.workflows import engine, runs
from tests.contract.test_workflows import WAIT, agent, start, step, workflow
from tests.waiting import eventually_async

pytestmark = pytest.mark.timeout(120)


@asynccontextmanager
async def following(store: Store) -> AsyncIterator[list[int]]:
    """``engine.follow`` running; yields the list of its batches' results."""
    batches: list[int] = []
    original = consumers.step

    async def counted(*args: Any, **kw: Any) -> int | None:
        applied = await original(*args, **kw)
        batches.append(applied or 0)
        return applied

    stop = asyncio.Event()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(consumers, "step", counted)
        task = asyncio.create_task(engine.follow(store, stop))
        try:
            yield batches
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def cursor_at_head(store: Store) -> bool:
    [at] = await consumers.positions(store, [engine.CONSUMER])
    return at.lag_events == 0


async def noise(store: Store, n: int, type_: str = "noise.tick") -> None:
    await events.append(store, [events.EventIn(type=type_, payload={"i": i})
                                for i in range(n)])


async def end_the_wait(store: Store, run_id: str) -> dict[str, Any]:
    """Append the event the waiter run's step waits for (level 4); the run, once that
    step succeeded."""
    await events.append(store, [events.EventIn(
        type="device.ready", payload={"device_id": "p7", "level": 4})])

    async def ready_ended() -> bool:
        found = await runs.get(store, run_id)
        return bool(step(found, "ready")["status"] == "succeeded")

    await eventually_async(ready_ended, 60, "the wait's step to succeed")
    return await runs.get(store, run_id)


async def test_an_idle_engine_reads_no_event_but_moves_a_starting_run_at_once(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """While no run is running a backlog of 2,500 events is passed over and appends
    wake no batch (the next pass put off for an hour, and polling too); then a run
    waiting for an event starts, and the event it waits for ends its step, after a
    backlog of 2,500 more, without any pass or poll: the run's own events woke the
    follower, which found a run running. (Fails if the follower skipped a batch while
    a run runs, or stopped reading a backlog after one batch.)"""
    monkeypatch.setattr(engine, "IDLE_READ_S", 3600.0)
    monkeypatch.setattr(store, "poll_interval", 3600.0)
    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "600"))
    await noise(store, 2500)
    async with following(store) as batches:
        await eventually_async(lambda: cursor_at_head(store), 60, "the backlog passed")
        for _ in range(20):
            await noise(store, 1)
        await asyncio.sleep(0.5)  # the follower has had its wake-ups
        assert batches == []  # no event read: nothing could move
        assert not await cursor_at_head(store)  # those 20 wait for the next pass
        await events.append(store, [events.EventIn(
            type="device.ready", payload={"device_id": "p7", "level": 1})])  # before the run
        run = await start(store, "waiter", {"device": "p7"})
        assert step(run, "ready")["status"] == "running"
        await eventually_async(lambda: cursor_at_head(store), 30, "the start's events read")
        await noise(store, 2500, "device.other")
        done = await end_the_wait(store, run["id"])
        assert step(done, "ready")["output"]["payload"]["level"] == 4


async def test_an_idle_engine_s_cursor_follows_the_log_within_its_read_interval(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no run running, events appended one at a time are passed over within
    ``IDLE_READ_S`` (polling put off for an hour: the skip itself sets the next
    pass), none of them read: retention and the consumer's lag keep following."""
    monkeypatch.setattr(engine, "IDLE_READ_S", 1.0)
    monkeypatch.setattr(store, "poll_interval", 3600.0)
    async with following(store) as batches:
        await eventually_async(lambda: cursor_at_head(store), 30, "the first pass")
        for _ in range(40):
            await noise(store, 1)
        await eventually_async(lambda: cursor_at_head(store), 30, "the appends passed")
        # one more, just after the pass that caught up: skipped, then passed all the same
        await noise(store, 1)
        await eventually_async(lambda: cursor_at_head(store), 30, "the last append passed")
        assert batches == []


async def test_appends_wake_no_idle_engine(store: Store, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """While no run is running an append wakes the follower no more: it waits for a run
    to start, so 30 appends cost it no read (``idle`` was asked at each before, a turn
    of the server's loop and a statement per append); a run that starts then is still
    moved on at once."""
    monkeypatch.setattr(engine, "IDLE_READ_S", 3600.0)
    monkeypatch.setattr(store, "poll_interval", 3600.0)
    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "600"))
    asked: list[int] = []
    original = engine.idle

    async def counted(store: Store) -> bool:
        asked.append(1)
        return await original(store)

    monkeypatch.setattr(engine, "idle", counted)
    async with following(store) as batches:
        await eventually_async(lambda: cursor_at_head(store), 30, "the first pass")
        await asyncio.sleep(0.1)
        before = len(asked)
        for _ in range(30):
            await noise(store, 1)
            await asyncio.sleep(0.01)  # the follower's turn, were it woken
        await asyncio.sleep(0.2)
        assert before >= 1  # it looked once after its first pass, and waits since
        assert len(asked) == before
        assert batches == []
        await start(store, "waiter", {"device": "p7"})  # still following
        await eventually_async(lambda: cursor_at_head(store), 30, "the start's events read")


async def test_a_run_started_in_another_process_wakes_an_idle_engine(
        database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run started by another server's store wakes this one's idle follower by its
    notification on ``RUNS_CHANNEL`` alone (NOTIFY on PostgreSQL, the wake-up socket of
    a SQLite file; a server's one listener takes it, beside the log's): with the poll
    and the pass put off for an hour and the log's notifications not listened to, the
    start's events are read; then the event its wait waits for ends the step."""
    monkeypatch.setattr(engine, "IDLE_READ_S", 3600.0)
    here, there = open_store(database_url), open_store(database_url)
    monkeypatch.setattr(here, "poll_interval", 3600.0)
    listener = asyncio.create_task(here.listen([store_workflows.RUNS_CHANNEL]))
    try:
        await agent(there, "doubler", "wf_double")
        await workflow(there, WAIT.replace("{timeout}", "600"))
        async with following(here):
            await eventually_async(lambda: cursor_at_head(here), 30, "the first pass")
            await asyncio.sleep(0.2)  # the follower waits for a start now
            run = await start(there, "waiter", {"device": "p7"})
            await eventually_async(lambda: cursor_at_head(here), 30,
                                   "the start's events read")
            await end_the_wait(here, run["id"])
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await here.close()
        await there.close()


async def test_the_cursor_passes_over_events_only_while_nothing_is_under_way(
        store: Store) -> None:
    """``pass_over`` refuses while a run is running (a wait armed, its step running),
    and moves the cursor to the head once the run was cancelled."""
    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "600"))
    run = await start(store, "waiter", {"device": "p7"})
    await noise(store, 3)
    assert await engine.pass_over(store) is False
    assert not await cursor_at_head(store)
    await runs.cancel(store, run["id"])
    assert await engine.pass_over(store) is True
    assert await cursor_at_head(store)


async def test_the_idle_read_answers_beside_a_server_s_audit_hook_without_the_pool(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """``idle`` (asked at every append) says whether a run is running, with the audit
    hook a server sets; it is one statement on a driver connection, taking no pooled
    connection through SQLAlchemy (it took one each before)."""
    store.before_commit(audit.flush, on_driver=audit.flush_on_driver)
    await agent(store, "doubler", "wf_double")
    await workflow(store, WAIT.replace("{timeout}", "600"))
    pooled: list[int] = []
    original = store.read

    def counted() -> Any:
        pooled.append(1)
        return original()

    monkeypatch.setattr(store, "read", counted)
    assert await engine.idle(store) is True
    monkeypatch.undo()
    run = await start(store, "waiter", {"device": "p7"})
    assert await engine.idle(store) is False
    await runs.cancel(store, run["id"])
    assert await engine.idle(store) is True
    assert pooled == []
