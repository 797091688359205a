"""Waiting in background loops: a wake-up with a timeout, and cancellations a driver
absorbed. Used by every loop (router, scheduler, reaper, sweeper, worker, bus) and
by the store's LISTEN connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


async def wait_wakeup(wakeup: asyncio.Event, timeout: float,
                      stop: asyncio.Event | None = None) -> None:
    """Wait until ``wakeup`` is set or ``timeout`` seconds pass.

    Background loops call this between passes, so it is also where a
    cancellation that a driver absorbed mid-query (psycopg may, while it
    cancels the query on the server) is honoured; and it uses
    ``asyncio.timeout``, since on Python 3.11 ``asyncio.wait_for`` can itself
    swallow a cancellation that races with the wake-up.
    """
    raise_if_cancelling()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            if stop is None:
                await wakeup.wait()
            else:  # also return at once when asked to stop
                waiters = [asyncio.ensure_future(e.wait()) for e in (wakeup, stop)]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
    raise_if_cancelling()


@contextlib.asynccontextmanager
async def stop_wakes(stop: asyncio.Event | None, wakeup: asyncio.Event) -> AsyncIterator[None]:
    """Within the block ``wakeup`` is set when ``stop`` is: a loop that waits for its
    wake-up alone (``wait_wakeup`` without ``stop``) still returns at once when asked
    to stop. One task for the block, where waiting for both makes two tasks a wait (a
    follower woken by every append paid that at each: ~5% of a server's CPU)."""
    if stop is None:
        yield
        return

    async def relay() -> None:
        await stop.wait()
        wakeup.set()

    task = asyncio.ensure_future(relay())
    try:
        yield
    finally:
        task.cancel()


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` if this task was asked to stop and it got lost."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
