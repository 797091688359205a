"""What every write does around its connection, on both backends and on both ways in
(``write()``, a transaction; ``statement()``, autocommit where the backend can): a
``notify`` wakes this process's listeners once the write has committed and not
before, a write that fails wakes nobody, driver errors come out as domain errors,
and the before-commit hooks run inside the write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.errors import Conflict
from agentos.store import Store

WAYS: dict[str, Callable[[Store], AbstractAsyncContextManager[AsyncConnection]]] = {
    "write": lambda store: store.write(),
    "statement": lambda store: store.statement(),
}


@pytest.fixture
async def probe(store: Store) -> AsyncIterator[Store]:
    async with store.write() as conn:
        await conn.execute(text("CREATE TABLE seam_probe (k VARCHAR(20) PRIMARY KEY)"))
    yield store


async def keys(store: Store) -> list[str]:
    async with store.read() as conn:
        return list((await conn.execute(text("SELECT k FROM seam_probe ORDER BY k"))).scalars())


@pytest.mark.parametrize("way", WAYS)
async def test_a_notify_wakes_listeners_once_the_write_committed(probe: Store, way: str) -> None:
    woken, other = probe.wakeup("seam.a"), probe.wakeup("seam.b")
    async with WAYS[way](probe) as conn:
        await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('one')"))
        await probe.notify(conn, "seam.a")
        await probe.notify(conn, "seam.a")  # twice in one write: one wake-up
        assert not woken.is_set()  # not before the commit
    assert woken.is_set() and not other.is_set()
    assert await keys(probe) == ["one"]
    woken.clear()
    async with WAYS[way](probe) as conn:  # a write that notifies nothing wakes nobody
        await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('two')"))
    assert not woken.is_set()


@pytest.mark.parametrize("way", WAYS)
async def test_a_write_that_fails_wakes_nobody(probe: Store, way: str) -> None:
    woken = probe.wakeup("seam.a")
    with pytest.raises(RuntimeError):
        async with WAYS[way](probe) as conn:
            await probe.notify(conn, "seam.a")
            raise RuntimeError("the caller's own failure")
    assert not woken.is_set()
    with pytest.raises(Conflict):  # a driver error, as the domain's
        async with WAYS[way](probe) as conn:
            await probe.notify(conn, "seam.a")
            await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('same')"))
            await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('same')"))
    assert not woken.is_set()
    # write(): the whole transaction is gone; statement() on PostgreSQL committed its
    # first statement on its own (autocommit), as it says
    expected = ["same"] if way == "statement" and probe.dialect == "postgresql" else []
    assert await keys(probe) == expected


@pytest.mark.parametrize("way", WAYS)
async def test_the_before_commit_hooks_run_inside_every_write(probe: Store, way: str) -> None:
    seen: list[Any] = []

    async def hook(conn: Any) -> None:
        seen.append((await conn.execute(text("SELECT count(*) FROM seam_probe"))).scalar())
        await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('hook')"))

    probe.before_commit(hook)
    woken = probe.wakeup("seam.a")
    async with WAYS[way](probe) as conn:
        await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('mine')"))
        await probe.notify(conn, "seam.a")
    assert seen == [1]  # after the block's own statements, in its transaction
    assert await keys(probe) == ["hook", "mine"] and woken.is_set()
    with pytest.raises(RuntimeError):
        async with WAYS[way](probe) as conn:
            await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('lost')"))
            raise RuntimeError("failed: the hook does not run")
    assert seen == [1] and await keys(probe) == ["hook", "mine"]



OPENINGS: dict[str, Callable[[Store], AbstractAsyncContextManager[AsyncConnection]]] = {
    **WAYS, "read": lambda store: store.read()}


async def test_a_write_that_commits_closes_its_connection_in_the_callers_task(
        probe: Store) -> None:
    """SQLAlchemy closes a connection in a task of its own (so that a cancellation cannot
    cut the close short), which costs the caller several rounds of a busy event loop. A
    committed write has nothing left to wait for: it is closed in place."""
    async with probe.write() as conn:  # the pool holds a connection already
        await conn.execute(text("SELECT 1"))
    made: list[Any] = []
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        made.append(coro)
        if factory is not None:
            return factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        async with probe.write() as conn:
            await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('in place')"))
    finally:
        loop.set_task_factory(factory)
    assert made == []
    assert await keys(probe) == ["in place"]
    assert probe.pool_status().get("checked_out", 0) == 0


@pytest.mark.parametrize("way", OPENINGS)
async def test_every_way_in_hands_its_connection_back_however_its_block_ends(
        probe: Store, way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ended well, failed, cancelled while its block waits, or cancelled while its
    connection is being closed: no connection stays checked out of the pool, and the
    store goes on working. psycopg is made to yield to the loop at every step that
    does not block (it does so after 5 ms of them), so that the close, which does no
    I/O, can be interrupted at each of its steps."""
    import psycopg.waiting

    monkeypatch.setattr(psycopg.waiting, "MAX_BUSY_TIME", 0.0)
    async with OPENINGS[way](probe) as conn:
        await conn.execute(text("SELECT 1"))
    with pytest.raises(RuntimeError):
        async with OPENINGS[way](probe) as conn:
            await conn.execute(text("SELECT 1"))
            raise RuntimeError("the caller's own failure")
    entered = asyncio.Event()

    async def waits() -> None:
        async with OPENINGS[way](probe) as conn:
            await conn.execute(text("SELECT 1"))
            entered.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(waits())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for rounds in range(8):  # cancelled after its block, a round later each time
        ended = asyncio.Event()

        async def ends() -> None:
            async with OPENINGS[way](probe) as conn:
                await conn.execute(text("SELECT 1"))
                ended.set()  # noqa: B023

        task = asyncio.create_task(ends())
        while not ended.is_set():
            await asyncio.sleep(0)
        for _ in range(rounds):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert probe.pool_status().get("checked_out", 0) == 0, rounds
    async with probe.write() as conn:
        await conn.execute(text("INSERT INTO seam_probe (k) VALUES ('after')"))
    assert await keys(probe) == ["after"]
