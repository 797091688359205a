"""Failed-login counters: attempts are numbered atomically per key; past the maximum a
lockout starts, during which nothing counts; a lockout's end or a quiet window starts
the count over; a right password forgets it."""

from __future__ import annotations

import asyncio

from agentos.store import Store
from agentos.store import logins as counters

KEYS = ["user:ana", "ip:10.0.0.9"]


async def take(store: Store, *, lockout_s: float = 60.0, window_s: float = 60.0,
               keys: list[str] = KEYS) -> counters.Taken:
    async with store.write() as conn:
        return await counters.take(conn, keys, max_failures=3, lockout_s=lockout_s,
                                    window_s=window_s)


async def test_attempts_are_numbered_then_locked_out(store: Store) -> None:
    assert [(await take(store)).attempts for _ in range(3)] == [1, 2, 3]
    fourth = await take(store)
    assert fourth.attempts == 4 and fourth.locked_until is not None
    assert round((fourth.locked_until - fourth.now).total_seconds()) == 60
    # during the lockout nothing more is counted and the lockout does not grow
    fifth = await take(store)
    assert (fifth.attempts, fifth.locked_until) == (4, fourth.locked_until)
    # another user from the same address is locked out by the address's count
    assert (await take(store, keys=["user:bo", "ip:10.0.0.9"])).locked_until is not None


async def test_concurrent_attempts_get_distinct_numbers(store: Store) -> None:
    taken = await asyncio.gather(*(take(store) for _ in range(12)))
    assert sorted(t.attempts for t in taken) == [1, 2, 3, *([4] * 9)]
    assert sum(t.locked_until is None for t in taken) == 3


async def test_the_count_starts_over(store: Store) -> None:
    for _ in range(4):
        last = await take(store, lockout_s=0.3)
    assert last.locked_until is not None
    await asyncio.sleep(0.4)  # the lockout is over
    assert (await take(store, lockout_s=0.3)).attempts == 1
    await take(store)
    await asyncio.sleep(0.4)  # a quiet window
    assert (await take(store, window_s=0.3)).attempts == 1
    async with store.write() as conn:  # a right password
        await counters.forget(conn, KEYS)
    assert (await take(store)).attempts == 1
