"""Lock guarantees on both backends, through the domain: fencing tokens, the priority
queue, leases and their expiry, all-or-nothing acquire-many, events."""

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentos import events, locks
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.locks import Claim
from agentos.locks import state as lock_state
from agentos.locks.model import claim_params
from agentos.store import Store, open_store
from agentos.store.locks import Joined
from tests.round_trips import RoundTrips

R = "device:pixel-7"
HOLD_S = 0.05  # how long a test holds a lock whose hold it then reads in an event
CLOCK_MS = 5  # the database clock against time.monotonic(): millisecond timestamps


async def lock_events(store: Store) -> list[tuple[str, str | None, int | None]]:
    page, _ = await events.query(store, events.Query(type="lock.*", limit=1000))
    return [(e.type, e.payload["owner"], e.payload["token"]) for e in page]


async def test_tokens_grow_with_every_grant_and_release_needs_them(store: Store) -> None:
    first = await locks.acquire(store, R, Claim("a"))
    assert first.granted and first.grants[0].token == 1
    with pytest.raises(Conflict) as wrong_owner:
        await locks.release(store, R, "b", 1)
    assert wrong_owner.value.code == "lock_not_owner"
    with pytest.raises(Conflict) as stale:
        await locks.release(store, R, "a", 7)
    assert stale.value.code == "lock_stale_token"
    assert (await locks.get(store, R))["holder"]["owner"] == "a"  # nothing changed
    await locks.release(store, R, "a", 1)
    with pytest.raises(Conflict) as not_held:
        await locks.release(store, R, "a", 1)
    assert not_held.value.code == "lock_not_held"
    second = await locks.acquire(store, R, Claim("b"))
    assert second.grants[0].token == 2
    assert await lock_events(store) == [("lock.acquired", "a", 1), ("lock.released", "a", 1),
                                        ("lock.acquired", "b", 2)]


async def test_try_lock_reports_position_and_does_not_queue(store: Store) -> None:
    await locks.acquire(store, R, Claim("a"))
    busy = await locks.acquire(store, R, Claim("b"))
    assert not busy.granted and busy.position == 1
    assert (await locks.get(store, R))["queue"] == []
    again = await locks.acquire(store, R, Claim("a", ttl_s=60))  # the holder asks again
    assert again.granted and again.grants[0].token == 1


async def test_waiters_are_served_by_priority_then_arrival(store: Store) -> None:
    held = (await locks.acquire(store, R, Claim("holder"))).grants[0]
    order: list[str] = []

    async def wait(owner: str, priority: int) -> locks.Grant:
        got = await locks.acquire(store, R, Claim(owner, priority=priority), wait_s=30)
        assert got.granted
        order.append(owner)
        return got.grants[0]

    waiters = []
    for owner, priority in (("p2", 2), ("p9", 9), ("p5", 5), ("p5b", 5)):
        waiters.append(asyncio.create_task(wait(owner, priority)))
        while len((await locks.get(store, R))["queue"]) < len(waiters):
            await asyncio.sleep(0.01)
    queue = (await locks.get(store, R))["queue"]
    assert [(w["owner"], w["position"]) for w in queue] == [
        ("p9", 1), ("p5", 2), ("p5b", 3), ("p2", 4)]
    await locks.release(store, R, "holder", held.token)
    for n in range(4):
        while len(order) <= n:
            await asyncio.sleep(0.01)
        grant = await waiters[["p2", "p9", "p5", "p5b"].index(order[n])]
        await locks.release(store, R, order[n], grant.token)
    assert order == ["p9", "p5", "p5b", "p2"]
    types = [t for t, _, _ in await lock_events(store)]
    assert types.count("lock.queued") == 4 and types.count("lock.acquired") == 5


async def test_a_waiter_leaves_the_queue_when_its_wait_ends(store: Store) -> None:
    await locks.acquire(store, R, Claim("a"))
    late = await locks.acquire(store, R, Claim("b"), wait_s=0.3)
    assert not late.granted and late.position == 1
    assert (await locks.get(store, R))["queue"] == []


async def test_expired_lease_is_reclaimed_and_goes_to_the_next_waiter(store: Store) -> None:
    first = (await locks.acquire(store, R, Claim("a", ttl_s=1.5))).grants[0]
    waiter = asyncio.create_task(locks.acquire(store, R, Claim("b"), wait_s=10))
    while not (await locks.get(store, R))["queue"]:
        await asyncio.sleep(0.01)
    sweeper = asyncio.create_task(locks.run_sweeper(store))
    try:
        got = await asyncio.wait_for(waiter, 10)
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
    assert got.granted and got.grants[0].token == first.token + 1
    with pytest.raises(Conflict):  # the late holder cannot release or renew any more
        await locks.release(store, R, "a", first.token)
    with pytest.raises(Conflict):
        await locks.renew(store, R, "a", first.token, 10)
    assert [t for t, _, _ in await lock_events(store)] == [
        "lock.acquired", "lock.queued", "lock.expired", "lock.acquired"]


async def test_an_acquire_reclaims_a_lapsed_lease_itself(store: Store) -> None:
    await locks.acquire(store, R, Claim("a", ttl_s=0.05))
    await asyncio.sleep(0.1)
    got = await locks.acquire(store, R, Claim("b"))
    assert got.granted and got.grants[0].token == 2


async def test_renew_extends_and_force_release_grants_the_next(store: Store) -> None:
    g = (await locks.acquire(store, R, Claim("a", ttl_s=1))).grants[0]
    renewed = await locks.renew(store, R, "a", g.token, 120)
    assert renewed.expires_at > g.expires_at
    waiter = asyncio.create_task(locks.acquire(store, R, Claim("b"), wait_s=10))
    while not (await locks.get(store, R))["queue"]:
        await asyncio.sleep(0.01)
    assert (await locks.force_release(store, R))["owner"] == "a"
    assert (await waiter).grants[0].token == 2
    with pytest.raises(Conflict):
        await locks.force_release(store, "device:free")
    assert "lock.force_released" in [t for t, _, _ in await lock_events(store)]


async def test_a_release_racing_a_waiter_that_queues_hands_the_lock_over(store: Store) -> None:
    """A release frees a lock in one statement only while no waiter is queued, judged on
    the lock row's newest version: a waiter that queues while that statement waits for
    the row (on PostgreSQL its snapshot was taken before) gets the lock from it."""
    held = (await locks.acquire(store, R, Claim("a"))).grants[0]
    async with store.write() as conn:  # a waiter queues, holding the lock row to commit
        assert await lock_state.try_one(store, conn, R, Claim("b"), [], queue_for=30) == 1
        release = asyncio.create_task(locks.release(store, R, "a", held.token))
        await asyncio.sleep(0.3)
        assert not release.done()
    await asyncio.wait_for(release, 10)
    state = await locks.get(store, R)
    assert state["holder"] is not None, "the lock was freed with a waiter queued"
    assert state["holder"]["owner"] == "b" and state["holder"]["token"] == held.token + 1
    assert state["queue"] == []
    # the queue is empty again: the next release and acquire take one statement each
    await locks.release(store, R, "b", held.token + 1)
    again = await locks.acquire(store, R, Claim("c"))
    assert again.granted and again.grants[0].token == held.token + 2


async def test_a_hand_over_racing_a_waiter_that_queues_grants_it_the_lock(store: Store) -> None:
    """A hand-over reads the queue only once it holds the lock row (on PostgreSQL a
    statement of its own before the hand-over's, both sent in one round trip): a waiter
    that queues while the hand-over waits for the row is seen, and granted first when
    it ranks first."""
    held = (await locks.acquire(store, R, Claim("a"))).grants[0]
    async with store.write() as conn:
        assert await lock_state.try_one(store, conn, R, Claim("x"), [], queue_for=30) == 1
    await locks.release(store, R, "a", held.token)  # handed to x: the next release of R
    x = (await locks.get(store, R))["holder"]       # is a hand-over from the start
    assert x["owner"] == "x"
    async with store.write() as conn:
        assert await lock_state.try_one(store, conn, R, Claim("z"), [], queue_for=30) == 1
    async with store.write() as conn:  # y queues ahead of z, holding the lock row to commit
        assert await lock_state.try_one(store, conn, R, Claim("y", priority=9), [],
                                        queue_for=30) == 1
        release = asyncio.create_task(locks.release(store, R, "x", x["token"]))
        await asyncio.sleep(0.3)
        assert not release.done()
    await asyncio.wait_for(release, 10)
    state = await locks.get(store, R)
    assert state["holder"]["owner"] == "y", "the hand-over missed a waiter that queued first"
    assert [w["owner"] for w in state["queue"]] == ["z"]


async def test_a_queue_join_and_a_hand_over_are_one_round_trip_each_on_postgresql(
        store: Store, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a queue join and a hand-over each lock the lock row in a statement
    of their own first (see the two tests above); psycopg's pipeline sends it with
    theirs in one round trip, one implicit transaction, where BEGIN, each statement
    and COMMIT were a round trip each (four); a first use prepares its statements in
    the same round trip. The waiter joins, is granted, and the lock is free again at
    the end."""
    if backend == "sqlite":
        pytest.skip("SQLite's transaction is local calls, not round trips")
    trips = RoundTrips(store, tmp_path / "libpq.trace", monkeypatch)
    try:
        for _ in range(2):
            held = (await locks.acquire(store, R, Claim("a"))).grants[0]
            mark = trips.mark()
            joined = await store.locks.acquire_or_join({
                **claim_params(R, Claim("b"), token=None), "attempt": None,
                "queue_s": 30.0}, held_first=True)
            join_trips = trips.since(mark)
            assert isinstance(joined, Joined) and joined.position == 1
            mark = trips.mark()
            assert await lock_state._fast_handover(store, R, "a", held.token)
            handover_trips = trips.since(mark)
            holder = (await locks.get(store, R))["holder"]
            assert (holder["owner"], holder["token"]) == ("b", held.token + 1)
            await locks.release(store, R, "b", holder["token"])
            assert (join_trips, handover_trips) == (1, 1)
        assert (await locks.get(store, R))["holder"] is None
    finally:
        trips.close()


async def test_a_queue_join_is_the_stores_one_path_and_names_its_entry(store: Store) -> None:
    """Joining the queue of a held lock is the store's join on both backends (on SQLite
    too, a few statements on its own connection): its answer names the queue entry,
    which the grant's note then names; joining again keeps the entry and its place,
    stretches the wait and takes the new lease length, with one lock.queued event,
    the payload the full path writes."""
    held = (await locks.acquire(store, R, Claim("a"))).grants[0]
    b = await lock_state.step(store, [R], Claim("b", priority=3, ttl_s=20), queue_for=30)
    c = await lock_state.step(store, [R], Claim("c", priority=7, agent="bot-c",
                                                metadata={"why": "c"}), queue_for=30)
    assert (b.position, b.waiting_for, c.position) == (1, R, 1)
    assert b.entry is not None and c.entry is not None and b.entry != c.entry
    before = (await locks.get(store, R))["queue"]
    assert [(w["owner"], w["priority"]) for w in before] == [("c", 7), ("b", 3)]
    again = await lock_state.step(store, [R], Claim("b", priority=3, ttl_s=40),
                                  queue_for=100)
    assert (again.position, again.entry) == (2, b.entry)
    queue = (await locks.get(store, R))["queue"]
    assert [w["owner"] for w in queue] == ["c", "b"]
    assert queue[1]["expires_at"] > before[1]["expires_at"] and queue[1]["ttl_s"] == 40
    assert queue[1]["queued_at"] == before[1]["queued_at"]
    page, _ = await events.query(store, events.Query(type="lock.queued", limit=10))
    assert [e.payload for e in page] == [
        {"resource": R, "type": "device", "owner": "b", "token": None, "priority": 3,
         "position": 1, "holder": "a"},
        {"resource": R, "type": "device", "owner": "c", "token": None, "priority": 7,
         "position": 1, "holder": "a"}]
    wakeup = store.wakeup(locks.CHANNEL)
    await locks.release(store, R, "a", held.token)  # to c, the higher priority
    holder = (await locks.get(store, R))["holder"]
    assert (holder["owner"], holder["agent"], holder["metadata"]) == ("c", "bot-c",
                                                                      {"why": "c"})
    noted = store.locks.noted_grant(wakeup.notes, c.entry)
    assert noted is not None and noted[0] == held.token + 1 == holder["token"]
    assert noted[1].isoformat() == holder["expires_at"]
    assert store.locks.noted_grant(wakeup.notes, b.entry) is None
    store.forget_wakeup(locks.CHANNEL, wakeup)


async def test_a_waiter_takes_or_joins_in_one_write_on_sqlite(store: Store, backend: str
                                                              ) -> None:
    """An acquire that may wait takes a free lock, or else joins its queue, in one write
    transaction on SQLite (one turn at its write lock, not two), with the events the
    plain acquire writes; on PostgreSQL the refused take writes nothing (see below)."""
    turns: list[int] = []
    driver = store.driver

    def counted_driver(**options: Any) -> Any:
        turns.append(1)
        return driver(**options)

    store.driver = counted_driver  # type: ignore[method-assign]
    got = (await locks.acquire(store, R, Claim("a", priority=4), wait_s=5)).grants[0]
    waiter = asyncio.create_task(locks.acquire(store, R, Claim("b"), wait_s=30))
    await _queued(store, "b")
    if backend == "sqlite":
        assert len(turns) == 2, "the take and the join each took a turn at the write lock"
    await locks.release(store, R, "a", got.token)
    handed = (await asyncio.wait_for(waiter, 10)).grants[0]
    await locks.release(store, R, "b", handed.token)
    page, _ = await events.query(store, events.Query(type="lock.*", limit=10))
    assert [(e.type, e.payload["owner"], e.payload["token"]) for e in page] == [
        ("lock.acquired", "a", 1), ("lock.queued", "b", None), ("lock.released", "a", 1),
        ("lock.acquired", "b", 2), ("lock.released", "b", 2)]
    assert page[0].payload == {"resource": R, "type": "device", "owner": "a", "token": 1,
                               "priority": 4, "expires_at": got.expires_at.isoformat()}


async def _queued(store: Store, owner: str) -> None:
    async with asyncio.timeout(30):
        while not any(w["owner"] == owner for w in (await locks.get(store, R))["queue"]):
            await asyncio.sleep(0.01)


async def test_a_refused_acquire_does_not_wait_for_the_lock_row(store: Store,
                                                                backend: str) -> None:
    """On PostgreSQL an acquire of a lock its snapshot sees held is refused without
    locking the row, so it neither waits behind a transaction holding the row (a
    hand-over or a queue join committing: a contended lock's waiter tries the acquire
    first) nor writes anything for its commit to flush."""
    if backend == "sqlite":
        pytest.skip("SQLite's writers take turns at one write lock: nothing to wait past")
    held = (await locks.acquire(store, R, Claim("a"))).grants[0]
    async with store.write() as conn:
        await store.locks.locked_row(conn, R)  # as a hand-over or a join holds it
        refused = await asyncio.wait_for(lock_state.fast_acquire(store, R, Claim("b")), 10)
        assert refused is None
    state = await locks.get(store, R)
    assert state["holder"]["owner"] == "a" and state["holder"]["token"] == held.token


async def test_a_release_of_several_racing_a_waiter_that_queues_hands_the_lock_over(
        store: Store) -> None:
    """The full path's release (here of several locks at once) grants the next waiter
    whatever its read of the locked row said of the queue: on PostgreSQL that read,
    made after waiting for the row, may not see a waiter that queued meanwhile."""
    held = (await locks.acquire_many(store, [R, "device:other"], Claim("a"))).grants
    async with store.write() as conn:  # a waiter queues, holding the lock row to commit
        assert await lock_state.try_one(store, conn, R, Claim("b"), [], queue_for=30) == 1
        release = asyncio.create_task(locks.release_many(
            store, [(g.resource, g.token) for g in held], "a"))
        await asyncio.sleep(0.3)
        assert not release.done()
    await asyncio.wait_for(release, 10)
    state = await locks.get(store, R)
    assert state["holder"] is not None, "the lock was freed with a waiter queued"
    assert state["holder"]["owner"] == "b" and state["queue"] == []


async def test_a_lock_taken_by_a_queued_owner_takes_it_out_of_the_queue(store: Store) -> None:
    """An owner that takes a free lock while it still has an entry in its queue (a kept
    place, or a waiter that finds the lock freed without a grant) leaves the queue, on
    the one-statement path too: its next release frees the lock, never granting it
    back to that stale entry."""
    held = (await locks.acquire(store, R, Claim("a"))).grants[0]
    kept = await locks.acquire(store, R, Claim("b"), wait_s=0.05, keep_place_s=60)
    assert not kept.granted
    assert [w["owner"] for w in (await locks.get(store, R))["queue"]] == ["b"]
    async with store.write() as conn:  # freed without a grant (a release that raced b)
        await store.locks.free(conn, R, await store.locks.now(conn))
    got = (await locks.acquire(store, R, Claim("b"))).grants[0]  # free: one statement
    assert got.token == held.token + 1
    assert (await locks.get(store, R))["queue"] == []
    await locks.release(store, R, "b", got.token)
    state = await locks.get(store, R)
    assert state["holder"] is None and state["last_token"] == got.token


async def test_a_kept_place_on_a_freed_lock_is_served_by_the_next_holder_s_release(
        store: Store) -> None:
    """A place kept in the queue of a lock freed without a grant keeps the lock marked
    queued: the next holder's release hands the lock to it (the release path looks for
    a waiter only when the lock is marked); a lapsed place is not served."""
    held = (await locks.acquire(store, R, Claim("a"))).grants[0]
    assert not (await locks.acquire(store, R, Claim("b"), wait_s=0.05,
                                    keep_place_s=60)).granted
    async with store.write() as conn:  # freed without a grant (a release that raced b)
        await store.locks.free(conn, R, await store.locks.now(conn))
    c = (await locks.acquire(store, R, Claim("c"))).grants[0]  # free: taken past b
    await locks.release(store, R, "c", c.token)
    state = await locks.get(store, R)
    assert state["holder"] is not None and state["holder"]["owner"] == "b"
    assert state["holder"]["token"] == held.token + 2 and state["queue"] == []
    await locks.release(store, R, "b", state["holder"]["token"])
    assert (await locks.acquire(store, R, Claim("f"))).granted
    assert not (await locks.acquire(store, R, Claim("d"), wait_s=0.05,
                                    keep_place_s=0.2)).granted
    async with store.write() as conn:
        await store.locks.free(conn, R, await store.locks.now(conn))
    e = (await locks.acquire(store, R, Claim("e"))).grants[0]
    await asyncio.sleep(0.5)  # d's place lapses
    await locks.release(store, R, "e", e.token)
    assert (await locks.get(store, R))["holder"] is None  # not granted to the lapsed
    assert (await locks.acquire(store, R, Claim("g"))).granted


async def test_one_statement_changes_write_the_events_the_full_path_does(store: Store) -> None:
    claim = Claim("a", priority=7, metadata={"why": "test"})
    began = time.monotonic()
    grant = (await locks.acquire(store, R, claim)).grants[0]  # free: one statement
    held = await locks.get(store, R)
    assert held["holder"]["metadata"] == {"why": "test"} and held["holder"]["priority"] == 7
    assert held["holder"]["expires_at"] == grant.expires_at.isoformat()
    renewed = await locks.renew(store, R, "a", grant.token, 60)
    assert renewed.expires_at > grant.expires_at
    await asyncio.sleep(HOLD_S)
    await locks.release(store, R, "a", grant.token)  # nobody waits: one statement
    spent_ms = (time.monotonic() - began) * 1000
    page, _ = await events.query(store, events.Query(type="lock.*", limit=10))
    acquired, released = page
    assert acquired.type == "lock.acquired" and acquired.source == "locks"
    assert acquired.payload == {"resource": R, "type": "device", "owner": "a", "token": 1,
                                "priority": 7, "expires_at": grant.expires_at.isoformat()}
    assert acquired.correlation_id == acquired.id and acquired.causation_id is None
    assert released.type == "lock.released"
    assert set(released.payload) == {"resource", "type", "owner", "token", "held_ms"}
    assert released.payload["owner"] == "a" and released.payload["token"] == 1
    assert HOLD_S * 1000 - CLOCK_MS <= released.payload["held_ms"] <= spent_ms + CLOCK_MS
    assert (await locks.get(store, R))["holder"] is None


async def test_a_hand_over_writes_both_events_and_frees_the_lock_after_the_last(
        store: Store) -> None:
    began = time.monotonic()
    first = (await locks.acquire(store, R, Claim("a"))).grants[0]
    waiter = asyncio.create_task(locks.acquire(store, R, Claim("b", priority=3, ttl_s=60),
                                               wait_s=10))
    while not (await locks.get(store, R))["queue"]:
        await asyncio.sleep(0.01)
    await asyncio.sleep(HOLD_S)  # b waits at least this long
    await locks.release(store, R, "a", first.token)  # hands the lock to b
    got = (await asyncio.wait_for(waiter, 10)).grants[0]
    state = await locks.get(store, R)
    assert state["holder"]["owner"] == "b" and state["holder"]["token"] == got.token == 2
    assert state["holder"]["priority"] == 3 and state["queue"] == []
    page, _ = await events.query(store, events.Query(type="lock.*", limit=10))
    assert [(e.type, e.payload["owner"], e.payload["token"]) for e in page] == [
        ("lock.acquired", "a", 1), ("lock.queued", "b", None), ("lock.released", "a", 1),
        ("lock.acquired", "b", 2)]
    handed = page[3].payload
    assert handed["expires_at"] == got.expires_at.isoformat() and handed["priority"] == 3
    spent_ms = (time.monotonic() - began) * 1000
    assert HOLD_S * 1000 - CLOCK_MS <= handed["waited_ms"] <= spent_ms + CLOCK_MS
    held_ms = page[2].payload["held_ms"]
    assert handed["waited_ms"] <= held_ms + CLOCK_MS and held_ms <= spent_ms + CLOCK_MS
    await locks.release(store, R, "b", got.token)  # the last: the lock is free again
    assert (await locks.get(store, R))["holder"] is None
    assert (await locks.acquire(store, R, Claim("c"))).grants[0].token == 3


async def test_a_hand_over_gives_the_waiter_its_own_claim(store: Store) -> None:
    """The one-statement hand-over (both backends) copies the waiter's metadata, agent
    and lease length to the lock, as the full path does; the queue is empty after."""
    first = (await locks.acquire(store, R, Claim("a", metadata={"was": "a"}))).grants[0]
    waiter = asyncio.create_task(locks.acquire(
        store, R, Claim("b", ttl_s=90, metadata={"why": "b"}, agent="bot-b"), wait_s=10))
    while not (await locks.get(store, R))["queue"]:
        await asyncio.sleep(0.01)
    await locks.release(store, R, "a", first.token)
    got = (await asyncio.wait_for(waiter, 10)).grants[0]
    holder = (await locks.get(store, R))["holder"]
    assert (holder["owner"], holder["metadata"], holder["agent"]) == ("b", {"why": "b"},
                                                                      "bot-b")
    lease_s = (got.expires_at - datetime.now(UTC)).total_seconds()
    assert 60 < lease_s <= 90 + CLOCK_MS / 1000
    assert (await locks.get(store, R))["queue"] == []


async def test_acquire_many_is_all_or_nothing(store: Store) -> None:
    await locks.acquire(store, "device:b", Claim("other"))
    none = await locks.acquire_many(store, ["device:a", "device:b"], Claim("me"))
    assert not none.granted and none.waiting_for == "device:b"
    assert (await locks.get(store, "device:a"))["holder"] is None  # a was not kept
    await locks.release(store, "device:b", "other", 1)
    both = await locks.acquire_many(store, ["device:b", "device:a"], Claim("me"))
    assert [g.resource for g in both.grants] == ["device:a", "device:b"]
    await locks.release_many(store, [(g.resource, g.token) for g in both.grants], "me")
    assert all(x["holder"] is None for x in await locks.list_locks(store)) or \
        await locks.list_locks(store) == []


@pytest.mark.timeout(600)  # 1,000 contended rounds; a deadlock would hang until the bound
async def test_crossed_acquire_many_never_deadlocks(store: Store) -> None:
    """Two clients take [a, b] and [b, a] 500 times each at once: no deadlock, no hang,
    and never both at once."""
    inside: set[str] = set()

    async def client(owner: str, names: list[str]) -> None:
        for _ in range(500):
            got = await locks.acquire_many(store, names, Claim(owner, ttl_s=30), wait_s=30)
            assert got.granted
            assert not inside, "two holders at once"
            inside.add(owner)
            await asyncio.sleep(0)
            inside.discard(owner)
            await locks.release_many(store, [(g.resource, g.token) for g in got.grants], owner)

    async with asyncio.timeout(540):
        await asyncio.gather(client("x", ["res:a", "res:b"]), client("y", ["res:b", "res:a"]))
    assert (await locks.get(store, "res:a"))["last_token"] == 1000


async def test_state_survives_a_new_store(database_url: str) -> None:
    store = open_store(database_url)
    g = (await locks.acquire(store, R, Claim("a", ttl_s=300))).grants[0]
    waiter = asyncio.create_task(locks.acquire(store, R, Claim("b", priority=7), wait_s=60))
    while not (await locks.get(store, R))["queue"]:
        await asyncio.sleep(0.01)
    waiter.cancel()  # the waiting process dies: its entry stays until its wait ends
    await asyncio.gather(waiter, return_exceptions=True)
    await store.close()
    store = open_store(database_url)
    try:
        state = await locks.get(store, R)
        assert state["holder"]["owner"] == "a" and state["holder"]["token"] == g.token
        await locks.release(store, R, "a", g.token)
    finally:
        await store.close()


@pytest.mark.parametrize(("resource", "claim", "wait"), [
    ("", Claim("a"), 0), ("pixel-7", Claim("a"), 0), ("Device:x", Claim("a"), 0),
    ("device:", Claim("a"), 0), ("device:a b", Claim("a"), 0),
    (R, Claim("a", ttl_s=0), 0), (R, Claim("a", ttl_s=-1), 0), (R, Claim("a", ttl_s=4000), 0),
    (R, Claim("a", priority=0), 0), (R, Claim("a", priority=11), 0), (R, Claim(""), 0),
    (R, Claim("a"), -1),
])
def test_bad_requests_are_refused(resource: str, claim: Claim, wait: float) -> None:
    with pytest.raises(InvalidInput):
        locks.validate(resource, claim, wait, max_ttl_s=3600, max_wait_s=300)


async def test_release_of_unknown_lock(store: Store) -> None:
    with pytest.raises(NotFound):
        await locks.release(store, "device:never", "a", 1)
