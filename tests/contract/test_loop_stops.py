"""The log's followers (the router, a consumer) wait for an append's wake-up alone
(``aio.stop_wakes``), and still end at once when asked to stop, however long their
poll interval."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentos import consumers, projections, router
from agentos.store import Store

LONG_POLL = 60.0  # seconds: a loop that noticed a stop only at its poll would time out


async def stops_at_once(store: Store, stop: asyncio.Event, running: asyncio.Task[None]) -> None:
    await asyncio.sleep(0.3)  # caught up, waiting for a wake-up
    assert not running.done()
    asked = time.monotonic()
    stop.set()
    await asyncio.wait_for(running, 5.0)
    assert time.monotonic() - asked < 2.0  # unrelayed: at its next poll, in 60 s


async def test_the_router_stops_at_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router, "POLL_INTERVAL", LONG_POLL)
    stop = asyncio.Event()
    await stops_at_once(store, stop, asyncio.create_task(router.run(store, stop)))


async def test_a_consumer_stops_at_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "poll_interval", LONG_POLL)
    stop = asyncio.Event()
    consumer = projections.TaskStats().consumer()
    await stops_at_once(store, stop, asyncio.create_task(consumers.run(store, consumer, stop)))
