"""Acquire-any on both backends: the first free resource of a list (in its order) or of
a prefix (in id order), the same priority queue, leases and fencing tokens; a waiter in
every queue ends up holding exactly one; many claimants at once never share one; and
``ctx.lock_any`` in a handler."""

import asyncio
import itertools
import time
from typing import Any

import pytest

from agentos import agent_spec, events, locks, queue, registry
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.locks import Claim
from agentos.store import Store, open_store
from agentos.tasks import Status, TaskIn
from agentos.worker.handlers import Context
from agentos.worker.loop import Worker

A, B, C = "device:a", "device:b", "device:c"


async def take(store: Store, resource: str, owner: str, ttl_s: float = 30) -> locks.Grant:
    got = await locks.acquire(store, resource, Claim(owner, ttl_s=ttl_s))
    assert got.granted
    return got.grants[0]


async def lock_events(store: Store) -> list[tuple[str, str, str | None, Any]]:
    page, _ = await events.query(store, events.Query(type="lock.*", limit=1000))
    return [(e.type, e.payload["resource"], e.payload["owner"], e.payload.get("reason"))
            for e in page]


async def queue_of(store: Store, resource: str) -> list[str]:
    return [w["owner"] for w in (await locks.get(store, resource))["queue"]]


async def test_the_first_free_of_a_list_in_its_order(store: Store) -> None:
    await take(store, C, "x")
    got = await locks.acquire_any(store, locks.pool([C, B, A]), Claim("me"))
    assert got.granted and got.grants[0].resource == B and got.grants[0].token == 1
    second = await locks.acquire_any(store, locks.pool([C, B, A]), Claim("other"))
    assert second.grants[0].resource == A
    busy = await locks.acquire_any(store, locks.pool([C, B, A]), Claim("third"))
    assert not busy.granted and busy.position == 1 and busy.waiting_for == C
    assert [await queue_of(store, r) for r in (A, B, C)] == [[], [], []]  # no wait: no queue
    again = await locks.acquire_any(store, locks.pool([A, B]), Claim("me", ttl_s=60))
    assert again.grants[0].resource == B and again.grants[0].token == 1  # asked again: kept


async def test_a_prefix_chooses_among_resources_ever_locked_in_id_order(store: Store) -> None:
    with pytest.raises(NotFound) as nothing:
        await locks.acquire_any(store, locks.pool(prefix="device:"), Claim("me"))
    assert nothing.value.code == "no_resources"
    assert await lock_events(store) == []  # nothing written
    for resource in ("device:android-2", "device:android-1", "device:ios-1", "robot:arm-1",
                     "device_x:1"):
        grant = await take(store, resource, "setup")
        await locks.release(store, resource, "setup", grant.token)
    await take(store, "device:android-1", "x")
    got = await locks.acquire_any(store, locks.pool(prefix="device:android-"), Claim("me"))
    assert got.grants[0].resource == "device:android-2" and got.grants[0].token == 2
    other = await locks.acquire_any(store, locks.pool(prefix="device:"), Claim("other"))
    assert other.grants[0].resource == "device:ios-1"  # not device_x:1, not robot:arm-1
    full = await locks.acquire_any(store, locks.pool(prefix="device:"), Claim("third"))
    assert not full.granted
    # what a caller may not lock is left out (ctx.lock_any's permissions)
    one = locks.pool(prefix="device:", permitted=lambda r: r == "device:android-1")
    busy = await locks.acquire_any(store, one, Claim("r"))
    assert not busy.granted and busy.waiting_for == "device:android-1"
    with pytest.raises(NotFound):
        await locks.acquire_any(store, locks.pool(prefix="device:", permitted=lambda r: False),
                                Claim("r"))


@pytest.mark.parametrize(("names", "prefix", "code"), [
    (None, None, "bad_pool"), ([A], "device:", "bad_pool"), ([], None, "bad_resources"),
    ([f"device:{n}" for n in range(locks.MAX_RESOURCES + 1)], None, "bad_resources"),
    (["nope"], None, "bad_resource"), (None, "device", "bad_prefix"),
    (None, "Device:", "bad_prefix"), (None, "device:*", "bad_prefix"), (None, "", "bad_prefix"),
])
def test_bad_pools_are_refused(names: list[str] | None, prefix: str | None, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        locks.pool(names, prefix)
    assert refused.value.code == code


async def test_a_waiter_in_every_queue_is_served_by_priority_on_each(store: Store) -> None:
    held = {r: await take(store, r, "holder") for r in (A, B, C)}
    low_on_a = asyncio.create_task(
        locks.acquire(store, A, Claim("low-on-a", priority=2), wait_s=30))
    while await queue_of(store, A) != ["low-on-a"]:
        await asyncio.sleep(0.01)
    anyone = asyncio.create_task(
        locks.acquire_any(store, locks.pool([A, B, C]), Claim("any", priority=5), wait_s=30))
    while await queue_of(store, C) != ["any"]:
        await asyncio.sleep(0.01)
    high_on_b = asyncio.create_task(
        locks.acquire(store, B, Claim("high-on-b", priority=9), wait_s=30))
    while await queue_of(store, B) != ["high-on-b", "any"]:
        await asyncio.sleep(0.01)
    assert await queue_of(store, A) == ["any", "low-on-a"]  # 5 before 2
    await locks.release(store, B, "holder", held[B].token)  # 9 before 5
    assert (await high_on_b).grants[0].resource == B
    assert not anyone.done()
    await locks.release(store, A, "holder", held[A].token)
    got = await asyncio.wait_for(anyone, 10)
    assert got.grants[0].resource == A and got.grants[0].token == 2
    assert await queue_of(store, B) == [] and await queue_of(store, C) == []  # left them
    assert await queue_of(store, A) == ["low-on-a"] and not low_on_a.done()
    await locks.release(store, A, "any", got.grants[0].token)
    assert (await asyncio.wait_for(low_on_a, 10)).grants[0].token == 3


async def test_two_freed_at_once_the_waiter_keeps_one_and_gives_the_other_back(
        store: Store) -> None:
    held = {r: await take(store, r, "holder") for r in (A, B)}
    anyone = asyncio.create_task(
        locks.acquire_any(store, locks.pool([B, A]), Claim("any"), wait_s=30))
    while await queue_of(store, A) != ["any"] or await queue_of(store, B) != ["any"]:
        await asyncio.sleep(0.01)
    await locks.release_many(store, [(A, held[A].token), (B, held[B].token)], "holder")
    got = await asyncio.wait_for(anyone, 10)
    assert [g.resource for g in got.grants] == [B]  # B comes first in its pool
    assert (await locks.get(store, B))["holder"]["owner"] == "any"
    assert (await locks.get(store, A))["holder"] is None
    assert ("lock.released", A, "any", "gave_back") in await lock_events(store)


async def test_a_wait_that_ends_leaves_every_queue(store: Store) -> None:
    await take(store, A, "holder")
    await take(store, B, "holder")
    await locks.acquire(store, B, Claim("first-on-b"), wait_s=0.01, keep_place_s=30)
    started = time.monotonic()
    got = await locks.acquire_any(store, locks.pool([A, B]), Claim("any"), wait_s=0.3)
    assert time.monotonic() - started >= 0.3
    assert not got.granted and got.position == 1 and got.waiting_for == A
    assert await queue_of(store, A) == [] and await queue_of(store, B) == ["first-on-b"]


async def test_a_lapsed_lease_in_the_pool_is_taken_in_its_turn_with_a_new_token(
        store: Store) -> None:
    await take(store, A, "gone", ttl_s=0.2)
    await take(store, B, "holder")
    await asyncio.sleep(0.3)
    got = await locks.acquire_any(store, locks.pool([B, A, C]), Claim("me"))  # C is free
    assert got.grants[0].resource == A and got.grants[0].token == 2
    assert ("lock.expired", A, "gone", None) in await lock_events(store)


async def test_many_claimants_at_once_never_share_a_resource(database_url: str) -> None:
    """Twelve claimants on two stores (two connection pools) take any of three devices,
    waiting, hold it a moment and give it back: each device's holders never overlap,
    every claimant gets one, tokens grow with every grant."""
    stores = [open_store(database_url), open_store(database_url)]
    pool = locks.pool([A, B, C])
    spans: dict[str, list[tuple[float, float, int]]] = {A: [], B: [], C: []}

    async def claimant(n: int) -> None:
        store = stores[n % 2]
        got = await locks.acquire_any(store, pool, Claim(f"c{n}", ttl_s=30), wait_s=60)
        assert got.granted and len(got.grants) == 1
        grant = got.grants[0]
        start = time.monotonic()
        await asyncio.sleep(0.05)
        spans[grant.resource].append((start, time.monotonic(), grant.token))
        await locks.release(store, grant.resource, f"c{n}", grant.token)

    try:
        await asyncio.wait_for(asyncio.gather(*(claimant(n) for n in range(12))), 90)
        for resource, held in spans.items():
            held.sort()
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(held)), resource
            assert [t for _, _, t in held] == sorted(t for _, _, t in held)
        assert sum(len(h) for h in spans.values()) == 12
        for resource in (A, B, C):
            lock = await locks.get(stores[0], resource)
            assert lock["holder"] is None and lock["queue"] == []
    finally:
        for store in stores:
            await store.close()


# ------------------------------------------------------------ ctx.lock_any


async def pool_user(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Holds any device of ``data["pool"]`` (or ``data["prefix"]``) for a moment."""
    async with ctx.lock_any(data.get("pool"), prefix=data.get("prefix"), wait_s=20) as lease:
        await asyncio.sleep(0.2)
        return {"resource": lease.resource, "token": lease.token}


async def test_ctx_lock_any_takes_a_free_device_per_task(store: Store) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": "tester", "version": "1.0.0",
         "handler": {"type": "python", "target": "tests.contract.test_lock_any:pool_user"},
         "permissions": {"lock": ["device:*"]}, "limits": {"max_retries": 0}}), publish=True)
    for resource in (A, B, "phone:z"):
        grant = await take(store, resource, "setup")
        await locks.release(store, resource, "setup", grant.token)
    submitted = await queue.submit(store, [
        *(TaskIn(agent="tester", input={"pool": [A, B]}) for _ in range(4)),
        TaskIn(agent="tester", input={"prefix": "device:"}),
        TaskIn(agent="tester", input={"pool": [A, "phone:z"]}),  # phone:z not permitted
    ])
    ids = [task.id for task, _ in submitted]
    worker = Worker(store, concurrency=6)
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(40):
            while not all([(await queue.get(store, i)).status.final for i in ids]):
                await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await running
    done = [await queue.get(store, i) for i in ids]
    assert [t.status for t in done] == [Status.SUCCEEDED] * 5 + [Status.FAILED]
    assert "may not lock phone:z" in done[5].error["message"]
    used = sorted((t.output["resource"], t.output["token"]) for t in done[:5])
    assert {r for r, _ in used} == {A, B}
    for resource in (A, B):  # five attempts shared two devices, each grant a new token
        tokens = [tok for r, tok in used if r == resource]
        assert len(set(tokens)) == len(tokens) and min(tokens) >= 2
        assert (await locks.get(store, resource))["holder"] is None


async def test_a_claim_for_an_attempt_no_longer_running_takes_nothing(store: Store) -> None:
    await take(store, A, "x")  # known to the lock service; then free again below
    await locks.release(store, A, "x", 1)
    before = await lock_events(store)
    claim = Claim("task:gone", task_id="gone", agent="tester", attempt=1)
    with pytest.raises(Conflict) as refused:
        await locks.acquire_any(store, locks.pool([A, B]), claim, wait_s=1)
    assert refused.value.code == "stale_attempt"
    assert await lock_events(store) == before
    assert (await locks.get(store, A))["holder"] is None
