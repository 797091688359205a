"""Task logs on both backends: the lines a handler writes with ctx.log (async and sync)
are kept per attempt, in order, bounded per attempt (and say so), visible while the
attempt runs (flushed with the heartbeat), deleted with their task, and written
without a round trip of their own."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from agentos import agent_spec, queue, registry, task_logs
from agentos.errors import InvalidInput, NotFound
from agentos.store import Store
from agentos.store.tables import task_logs as log_table
from agentos.store.tables import tasks as task_table
from agentos.tasks import Status, TaskIn
from agentos.worker.loop import Worker


async def agent(store: Store, name: str, target: str) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": "1.0.0",
         "handler": {"type": "python", "target": f"tests.handlers:{target}"},
         "limits": {"max_retries": 2, "backoff": {"initial_s": 0.01, "jitter": False}}}),
        publish=True)


async def submit(store: Store, name: str, **input: Any) -> str:
    [(task, _)] = await queue.submit(store, [TaskIn(agent=name, input=input)])
    return task.id


async def drain(store: Store, ids: list[str], **kw: Any) -> None:
    for _ in range(50):
        await asyncio.wait_for(Worker(store, burst=True, concurrency=4, **kw).run(), 30)
        if all([(await queue.get(store, i)).status.final for i in ids]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("tasks did not finish")


def texts(page: dict[str, Any]) -> list[tuple[int, int, str, str]]:
    return [(x["attempt"], x["line"], x["level"], x["message"].splitlines()[0])
            for x in page["lines"]]


async def test_lines_per_attempt_async_and_sync(store: Store) -> None:
    await agent(store, "chatty", "chatty")
    await agent(store, "sync", "sync_chatty")
    flaky = await submit(store, "chatty", lines=2, fails=1)
    threaded = await submit(store, "sync", lines=2, last="from a thread")
    await drain(store, [flaky, threaded])
    assert (await queue.get(store, flaky)).status is Status.SUCCEEDED
    page = await task_logs.page(store, flaky)
    assert texts(page) == [
        (1, 1, "info", "attempt 1 line 1"), (1, 2, "info", "attempt 1 line 2"),
        (1, 3, "warning", "done"), (1, 4, "error", "attempt 1 fails"),
        (2, 1, "info", "attempt 2 line 1"), (2, 2, "info", "attempt 2 line 2"),
        (2, 3, "warning", "done")]
    assert "ValueError: boom" in page["lines"][3]["message"]  # the traceback with it
    assert page["status"] == "succeeded" and page["attempt"] == 2
    assert page["next_after"] is None
    assert [x["line"] for x in (await task_logs.page(store, flaky, attempt=2))["lines"]] == [
        1, 2, 3]
    assert texts(await task_logs.page(store, threaded)) == [
        (1, 1, "info", "attempt 1 line 1"), (1, 2, "info", "attempt 1 line 2"),
        (1, 3, "warning", "from a thread")]


async def test_pages_by_cursor(store: Store) -> None:
    await agent(store, "chatty", "chatty")
    task_id = await submit(store, "chatty", lines=9, fails=1)
    await drain(store, [task_id])
    seen, after = [], None
    while True:
        page = await task_logs.page(store, task_id, after=after, limit=4)
        seen += [(x["attempt"], x["line"]) for x in page["lines"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == [(1, n) for n in range(1, 12)] + [(2, n) for n in range(1, 11)]
    with pytest.raises(InvalidInput):
        await task_logs.page(store, task_id, after="2-3")
    with pytest.raises(InvalidInput):
        await task_logs.page(store, task_id, limit=0)
    with pytest.raises(NotFound):
        await task_logs.page(store, "no-such-task")


async def test_bounded_per_attempt_and_says_so(store: Store) -> None:
    await agent(store, "chatty", "chatty")
    by_lines = await submit(store, "chatty", lines=20)
    by_bytes = await submit(store, "chatty", lines=3, last="x" * 3000)
    await drain(store, [by_lines, by_bytes],
                log_limits=task_logs.Limits(max_lines=5, max_bytes=2048))
    lines = (await task_logs.page(store, by_lines))["lines"]
    assert [x["level"] for x in lines] == ["info"] * 5 + ["truncated"]
    assert "an attempt keeps 5 lines and 2048 bytes" in lines[-1]["message"]
    lines = (await task_logs.page(store, by_bytes))["lines"]
    assert [x["level"] for x in lines] == ["info"] * 3 + ["truncated"]


async def test_a_running_attempts_lines_come_with_its_heartbeat(store: Store) -> None:
    await agent(store, "slow", "chatty_slow")
    task_id = await submit(store, "slow", seconds=3.0)
    worker = Worker(store, concurrency=1, lease_s=0.6)  # heartbeats every 0.2 s
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            while True:
                page = await task_logs.page(store, task_id)
                if page["lines"]:
                    break
                await asyncio.sleep(0.05)
        assert page["status"] == "running"
        assert texts(page) == [(1, 1, "info", "started")]
        async with asyncio.timeout(10):
            while not (await queue.get(store, task_id)).status.final:
                await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await running
    assert texts(await task_logs.page(store, task_id)) == [
        (1, 1, "info", "started"), (1, 2, "info", "finished")]


async def test_odd_text_is_kept_and_nothing_fails(store: Store) -> None:
    await agent(store, "chatty", "chatty")
    task_id = await submit(store, "chatty", lines=0, odd=True)
    await drain(store, [task_id])
    assert (await queue.get(store, task_id)).status is Status.SUCCEEDED
    [odd, done] = (await task_logs.page(store, task_id))["lines"]
    assert odd["message"] == "nul \ufffd and ? here" and done["message"] == "done"


async def test_deleted_with_their_task(store: Store) -> None:
    await agent(store, "chatty", "chatty")
    task_id = await submit(store, "chatty")
    await drain(store, [task_id])
    async with store.write() as conn:
        await conn.execute(delete(task_table).where(task_table.c.id == task_id))
    async with store.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(log_table))).scalar_one()
    assert left == 0


async def test_retention_deletes_old_lines_of_ended_tasks(store: Store) -> None:
    """Lines older than the age go in batches, an ended task's only: a running task's
    old lines stay, and so do recent ones."""
    await agent(store, "chatty", "chatty")
    old, recent = await submit(store, "chatty", lines=4), await submit(store, "chatty")
    await drain(store, [old, recent])
    running = await submit(store, "chatty")
    async with store.write() as conn:  # a running attempt's lines (as a heartbeat writes)
        await conn.execute(update(task_table).where(task_table.c.id == running)
                           .values(status="running", attempt=1))
        await task_logs.write_in(conn, running, 1, task_logs.Remote(
            [task_logs.Sent("info", "still at it")], task_logs.Limits()))
        await conn.execute(update(log_table).where(log_table.c.task_id.in_([old, running]))
                           .values(at=datetime.now(UTC) - timedelta(days=40)))
    assert await task_logs.prune(store, timedelta(days=30), batch=2) == 5
    assert (await task_logs.page(store, old))["lines"] == []
    assert len((await task_logs.page(store, recent))["lines"]) == 4
    assert texts(await task_logs.page(store, running)) == [(1, 1, "info", "still at it")]
    assert await task_logs.prune(store, timedelta(days=30)) == 0


@contextlib.asynccontextmanager
async def counting(store: Store) -> AsyncIterator[Callable[[], int]]:
    """Counts the transactions and driver round trips the store opens meanwhile."""
    count = 0
    originals = {name: getattr(store, name) for name in ("write", "driver", "statement")}

    def counted(name: str) -> Any:
        def opened(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            count += 1
            return originals[name](*args, **kwargs)
        return opened

    for name in originals:
        setattr(store, name, counted(name))
    try:
        yield lambda: count
    finally:
        for name in originals:
            delattr(store, name)


async def test_no_round_trip_of_their_own(store: Store) -> None:
    """One worker running 20 tasks one at a time opens as many transactions whether
    their handlers log nothing or 30 lines each."""
    await agent(store, "chatty", "chatty")
    opened = []
    for lines in (0, 30):
        ids = [(await queue.submit(store, [TaskIn(agent="chatty", input={"lines": lines})]))[0][0]
               .id for _ in range(20)]
        async with counting(store) as count:
            # no claiming ahead: its claim sizes follow the handlers' timing, and with
            # them the number of round trips
            await asyncio.wait_for(Worker(store, burst=True, concurrency=1, prefetch=0).run(),
                                   30)
        opened.append(count())
        assert all([(await queue.get(store, i)).status is Status.SUCCEEDED for i in ids])
    assert len((await task_logs.page(store, ids[0]))["lines"]) == 31
    assert abs(opened[1] - opened[0]) <= 3, opened  # a reaper tick or two, not 600 or 20
