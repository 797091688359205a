"""A lost wake-up never loses an event: readers re-read the log every poll interval.

Events here come from another store (as from another process), whose commits
reach this one only by PostgreSQL NOTIFY; the LISTEN connection is killed first
and kept down. SQLite has no cross-process wake-up at all, so there the same
tests show that polling alone delivers.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from agentos import bus, events, subscriptions
from agentos.events import EventIn
from agentos.store import Store, open_store, postgres

MARGIN = 1.0  # seconds on top of a poll interval


@pytest.fixture
async def elsewhere(database_url: str) -> AsyncIterator[Store]:
    other = open_store(database_url)
    yield other
    await other.close()


async def listeners(store: Store) -> list[int]:
    async with store.read() as conn:
        return list((await conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"))).scalars())


async def lose_wakeups(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kill this process's LISTEN connection (PostgreSQL) and keep it from coming back."""
    if store.dialect != "postgresql":
        return
    monkeypatch.setattr(postgres, "LISTEN_RETRY", 60.0)
    for _ in range(200):
        if found := await listeners(store):
            break
        await asyncio.sleep(0.025)
    assert len(found) == 1, found
    async with store.read() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": found[0]})
    for _ in range(200):
        if not await listeners(store):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the LISTEN connection survived")


async def test_a_bus_subscriber_gets_the_event_by_the_next_poll(
        store: Store, elsewhere: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    b = bus.Bus(store)  # the server's poll interval: 2 s on PostgreSQL
    await b.start()
    try:
        await lose_wakeups(store, monkeypatch)

        async def first() -> events.Event:
            async for e in b.subscribe("lost.*"):
                return e
            raise AssertionError("the subscription ended")

        reader = asyncio.create_task(first())
        await asyncio.sleep(0.05)
        began = time.monotonic()
        [sent] = await events.append(elsewhere, [EventIn(type="lost.one")])
        got = await asyncio.wait_for(reader, b.poll_interval + MARGIN)
        assert got.id == sent.event.id
        assert time.monotonic() - began < b.poll_interval + MARGIN
        if store.dialect == "postgresql":
            assert await listeners(store) == []  # it came by polling, not by NOTIFY
    finally:
        await b.stop()


async def test_a_waiting_durable_reader_gets_the_event_by_the_next_poll(
        store: Store, elsewhere: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    listening = asyncio.create_task(store.listen([events.CHANNEL]))  # as a server does
    try:
        await subscriptions.create(store, "d", "lost.*")
        await lose_wakeups(store, monkeypatch)
        reader = asyncio.create_task(subscriptions.pending(store, "d", wait_s=20))
        await asyncio.sleep(0.05)
        began = time.monotonic()
        [sent] = await events.append(elsewhere, [EventIn(type="lost.one")])
        found = await asyncio.wait_for(reader, 20)
        assert [e.id for e in found] == [sent.event.id]
        assert time.monotonic() - began < store.poll_interval + MARGIN
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
