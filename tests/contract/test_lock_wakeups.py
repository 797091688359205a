"""A waiter is woken by the grant itself, never by a poll, on both backends: with the
waiters' polls set to an hour, a lock released by another store (as another process
would: the grant's NOTIFY on PostgreSQL, a line on the waiters' wake-up socket on
SQLite) is taken at once; the notification names the grant, so the waiter returns it
without reading the lock back."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agentos import events, locks
from agentos.locks import Claim
from agentos.locks import state as lock_state
from agentos.locks import waiting as lock_waiting
from agentos.store import Store, open_store
from agentos.store import locks as store_locks

R = "device:pixel-7"
HOUR = 3600.0


@pytest.fixture
def no_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POLL_FIRST", "POLL", "POLL_LISTENING"):
        monkeypatch.setattr(lock_waiting, name, HOUR)


@asynccontextmanager
async def waiting_stores(database_url: str, backend: str
                         ) -> AsyncIterator[tuple[Store, Store, list[str]]]:
    """The waiters' store, listening, and the owners whose waiter read the lock after a
    wake-up (``Locks.look``); and the releaser's store, another one (what another
    process is to the waiters)."""
    waiter_store, releaser = open_store(database_url), open_store(database_url)
    listener = asyncio.create_task(waiter_store.listen([store_locks.CHANNEL]))
    reads: list[str] = []
    look = waiter_store.locks.look

    async def counted_look(*args: Any) -> Any:
        reads.append(args[1])
        return await look(*args)

    waiter_store.locks.look = counted_look  # type: ignore[method-assign]
    try:
        while store_locks.CHANNEL not in waiter_store.listening:
            await asyncio.sleep(0.01)
        yield waiter_store, releaser, reads
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await releaser.close()
        await waiter_store.close()


async def _queued(store: Store, owner: str) -> None:
    while not any(w["owner"] == owner for w in (await locks.get(store, R))["queue"]):
        await asyncio.sleep(0.01)


@pytest.mark.usefixtures("no_polls")
async def test_a_waiter_is_woken_by_the_grant_not_a_poll(database_url: str, backend: str
                                                          ) -> None:
    async with waiting_stores(database_url, backend) as (waiter_store, releaser, reads):
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
        assert reads == [], "the waiter read the lock back after its grant's notification"
        await locks.release(waiter_store, R, "b", got.grants[0].token)


def test_only_the_note_naming_the_entry_is_taken() -> None:
    notes = ["granted 7 3 2026-12-04T23:40:01.250000+00:00", "", "other",
             "granted 8 4 2026-12-04T23:40:02.000000+00:00"]
    token, expires = store_locks.Locks.noted_grant(notes, 8) or (0, None)
    assert token == 4 and expires is not None and expires.isoformat().startswith(
        "2026-12-04T23:40:02")
    assert store_locks.Locks.noted_grant(notes, 9) is None
    assert store_locks.Locks.noted_grant(notes, 70) is None


async def test_a_contended_lock_is_handed_over_without_trying_the_free_first(
        store: Store, backend: str) -> None:
    """After a release that handed the lock over, the next release of that resource
    tries the hand-over first, not the one-statement free that a queued waiter
    refuses; once nobody waits, the free again. On SQLite, where the hand-over frees
    a lock nobody waits for in the same one transaction, every release is one."""
    frees: list[str] = []
    free = store.locks.release

    async def counted_free(params: dict[str, Any]) -> bool:
        frees.append(params["owner"])
        return await free(params)

    store.locks.release = counted_free  # type: ignore[method-assign]
    first = (await locks.acquire(store, R, Claim("a"))).grants[0]
    b = asyncio.create_task(locks.acquire(store, R, Claim("b"), wait_s=30))
    await _queued(store, "b")
    c = asyncio.create_task(locks.acquire(store, R, Claim("c"), wait_s=30))
    await _queued(store, "c")
    await locks.release(store, R, "a", first.token)  # (PostgreSQL: tries the free first)
    got_b = (await asyncio.wait_for(b, 10)).grants[0]
    await locks.release(store, R, "b", got_b.token)  # c waits: hand-over first
    got_c = (await asyncio.wait_for(c, 10)).grants[0]
    assert (got_b.token, got_c.token) == (first.token + 1, first.token + 2)
    await locks.release(store, R, "c", got_c.token)  # nobody waits: freed all the same
    state = await locks.get(store, R)
    assert state["holder"] is None and state["queue"] == []
    again = (await locks.acquire(store, R, Claim("d"))).grants[0]
    await locks.release(store, R, "d", again.token)
    assert frees == ([] if backend == "sqlite" else ["a", "d"])
    assert [e[0] for e in await lock_events(store)].count("lock.acquired") == 4


async def test_a_wait_for_a_lock_this_process_handed_over_joins_before_taking(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A release that handed the lock over makes this process's next wait for it join
    the queue without trying to take it first (an attempt that a held lock refuses);
    after a release that freed it, a wait takes it first again. A wrong guess (the lock
    freed elsewhere) joins, finds no holder, and takes it."""
    steps: list[tuple[str, str]] = []

    def counted(step: str, run: Any) -> Any:
        def sqlite_step(db: Any, params: dict[str, Any]) -> Any:
            steps.append((step, params["owner"]))
            return run(db, params)
        return sqlite_step

    def counted_async(step: str, run: Any) -> Any:
        async def postgres_step(params: dict[str, Any]) -> Any:
            steps.append((step, params["owner"]))
            return await run(params)
        return postgres_step

    # SQLite's steps run in one transaction, PostgreSQL's one statement each
    monkeypatch.setattr(store_locks, "_acquire_sqlite",
                        counted("take", store_locks._acquire_sqlite))
    monkeypatch.setattr(store_locks, "_join_sqlite", counted("join", store_locks._join_sqlite))
    monkeypatch.setattr(store.locks, "acquire", counted_async("take", store.locks.acquire))
    monkeypatch.setattr(store.locks, "join", counted_async("join", store.locks.join))
    first = (await locks.acquire(store, R, Claim("a"))).grants[0]
    b = asyncio.create_task(locks.acquire(store, R, Claim("b"), wait_s=30))
    await _queued(store, "b")
    await locks.release(store, R, "a", first.token)  # handed over to b
    got_b = (await asyncio.wait_for(b, 10)).grants[0]
    steps.clear()
    a = asyncio.create_task(locks.acquire(store, R, Claim("a"), wait_s=30))
    await _queued(store, "a")
    assert steps == [("join", "a")], "the wait tried to take a lock it had just handed over"
    await locks.release(store, R, "b", got_b.token)  # handed over to a
    got_a = (await asyncio.wait_for(a, 10)).grants[0]
    assert got_a.token == got_b.token + 1
    await locks.release(store, R, "a", got_a.token)  # nobody waits: freed
    steps.clear()
    again = (await locks.acquire(store, R, Claim("d"), wait_s=30)).grants[0]
    assert again.token == got_a.token + 1 and steps == [("take", "d")]
    await locks.release(store, R, "d", again.token)
    monkeypatch.setitem(lock_state._CONTENDED, R, None)  # a wrong guess
    steps.clear()
    wrong = (await locks.acquire(store, R, Claim("e"), wait_s=30)).grants[0]
    assert wrong.token == again.token + 1 and steps == [("join", "e"), ("take", "e")]
    await locks.release(store, R, "e", wrong.token)
    assert [e[0] for e in await lock_events(store)].count("lock.queued") == 2


async def lock_events(store: Store) -> list[tuple[str, str | None]]:
    page, _ = await events.query(store, events.Query(type="lock.*", limit=1000))
    return [(e.type, e.payload["owner"]) for e in page]


async def test_a_waiter_on_another_store_reads_the_lock_only_after_a_commit(
        database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no notification can reach it (a SQLite process that does not listen), a
    waiter looks often but reads the lock only when the database changed (the
    write-ahead log's stat) or every STAMP_READ: a holder that keeps it a while costs
    the waiter no reads, and the release is seen at the next look. PostgreSQL's waiter
    listens instead."""
    monkeypatch.setattr(lock_waiting, "STAMP_READ", HOUR, raising=False)  # no read by time
    for name in ("POLL_FIRST", "POLL"):  # (a read at every look without the stamp)
        monkeypatch.setattr(lock_waiting, name, 0.001)
    holder, waiter_store = open_store(database_url), open_store(database_url)
    listener = asyncio.create_task(waiter_store.listen([store_locks.CHANNEL])
                                   if backend == "postgres" else asyncio.sleep(HOUR))
    reads: list[Any] = []
    look = waiter_store.locks.look  # a waiter's read of the lock after a wake-up

    async def counted_look(*args: Any) -> Any:
        reads.append(args)
        return await look(*args)

    waiter_store.locks.look = counted_look  # type: ignore[method-assign]
    try:
        if backend == "postgres":
            while store_locks.CHANNEL not in waiter_store.listening:
                await asyncio.sleep(0.01)
        held = (await locks.acquire(holder, R, Claim("a"))).grants[0]
        waiter = asyncio.create_task(locks.acquire(waiter_store, R, Claim("b"), wait_s=60))
        await _queued(holder, "b")
        await asyncio.sleep(0.1)
        reads.clear()
        await asyncio.sleep(0.5)  # the holder keeps the lock; nothing commits
        assert len(reads) <= 1, f"{len(reads)} reads while nothing changed"
        await locks.release(holder, R, "a", held.token)
        got = await asyncio.wait_for(waiter, 30)
        assert got.granted and got.grants[0].token == held.token + 1
        await locks.release(waiter_store, R, "b", got.grants[0].token)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await holder.close()
        await waiter_store.close()


@pytest.mark.usefixtures("no_polls")
async def test_a_waiter_woken_by_a_grant_to_another_entry_does_not_read(
        database_url: str, backend: str) -> None:
    """Every grant's notification reaches every waiting process, and a grant to a
    waiter's own entry names it: a waiter woken only by grants to other entries goes
    back to waiting without reading the lock; a wake-up that names nothing (a commit of
    the full path in this process, a LISTEN connection back) still makes it read."""
    async with waiting_stores(database_url, backend) as (waiter_store, releaser, reads):
        held = (await locks.acquire(releaser, R, Claim("a"))).grants[0]
        b = asyncio.create_task(locks.acquire(waiter_store, R, Claim("b"), wait_s=60))
        await _queued(releaser, "b")
        c = asyncio.create_task(locks.acquire(waiter_store, R, Claim("c"), wait_s=60))
        await _queued(releaser, "c")
        await asyncio.sleep(0.2)  # both parked on their wake-ups
        reads.clear()
        await locks.release(releaser, R, "a", held.token)  # to b; c hears of it
        got_b = (await asyncio.wait_for(b, 30)).grants[0]
        await asyncio.sleep(0.3)  # c had the note as soon as b did
        assert not c.done()
        assert reads == [], "a waiter read the lock after a grant to another entry"
        d = asyncio.create_task(locks.acquire(waiter_store, R, Claim("d"), wait_s=60))
        await _queued(releaser, "d")
        await asyncio.sleep(0.2)
        reads.clear()
        waiter_store.wake(store_locks.CHANNEL)  # names nothing: both look
        async with asyncio.timeout(30):
            while not {"c", "d"} <= set(reads):
                await asyncio.sleep(0.01)
        await locks.release(waiter_store, R, "b", got_b.token)  # to c
        got_c = (await asyncio.wait_for(c, 30)).grants[0]
        await locks.release(waiter_store, R, "c", got_c.token)  # to d
        got_d = (await asyncio.wait_for(d, 30)).grants[0]
        assert (got_b.token, got_c.token, got_d.token) == (held.token + 1, held.token + 2,
                                                           held.token + 3)
        await locks.release(waiter_store, R, "d", got_d.token)


async def test_a_queue_entry_s_id_is_never_given_again(store: Store) -> None:
    """A grant's note names the entry it served, and a waiter whose entry it names
    returns the grant unread: a later entry given the id of a deleted one (SQLite gave
    the newest deleted id again) would take an earlier grant's note, and its token, for
    its own."""
    held = (await locks.acquire(store, R, Claim("a"))).grants[0]
    first = await locks.acquire(store, R, Claim("b"), wait_s=0.2)  # queues, then leaves
    assert not first.granted and first.entry is not None
    assert (await locks.get(store, R))["queue"] == []
    second = asyncio.create_task(locks.acquire(store, R, Claim("c"), wait_s=30))
    await _queued(store, "c")
    async with store.read() as conn:
        entry = await store.locks.waiter(conn, R, "c")
    assert entry.id > first.entry
    await locks.release(store, R, "a", held.token)
    got = (await asyncio.wait_for(second, 10)).grants[0]
    await locks.release(store, R, "c", got.token)
