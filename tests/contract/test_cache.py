"""The cache of hot reads on both backends: hits and misses, a writer reads its own write
at once, a load that spans a change is not kept, and another store (as another process
would) converges: by NOTIFY on PostgreSQL, within the short TTL on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from agentos import agent_spec, cache, registry
from agentos.store import Store, open_store

NOTIFY_BOUND = 10.0  # seconds for a NOTIFY to reach the other store: a loaded machine's
# stalls, far below LONG_TTL (asserted in use), so only the NOTIFY can explain it
STALL_S = 5.0  # seconds past the short TTL a loaded machine may take on SQLite


def definition(description: str, version: str = "1.0.0") -> agent_spec.AgentSpec:
    return agent_spec.from_object({"name": "cached", "version": version,
                                   "description": description,
                                   "handler": {"type": "python", "target": "m:f"}})


async def test_reads_hit_and_a_writer_sees_its_own_write_at_once(store: Store) -> None:
    hot = cache.of(store)
    await registry.create(store, definition("first"))
    for _ in range(3):
        assert (await registry.get(store, "cached")).definition["description"] == "first"
    assert hot.counters()["agent"] == {"hits": 2, "misses": 1}
    await registry.create(store, definition("second"))  # the draft replaced
    assert (await registry.get(store, "cached")).definition["description"] == "second"
    await registry.change_status(store, "cached", "1.0.0", "publish")
    assert (await registry.latest_published(store, "cached")) is not None
    assert (await registry.get(store, "cached")).status.value == "published"
    assert cache.counters()["agent"]["misses"] >= 3


async def test_a_load_that_spans_a_change_is_not_kept(store: Store) -> None:
    hot = cache.of(store)
    hot.ttl_s = 60.0
    started, release = asyncio.Event(), asyncio.Event()
    loads = 0

    async def slow() -> int:
        nonlocal loads
        loads += 1
        started.set()
        await release.wait()
        return loads

    reader = asyncio.create_task(hot.get("thing", "k", slow))
    await started.wait()
    async with store.write() as conn:  # a change commits while the load is out
        await cache.changed(store, conn)
    release.set()
    assert await reader == 1
    assert await hot.get("thing", "k", slow) == 2  # not served the value read before
    assert await hot.get("thing", "k", slow) == 2  # now kept


async def test_a_disabled_cache_always_loads(store: Store) -> None:
    hot = cache.of(store)
    hot.enabled = False
    await registry.create(store, definition("x"))
    for _ in range(3):
        await registry.get(store, "cached")
    assert "agent" not in hot.counters()


async def test_another_process_converges(database_url: str, backend: str) -> None:
    writer, reader = open_store(database_url), open_store(database_url)
    listening = asyncio.create_task(reader.listen([cache.CHANNEL]))
    try:
        await registry.create(writer, definition("before"))
        deadline = time.monotonic() + 5
        while backend == "postgres" and cache.CHANNEL not in reader.listening:
            assert time.monotonic() < deadline, "LISTEN never started"
            await asyncio.sleep(0.01)
        assert (await registry.get(reader, "cached")).definition["description"] == "before"
        assert cache.of(reader).ttl() == (cache.LONG_TTL if backend == "postgres"
                                          else cache.SHORT_TTL)
        await registry.create(writer, definition("after"))
        began = time.monotonic()
        while (await registry.get(reader, "cached")).definition["description"] != "after":
            assert time.monotonic() - began < NOTIFY_BOUND, "never converged"
            await asyncio.sleep(0.01)
        took = time.monotonic() - began
        assert took < (NOTIFY_BOUND if backend == "postgres" else cache.SHORT_TTL + STALL_S), \
            took
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await writer.close()
        await reader.close()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_counters_add_up_over_stores(database_url: str) -> None:
    stores = [open_store(database_url), open_store(database_url)]

    async def load() -> int:
        return 1

    try:
        for s in stores:
            for _ in range(3):
                await cache.of(s).get("kind-x", "k", load)
        assert cache.counters()["kind-x"] == {"hits": 4, "misses": 2}
    finally:
        for s in stores:
            await s.close()
