"""Waiting in tests: poll a condition until it holds, and fail when time runs out.

A loaded 2-core machine makes every duration longer, so a test waits with a generous
deadline instead of sleeping a fixed time; running out of time is a failure that says
what was awaited, never a silent fall-through to the next assertion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(predicate: Callable[[], T], timeout: float, what: str = "the condition",
               interval: float = 0.05) -> T:
    """Call ``predicate`` until it returns something true and return that; raise
    AssertionError naming ``what`` when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def eventually_async(predicate: Callable[[], Awaitable[T]], timeout: float,
                           what: str = "the condition", interval: float = 0.05) -> T:
    """``eventually`` for a coroutine function, sleeping without blocking the loop."""
    deadline = time.monotonic() + timeout
    while True:
        found = await predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
