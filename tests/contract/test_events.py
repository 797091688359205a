"""The event log's guarantees, on SQLite and PostgreSQL."""

import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from agentos import claims, events, queue, router
from agentos.errors import InvalidInput, NotFound, PayloadTooLarge
from agentos.events import EventIn, Pruned
from agentos.store import Store
from agentos.store.tables import events as events_table
from tests.contract.test_router import publish
from tests.snapshot import snapshot


def ev(type: str = "alert.cpu", **kw: Any) -> EventIn:
    return EventIn(type=type, **kw)


async def test_append_numbers_events_in_order(store: Store) -> None:
    first = await events.append(store, [ev(payload={"n": 1})])
    batch = await events.append(store, [ev(payload={"n": i}) for i in range(5)])
    assert [a.event.seq for a in first + batch] == [1, 2, 3, 4, 5, 6]
    assert await events.head_seq(store) == 6
    e = first[0].event
    assert e.correlation_id == e.id  # its own id when none is given
    assert (await events.get(store, e.id)).payload == {"n": 1}


async def test_a_big_batch_is_numbered_in_its_own_order(store: Store) -> None:
    made = await events.append(store, [ev(payload={"n": i}) for i in range(500)])
    async with store.read() as conn:
        logged = await events.read_after(store, conn, 0, 1000)
    assert [e.payload["n"] for e in logged] == list(range(500))
    assert [e.seq for e in logged] == [a.event.seq for a in made] == list(range(1, 501))


async def test_dedup_key_returns_the_first_event(store: Store) -> None:
    [a] = await events.append(store, [ev(dedup_key="k", payload={"v": 1})])
    again = await events.append(store, [ev(dedup_key="k", payload={"v": 2}),
                                        ev(dedup_key="new"), ev(dedup_key="new")])
    assert again[0].duplicate and again[0].event.id == a.event.id
    assert not again[1].duplicate and again[2].duplicate
    assert again[1].event.id == again[2].event.id
    assert await events.head_seq(store) == 2


async def test_query_filters_and_pages(store: Store) -> None:
    await events.append(store, [
        ev("alert.cpu", source="mon", priority="high", correlation_id="c1"),
        ev("alert.disk", source="mon", run_id="r1", correlation_id="c1"),
        ev("qa.run", source="qa", priority="low"),
        ev("alert_x", source="mon"),
    ])

    async def types(**q: Any) -> list[str]:
        page, _ = await events.query(store, events.Query(**q))
        return [e.type for e in page]

    assert await types(type="alert.*") == ["alert.cpu", "alert.disk"]
    assert await types(type="alert?x") == ["alert_x"]
    assert await types(type="alert_*") == ["alert_x"]  # "_" is literal, not LIKE's wildcard
    assert await types(type="ALERT.*") == []  # case-sensitive on both backends
    assert await types(source="qa") == ["qa.run"]
    assert await types(correlation_id="c1") == ["alert.cpu", "alert.disk"]
    assert await types(run_id="r1") == ["alert.disk"]
    assert await types(priority="high") == ["alert.cpu"]
    page, after = await events.query(store, events.Query(limit=3))
    assert len(page) == 3 and after == 3
    page, after = await events.query(store, events.Query(after_seq=after, limit=3))
    assert [e.seq for e in page] == [4] and after is None
    head = (await events.query(store, events.Query()))[0][0].created_at
    assert await types(since=head + timedelta(seconds=5)) == []
    assert len(await types(until=head + timedelta(seconds=5))) == 4


async def test_correlation_tree_nests_by_causation(store: Store) -> None:
    [root] = await events.append(store, [ev("plan_generated", correlation_id="run-1")])
    r = root.event
    [judged] = await events.append(store, [ev("plan_judged", correlation_id="run-1",
                                              causation_id=r.id)])
    await events.append(store, [ev("intent", correlation_id="run-1",
                                   causation_id=judged.event.id),
                                ev("trade_blocked", correlation_id="run-1",
                                   causation_id=r.id)])
    tree = await events.correlation(store, "run-1")
    assert [n["type"] for n in tree] == ["plan_generated"]
    assert [c["type"] for c in tree[0]["children"]] == ["plan_judged", "trade_blocked"]
    assert [c["type"] for c in tree[0]["children"][0]["children"]] == ["intent"]
    with pytest.raises(NotFound):
        await events.correlation(store, "nope")


async def test_bad_events_write_nothing(store: Store) -> None:
    await events.append(store, [ev()])
    before = await snapshot(store)
    with pytest.raises(PayloadTooLarge):
        await events.append(store, [ev(), ev(payload={"x": "y" * 2000})], max_payload=1000)
    # the cap counts bytes, not characters: 600 two-byte characters are over 1,000
    with pytest.raises(PayloadTooLarge):
        await events.append(store, [ev(payload={"x": "é" * 600})], max_payload=1000)
    with pytest.raises(InvalidInput):  # not representable as JSON
        await events.append(store, [ev(payload={"x": 2**70})])
    with pytest.raises(ValueError):
        ev(priority="urgent")
    with pytest.raises(InvalidInput):
        await events.query(store, events.Query(type="a..b"))
    for bad in ["", "a..b", "has space", ".x"]:
        with pytest.raises(ValueError):
            ev(bad)
    with pytest.raises(ValueError):
        EventIn.model_validate({"type": "x", "payload": [1, 2]})
    assert await snapshot(store) == before


async def test_prune_by_age_and_type(store: Store) -> None:
    await events.append(store, [ev("a.x"), ev("a.y"), ev("b.x")])
    await router.route_batch(store)
    assert await events.prune(store, timedelta(seconds=0) + timedelta(days=1)) == Pruned(0, 0)
    assert await events.prune(store, timedelta(microseconds=1), "a.*", dry_run=True) == \
        Pruned(2, 0)
    assert await events.head_seq(store) == 3
    assert await events.prune(store, timedelta(microseconds=1), "a.*") == Pruned(2, 0)
    page, _ = await events.query(store, events.Query())
    assert [e.type for e in page] == ["b.x"]
    with pytest.raises(InvalidInput):
        events.parse_age("30 days")
    assert events.parse_age("30d") == timedelta(days=30)


async def test_prune_keeps_what_a_concept_registered(store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a concept that needs its own events kept (a condition from its store module)
    monkeypatch.setitem(events.RETAINED, "test", lambda: events_table.c.type == "keep.me")
    await events.append(store, [ev("keep.me"), ev("drop.me"), ev("keep.me")])
    await route_all(store)
    # Then pruning keeps them, and deletes the rest
    assert await events.prune(store, timedelta(microseconds=1)) == Pruned(1, 2)
    assert [e.type for e in (await events.query(store, events.Query()))[0]] == ["keep.me"] * 2
    # and once the concept lets go, they go too
    monkeypatch.delitem(events.RETAINED, "test")
    assert await events.prune(store, timedelta(microseconds=1)) == Pruned(2, 0)


def test_a_server_registers_what_tasks_and_workflows_keep() -> None:
    # in a fresh process, as a server starts (pytest has imported everything here)
    found = subprocess.run(
        [sys.executable, "-c", "import agentos.server, agentos.events as e; "
                               "print(' '.join(sorted(e.RETAINED)))"],
        capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.split() == ["tasks", "workflows"]


async def route_all(store: Store) -> None:
    while await router.route_batch(store):
        pass


async def test_prune_keeps_what_unfinished_tasks_and_the_router_need(store: Store) -> None:
    # Given an agent taking alerts (and looking at late.* events, none of which fires
    # it), two alerts routed to it and one other event
    await publish(store, "qa", [{"event": "alert.*"},
                                {"event": "late.*", "filter": {"never": True}}])
    [a, b, _] = await events.append(store, [ev("alert.a"), ev("alert.b"), ev("noise.x")])
    await route_all(store)
    # When the task for b succeeds while the task for a is still running
    claimed = {t.causation_id: t for t in await claims.claim(store, "w", limit=2)}
    done = claimed[b.event.id]
    await claims.complete(store, done.id, done.attempt, {"ok": True})
    await route_all(store)
    chain_a = await events.query(store, events.Query(correlation_id=a.event.id))
    assert [e.type for e in chain_a[0]] == ["alert.a", "task.created", "task.started"]
    [late] = await events.append(store, [ev("late.x")])  # not routed yet
    # Then pruning keeps a's chain and the unrouted event, and deletes the rest
    assert await events.prune(store, timedelta(microseconds=1), dry_run=True) == Pruned(5, 4)
    assert await events.prune(store, timedelta(microseconds=1)) == Pruned(5, 4)
    left, _ = await events.query(store, events.Query())
    assert [e.id for e in left] == [e.id for e in chain_a[0]] + [late.event.id]
    tree = await events.correlation(store, a.event.id)
    assert [n["type"] for n in tree[0]["children"][0]["children"]] == [
        "task.created", "task.started"]  # the chain under the running task is whole
    # the pruned event's route went with it, and nothing is routed (or submitted) again
    assert await router.routes_of(store, b.event.seq) == []
    assert await router.route_batch(store) == 1  # late.x only
    assert len((await queue.list_tasks(store))[0]) == 2
    # once a's task finishes too, its chain may go
    running = claimed[a.event.id]
    await claims.complete(store, running.id, running.attempt, {"ok": True})
    await route_all(store)
    assert (await events.prune(store, timedelta(microseconds=1))).kept == 0
    assert (await events.query(store, events.Query()))[0] == []
