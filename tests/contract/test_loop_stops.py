"""The log's followers (the router, a consumer) wait for an append's wake-up alone
(``aio.stop_wakes``), and still end at once when asked to stop, however long their
poll interval."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from agentos import aio, consumers, projections, router
from agentos.store import Store

LONG_POLL = 60.0  # seconds: a loop that noticed a stop only at its poll would time out


def waiting_long(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set when ``module``'s loop begins a wait of ``LONG_POLL``: it is idle then."""
    began = asyncio.Event()

    async def wait_wakeup(wakeup: asyncio.Event, timeout: float, *args: Any) -> None:
        if timeout == LONG_POLL:
            began.set()
        await aio.wait_wakeup(wakeup, timeout, *args)

    monkeypatch.setattr(module, "wait_wakeup", wait_wakeup)
    return began


async def stops_at_once(stop: asyncio.Event, began: asyncio.Event,
                        running: asyncio.Task[None]) -> None:
    await asyncio.wait_for(began.wait(), 30.0)
    stop.set()
    await asyncio.wait_for(running, 10.0)  # unrelayed: at its next poll, in 60 s


async def test_the_router_stops_at_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router, "POLL_INTERVAL", LONG_POLL)
    began = waiting_long(router, monkeypatch)
    stop = asyncio.Event()
    await stops_at_once(stop, began, asyncio.create_task(router.run(store, stop)))


async def test_a_consumer_stops_at_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "poll_interval", LONG_POLL)
    began = waiting_long(consumers, monkeypatch)
    stop = asyncio.Event()
    consumer = projections.TaskStats().consumer()
    await stops_at_once(stop, began, asyncio.create_task(consumers.run(store, consumer, stop)))
