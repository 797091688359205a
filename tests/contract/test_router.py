"""Routing: each (event, agent, trigger) match recorded once, most urgent first."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import update

from agentos import agent_removal, agent_spec, capabilities, claims, events, queue, registry, router
from agentos.events import EventIn
from agentos.store import Store, open_store
from agentos.store import routes as store_routes
from agentos.store.tables import agent_versions
from agentos.tasks import TaskIn


async def publish(store: Store, name: str, triggers: list[dict[str, Any]],
                  version: str = "1.0.0", **fields: Any) -> None:
    await registry.create(store, agent_spec.from_object(
        {"name": name, "version": version, "handler": {"type": "python", "target": "m:f"},
         "triggers": triggers, **fields}), publish=True)


async def test_routes_follow_triggers_of_the_latest_published_version(store: Store) -> None:
    await publish(store, "qa", [{"event": "alert.*", "filter": {"severity": ["high"]},
                                 "priority": 8}, {"event": "alert.cpu"}])
    await publish(store, "old", [{"event": "alert.*"}])
    await publish(store, "old", [{"event": "nothing.*"}], version="2.0.0")
    await registry.create(store, agent_spec.from_object(
        {"name": "drafty", "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
         "triggers": [{"event": "*"}]}))
    [high, low] = await events.append(store, [
        EventIn(type="alert.cpu", payload={"severity": "high"}),
        EventIn(type="alert.disk", payload={"severity": "low"})])
    assert await router.route_batch(store) == 2
    got = [(r.agent, r.agent_version, r.trigger_index, r.priority)
           for r in await router.routes_of(store, high.event.seq)]
    assert got == [("qa", "1.0.0", 0, 8), ("qa", "1.0.0", 1, 5)]
    assert await router.routes_of(store, low.event.seq) == []
    assert await router.is_routed(store, low.event.seq)
    await router.route_batch(store)  # routes the task.created events that routing made
    assert len(await router.routes_of(store, high.event.seq)) == 2  # nothing routed twice
    # each route made its task in the same transaction, caused by the event
    for route in await router.routes_of(store, high.event.seq):
        assert route.task_id is not None
        task = await queue.get(store, route.task_id)
        assert (task.agent, task.priority) == ("qa", route.priority)
        assert task.causation_id == high.event.id
        assert task.correlation_id == high.event.correlation_id
        assert task.input == {"severity": "high"}


async def test_an_event_is_queued_only_when_a_published_trigger_may_match_it(
        store: Store) -> None:
    """An event is matched against the triggers published when it is appended: one
    whose type none of them names is routed to nobody at once and never queued, so an
    agent published after it is not triggered by it. The queue's own task.* events are
    queued only for triggers that name them; a draft's triggers queue nothing."""

    async def queued(event_type: str) -> list[bool]:
        found, _ = await events.query(store, events.Query(type=event_type))
        return [not await router.is_routed(store, e.seq) for e in found]

    [before] = await events.append(store, [EventIn(type="job.done")])
    assert await queued("job.done") == [False]
    await publish(store, "watcher", [{"event": "job.*"}, {"event": "task.succeeded"}])
    await registry.create(store, agent_spec.from_object(
        {"name": "drafty", "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
         "triggers": [{"event": "*"}]}))
    await events.append(store, [EventIn(type="job.done"), EventIn(type="other.x")])
    assert await queued("job.done") == [False, True]
    assert await queued("other.x") == [False]
    assert await router.route_batch(store) == 1
    assert await router.routes_of(store, before.event.seq) == []
    [(task, _)] = await queue.submit(store, [TaskIn(agent="watcher")])
    assert await queued("task.created") == [False, False]  # the route's task, and this one
    claimed = {t.id: t for t in await claims.claim(store, "w", limit=2)}
    await claims.complete(store, task.id, claimed[task.id].attempt, {"ok": True})
    assert await queued("task.started") == [False, False]
    assert await queued("task.succeeded") == [True]
    assert await router.route_batch(store) == 1  # its own task's event: routed to nobody
    # a "*" trigger queues every other event, and still none of the queue's own
    await publish(store, "everything", [{"event": "*"}])
    await events.append(store, [EventIn(type="other.y")])
    assert await queued("other.y") == [True]
    await queue.submit(store, [TaskIn(agent="watcher")])
    assert await queued("task.created") == [False, False, False]


async def test_what_the_database_checks_of_a_filter_routes_what_the_router_would(
        store: Store) -> None:
    """PostgreSQL's take reads back only the events whose payload may pass a trigger's
    filter (what JSON compares as the router does); what is routed is exactly what the
    router's own check says, whatever the values."""
    big = 2**60  # past 2**53: left to the router
    triggers: list[dict[str, Any]] = [
        {"event": "f.*", "filter": {"sev": ["high", "critical"], "ok": True}},
        {"event": "g.x", "filter": {"n": 1, "x.y": None}},
        {"event": "h.*", "filter": {"n": [2, "two"], "tag": "é"}},
        {"event": "k.*", "filter": {"r": 0.1, "m": [-3, 1e15]}},
        {"event": "b.*", "filter": {"v": [big, 5]}}]
    await publish(store, "picky", triggers)
    sent: list[tuple[str, dict[str, Any]]] = [
        ("f.a", {"sev": "high", "ok": True}), ("f.a", {"sev": "high", "ok": 1}),
        ("f.b", {"sev": "low", "ok": True}), ("f.c", {"sev": ["high"], "ok": True}),
        ("f.d", {"sev": "critical", "ok": True, "more": 1}), ("f.e", {"ok": True}),
        ("f.f", {"sev": "High", "ok": True}), ("f.g", {"sev": None, "ok": True}),
        ("g.x", {"n": 1.0, "x": {"y": None}}), ("g.x", {"n": 1, "x": {}}),
        ("g.x", {"n": True, "x": {"y": None}}), ("g.x", {"n": 1, "x": {"y": None}}),
        ("g.x", {"n": 1, "x": [None]}), ("g.x", {"n": 1, "x": {"y": "null"}}),
        ("h.a", {"n": 2.0, "tag": "é"}), ("h.a", {"n": "two", "tag": "\u00e9"}),
        ("h.a", {"n": 2, "tag": "e"}), ("h.a", {"n": 2, "tag": ["é"]}),
        ("h.a", {"n": "2", "tag": "é"}),
        ("k.a", {"r": 0.1, "m": -3.0}), ("k.a", {"r": 0.1 + 1e-17, "m": 1e15}),
        ("k.a", {"r": 0.30000000000000004 - 0.2, "m": -3}), ("k.a", {"r": 0.1, "m": 10**15}),
        ("k.a", {"r": 0.1, "m": 1e15 + 1}), ("k.a", {"r": "0.1", "m": -3}),
        ("b.a", {"v": big}), ("b.a", {"v": big + 1}), ("b.a", {"v": 5.0})]
    appended = await events.append(store, [EventIn(type=t, payload=p) for t, p in sent])
    expected = [[i for i, trigger in enumerate(triggers)
                 if router.mismatch(trigger, event_type, payload, None) is None]
                for event_type, payload in sent]
    assert sum(map(bool, expected)) == 10
    while await router.route_batch(store):
        pass
    assert [[r.trigger_index for r in await router.routes_of(store, a.event.seq)]
            for a in appended] == expected


async def test_a_filter_past_the_database_s_argument_limits_still_routes(
        store: Store) -> None:
    """A filter's path and values reach PostgreSQL as one array each: 120 segments, or
    70,000 values, as arguments or parameters of their own would fail every take."""
    deep = ".".join(["k"] * 120)
    await publish(store, "deep", [{"event": "deep.*", "filter": {deep: "v"}}])
    await publish(store, "wide", [{"event": "wide.*",
                                   "filter": {"n": [f"v{i}" for i in range(70_000)]}}])
    payload: dict[str, Any] = {"k": "v"}
    for _ in range(119):
        payload = {"k": payload}
    appended = await events.append(store, [
        EventIn(type="deep.x", payload=payload), EventIn(type="wide.x", payload={"n": "v69999"}),
        EventIn(type="wide.x", payload={"n": "v70000"})])
    while await router.route_batch(store):
        pass
    assert [[r.agent for r in await router.routes_of(store, a.event.seq)]
            for a in appended] == [["deep"], ["wide"], []]


async def test_postgresql_reads_back_only_events_that_may_pass_a_filter(
        store: Store, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite reads by type only: reading a row costs its loop no wait")
    await publish(store, "picky", [{"event": "f.*", "filter": {"sev": "high", "n": 2}}])
    await events.append(store, [EventIn(type="f.x", payload={"sev": s, "n": n})
                                for s, n in [("low", 2)] * 10 + [("high", 3), ("high", 2.0)]])
    async with store.write() as conn:
        wanted = router.wanted(await router.routable_agents(store, conn))
        taken = await store.routes.take(conn, 100, wanted)
    assert (taken.count, [r.payload for r in taken.rows]) == (12, [{"sev": "high", "n": 2.0}])


async def test_a_type_is_queued_no_more_once_no_published_trigger_names_it(
        store: Store) -> None:
    async def queued(event_type: str) -> bool:
        [appended] = await events.append(store, [EventIn(type=event_type)])
        return not await router.is_routed(store, appended.event.seq)

    await publish(store, "a", [{"event": "gone.*"}])
    await publish(store, "b", [{"event": "gone.*"}, {"event": "b.only"}])
    assert await queued("gone.x") and await queued("b.only")
    await registry.change_status(store, "a", "1.0.0", "deprecate")
    assert await queued("gone.x")  # b still names it
    await agent_removal.delete(store, "b", by="t")
    assert not await queued("gone.x") and not await queued("b.only")
    await registry.change_status(store, "a", "1.0.0", "publish")  # published again
    assert await queued("gone.x")


async def test_a_pattern_survives_a_concurrent_unpublish_of_its_last_other_user(
        store: Store, database_url: str, backend: str) -> None:
    """One transaction archives the only agent naming "p.*" (its rewrite of the patterns
    drops it) while another publishes a second agent naming "p.*": the second waits for
    the first to commit and then puts the pattern back, so the new agent's events are
    queued. (Without the table's lock the second would see the pattern still there,
    uncommitted deletes being invisible to it, and add nothing.)"""
    if backend == "sqlite":
        pytest.skip("SQLite's writers take turns at one write lock: nothing interleaves")
    await publish(store, "first", [{"event": "p.*"}])
    other = open_store(database_url)
    try:
        async with store.write() as conn:
            await conn.execute(update(agent_versions).where(
                agent_versions.c.name == "first").values(status="archived"))
            await store_routes.refresh_patterns(conn)
            second = asyncio.create_task(publish(other, "second", [{"event": "p.*"}]))
            await asyncio.sleep(0.5)  # the second publish reads and writes meanwhile
        await asyncio.wait_for(second, 30)
    finally:
        await other.close()
    [appended] = await events.append(store, [EventIn(type="p.x")])
    assert not await router.is_routed(store, appended.event.seq)
    await router.route_batch(store)
    assert [r.agent for r in await router.routes_of(store, appended.event.seq)] == ["second"]


async def test_critical_events_are_routed_before_low_ones(store: Store) -> None:
    await publish(store, "any", [{"event": "*"}])
    await events.append(store, [EventIn(type="bulk.low", priority="low") for _ in range(30)])
    await events.append(store, [EventIn(type="page.critical", priority="critical")
                                for _ in range(3)])
    await events.append(store, [EventIn(type="ops.high", priority="high") for _ in range(3)])
    assert await router.route_batch(store, limit=5) == 5
    everything, _ = await events.query(store, events.Query(limit=100))
    routed = [e.type for e in everything if await router.routes_of(store, e.seq)]
    assert sorted(routed) == ["ops.high", "ops.high", "page.critical", "page.critical",
                              "page.critical"]
    while await router.route_batch(store, limit=7):
        pass
    assert all([await router.is_routed(store, s) for s in range(1, 37)])


async def test_disabled_capability_is_not_routed(store: Store) -> None:
    await publish(store, "a", [{"event": "x", "capability": "c"}],
                  capabilities=[{"name": "c", "enabled": False}])
    await publish(store, "b", [{"event": "x", "capability": "c"}],
                  capabilities=[{"name": "c", "enabled": True}])
    [e] = await events.append(store, [EventIn(type="x")])
    await router.route_batch(store)
    # a's route records why it has no task; b's has one
    assert [(r.agent, r.skipped, r.task_id is not None)
            for r in await router.routes_of(store, e.event.seq)] == [
        ("a", "capability 'c' is disabled", False), ("b", None, True)]


async def test_only_events_a_trigger_may_match_are_read_and_each_is_routed_exactly(
        store: Store) -> None:
    # only events whose type is LIKE a published trigger's glob are queued, and the
    # router reads back only those: the SQL pattern must never drop one the glob matches
    # (LIKE's own _ is a literal in a glob), and SQLite's case-blind LIKE may queue and
    # read more but must route nothing more
    await publish(store, "globs", [{"event": "order.?d"}, {"event": "pct_x.*"}])
    types = ["order.id", "ORDER.ID", "order.idd", "orderxid", "pct_x.a", "pctAx.a",
             "pct_x", "other"]
    appended = await events.append(store, [EventIn(type=t) for t in types])
    queued = [t for t, a in zip(types, appended, strict=True)
              if not await router.is_routed(store, a.event.seq)]
    assert queued in (["order.id", "pct_x.a"], ["order.id", "ORDER.ID", "pct_x.a"])
    assert await router.route_batch(store, limit=100) == len(queued)
    routed = [t for t, a in zip(types, appended, strict=True)
              if await router.routes_of(store, a.event.seq)]
    assert routed == ["order.id", "pct_x.a"]
    assert all([await router.is_routed(store, a.event.seq) for a in appended])


async def test_with_no_trigger_anywhere_no_event_is_queued(store: Store) -> None:
    await publish(store, "quiet", [])
    appended = await events.append(store, [EventIn(type=f"t.{i}") for i in range(12)])
    assert all([await router.is_routed(store, a.event.seq) for a in appended])
    assert await router.route_batch(store) == 0


async def test_the_queue_drains_in_batches_when_no_route_fires(store: Store) -> None:
    await publish(store, "picky", [{"event": "t.*", "filter": {"never": True}}])
    appended = await events.append(store, [EventIn(type=f"t.{i}") for i in range(12)])
    assert not any([await router.is_routed(store, a.event.seq) for a in appended])
    assert await router.route_batch(store, limit=5) == 5
    assert await router.route_batch(store, limit=50) == 7
    assert await router.route_batch(store) == 0
    assert all([await router.is_routed(store, a.event.seq) for a in appended])
    assert not any([await router.routes_of(store, a.event.seq) for a in appended])


async def test_each_batch_routes_by_the_agents_and_switches_committed_before_it(
        store: Store, database_url: str) -> None:
    """The router keeps the agents it routes by between batches; a change committed by
    another process (a second store: no wake-up reaches this one) is routed by in the
    very next batch, events appended before it included."""
    other = open_store(database_url)
    try:
        await publish(store, "a", [{"event": "x.*"}])
        [first] = await events.append(store, [EventIn(type="x.1")])
        await router.route_batch(store)  # now the router knows a 1.0.0 only

        async def next_routes(change: Any, event_type: str) -> list[tuple[Any, ...]]:
            [appended] = await events.append(store, [EventIn(type=event_type)])
            await change()
            while await router.route_batch(store, limit=1):  # one batch per event
                pass
            return [(r.agent, r.agent_version, r.skipped)
                    for r in await router.routes_of(store, appended.event.seq)]

        async def nothing() -> None:
            pass

        assert [(r.agent, r.agent_version) for r in await router.routes_of(
            store, first.event.seq)] == [("a", "1.0.0")]
        # a newer version published: its triggers
        assert await next_routes(lambda: publish(other, "a", [{"event": "x.*"}], "2.0.0"),
                                 "x.2") == [("a", "2.0.0", None)]
        # a new agent on a type no trigger named before: an event appended before it was
        # published was routed to nobody there and then (no trigger named its type), the
        # next is routed to it (the router reads the agents again)
        assert await next_routes(lambda: publish(
            other, "b", [{"event": "y.*", "capability": "c"}],
            capabilities=[{"name": "c", "enabled": True}]), "y.0") == []
        assert await next_routes(nothing, "y.1") == [("b", "1.0.0", None)]
        # a capability switched off, then on again
        assert await next_routes(lambda: capabilities.switch(
            other, "b", "c", enabled=False, reason="test", by="t"), "y.2") == [
            ("b", "1.0.0", "capability 'c' is disabled")]
        assert await next_routes(lambda: capabilities.switch(
            other, "b", "c", enabled=True, reason="back", by="t"), "y.3") == [
            ("b", "1.0.0", None)]
        # the newest version deprecated: the one before it again
        assert await next_routes(lambda: registry.change_status(
            other, "a", "2.0.0", "deprecate"), "x.3") == [("a", "1.0.0", None)]
        # an agent deleted: routed to nobody
        assert await next_routes(lambda: agent_removal.delete(other, "b", by="t"),
                                 "y.4") == []
    finally:
        await other.close()


async def test_batches_grow_while_full_where_statements_leave_the_loop(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL each round trip of a batch may wait a whole loop round on a busy
    server: the router doubles its batch while batches come back full. SQLite's
    statements run on the loop: its batches stay at BATCH."""
    await publish(store, "picky", [{"event": "bulk.*", "filter": {"never": True}}])
    for _ in range(3):
        appended = await events.append(store, [EventIn(type="bulk.x") for _ in range(1000)])
    limits: list[int] = []
    real = router.route_batch

    async def spy(s: Store, limit: int = router.BATCH) -> int:
        limits.append(limit)
        return await real(s, limit)

    monkeypatch.setattr(router, "route_batch", spy)
    stop = asyncio.Event()
    running = asyncio.create_task(router.run(store, stop))
    deadline = asyncio.get_running_loop().time() + 60
    while not await router.is_routed(store, appended[-1].event.seq):
        assert asyncio.get_running_loop().time() < deadline, limits
        await asyncio.sleep(0.05)
    stop.set()
    await running
    if store.inline:
        assert set(limits) == {router.BATCH}
    else:  # 500 full, 1,000 full, then 2,000 takes the last 1,500
        assert limits[:3] == [500, 1000, 2000]


def test_next_limit() -> None:
    assert router.next_limit(500, 500, inline=False) == 1000
    assert router.next_limit(router.MAX_BATCH, router.MAX_BATCH, inline=False) == \
        router.MAX_BATCH
    assert router.next_limit(1000, 999, inline=False) == router.BATCH
    assert router.next_limit(500, 500, inline=True) == router.BATCH
