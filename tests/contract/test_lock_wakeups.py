"""A waiter is woken by the grant itself, never by a poll, on both backends: with the
waiters' polls set to an hour, a lock released by another store on PostgreSQL (as
another process would: the grant's NOTIFY) or by the same store on SQLite (the
process's own wake-up) is taken at once; on PostgreSQL the notification names the
grant, so the waiter returns it without reading the lock back."""

import asyncio
from typing import Any

import pytest

from agentos import locks
from agentos.locks import Claim
from agentos.locks import waiting as lock_waiting
from agentos.store import Store, open_store
from agentos.store import locks as store_locks

R = "device:pixel-7"
HOUR = 3600.0


@pytest.fixture
def no_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POLL_FIRST", "POLL", "POLL_LISTENING"):
        monkeypatch.setattr(lock_waiting, name, HOUR)


async def _queued(store: Store, owner: str) -> None:
    while not any(w["owner"] == owner for w in (await locks.get(store, R))["queue"]):
        await asyncio.sleep(0.01)


@pytest.mark.usefixtures("no_polls")
async def test_a_waiter_is_woken_by_the_grant_not_a_poll(database_url: str, backend: str
                                                          ) -> None:
    waiter_store = open_store(database_url)
    # PostgreSQL: the releaser is another store (what another process is to the waiter);
    # SQLite has no cross-process wake-up: the releaser is the waiter's own store
    releaser = open_store(database_url) if backend == "postgres" else waiter_store
    listener = asyncio.create_task(waiter_store.listen([store_locks.CHANNEL]))
    reads: list[Any] = []
    peek = waiter_store.locks.peek

    async def counted_peek(*args: Any) -> Any:
        reads.append(args)
        return await peek(*args)

    waiter_store.locks.peek = counted_peek  # type: ignore[method-assign]
    try:
        if backend == "postgres":
            while store_locks.CHANNEL not in waiter_store.listening:
                await asyncio.sleep(0.01)
        held = (await locks.acquire(releaser, R, Claim("a"))).grants[0]
        waiter = asyncio.create_task(locks.acquire(waiter_store, R, Claim("b"), wait_s=60))
        await _queued(releaser, "b")
        await asyncio.sleep(0.2)  # the waiter is parked on its wake-up
        reads.clear()
        await locks.release(releaser, R, "a", held.token)
        got = await asyncio.wait_for(waiter, 30)  # a poll would come after an hour
        assert got.granted and got.grants[0].token == held.token + 1
        state = await locks.get(releaser, R)
        assert state["holder"]["owner"] == "b"
        assert state["holder"]["token"] == got.grants[0].token
        assert got.grants[0].expires_at.isoformat() == state["holder"]["expires_at"]
        if backend == "postgres":
            assert reads == [], "the waiter read the lock back after its grant's NOTIFY"
        await locks.release(waiter_store, R, "b", got.grants[0].token)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        if releaser is not waiter_store:
            await releaser.close()
        await waiter_store.close()


def test_only_the_note_naming_the_entry_is_taken() -> None:
    notes = ["granted 7 3 2026-12-04T23:40:01.250000+00:00", "", "other",
             "granted 8 4 2026-12-04T23:40:02.000000+00:00"]
    token, expires = store_locks.Locks.noted_grant(notes, 8) or (0, None)
    assert token == 4 and expires is not None and expires.isoformat().startswith(
        "2026-12-04T23:40:02")
    assert store_locks.Locks.noted_grant(notes, 9) is None
    assert store_locks.Locks.noted_grant(notes, 70) is None
