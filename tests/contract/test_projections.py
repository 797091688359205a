"""Projections on both backends: each event applied once, a failed batch applied again
whole, several runners at once, a rebuild equal to the live state, refusals."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from agentos import consumers, events, projections, queue
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.events import Event, EventIn
from agentos.projections import Projection
from agentos.store import Store, open_store
from agentos.store import consumers as store_consumers
from agentos.store.tables import consumers as consumers_table
from agentos.tasks import Outcome
from tests.projections_fixture import Rows, Seen
from tests.waiting import eventually_async

REGISTRY_SPEC = "tests.projections_fixture:both"


async def emit(store: Store, n: int, type: str = "count.tick") -> list[int]:
    done = await events.append(store, [EventIn(type=type, payload={"n": i}) for i in range(n)])
    return [a.event.seq for a in done]


async def state_of(store: Store, projection: Projection) -> dict[str, Any]:
    return dict((await projection.query(store, {"limit": "1000"}))["items"])


async def cursor_of(store: Store, projection: Projection) -> int:
    async with store.read() as conn:
        return int((await conn.execute(select(consumers_table.c.cursor_seq).where(
            consumers_table.c.name == "projection:" + projection.name))).scalar() or 0)


async def make_rows_table(store: Store) -> None:
    async with store.write() as conn:
        await conn.execute(text("CREATE TABLE test_rows (seq BIGINT PRIMARY KEY, type TEXT)"))


async def test_each_event_is_applied_once_in_order(store: Store) -> None:
    seen = Seen()
    seqs = await emit(store, 10)
    await emit(store, 3, "other.kind")  # not read by it, but the cursor passes them
    seqs += await emit(store, 12)
    assert await consumers.catch_up(store, seen.consumer()) == 22
    assert (await state_of(store, seen))["seqs"] == seqs
    assert await cursor_of(store, seen) == await events.head_seq(store)
    assert await consumers.step(store, seen.consumer()) == 0  # nothing new: nothing done
    [at] = await projections.status(store, {"seen": seen})
    assert (at["status"], at["lag_events"], at["applied"], at["lag_s"]) == ("live", 0, 22, 0)


class Tally(Projection):
    """Counts per key named by the event; a ``tally.drop`` removes its key."""

    name = "tally"
    types = ("tally.*",)

    def keys(self, event: Event) -> list[str]:
        return [event.payload["key"]]

    def apply(self, state: dict[str, Any], event: Event) -> None:
        key = event.payload["key"]
        if event.type == "tally.drop":
            state[key] = None
        else:
            state[key] = {"n": state.get(key, {"n": 0})["n"] + 1, "last": event.payload,
                          "at": event.created_at.isoformat()}


async def test_a_projection_s_values_are_loaded_saved_and_removed(
        database_url: str, backend: str) -> None:
    """Over several batches (of 3 events) values are loaded where they were left,
    saved, and removed when set to None; keys and values of any text round-trip
    (quotes, LIKE's wildcards, a backslash, non-ASCII, JSON that looks like a list);
    the events' times are in UTC whatever the database session's time zone."""
    if backend == "postgres":  # sessions in another zone than UTC
        setup = open_store(database_url)
        async with setup.write() as conn:
            name = (await conn.execute(text("SELECT current_database()"))).scalar()
            await conn.execute(text(f'ALTER DATABASE "{name}" SET timezone TO '
                                    "'Asia/Kolkata'"))
        await setup.close()
    store = open_store(database_url)
    keys = ["plain", "it's", "100%_done", "back\\slash", "ünï ☃", "[1, 2]"]
    drafts = [EventIn(type="tally.add", payload={"key": k, "v": [i, {"x": None}]})
              for i in range(2) for k in keys]
    drafts += [EventIn(type="tally.drop", payload={"key": "it's"}),
               EventIn(type="tally.drop", payload={"key": "never-there"}),
               EventIn(type="tally.add", payload={"key": "plain", "v": 1.5})]
    await events.append(store, drafts)
    tally = Tally()
    assert await consumers.catch_up(store, dataclasses.replace(tally.consumer(), batch=3)) \
        == len(drafts)
    found = await state_of(store, tally)
    assert sorted(found) == sorted(k for k in keys if k != "it's")
    assert (found["plain"]["n"], found["plain"]["last"]) == (3, {"key": "plain", "v": 1.5})
    assert (found["ünï ☃"]["n"], found["ünï ☃"]["last"]) == (
        2, {"key": "ünï ☃", "v": [1, {"x": None}]})
    assert (await tally.query(store, {"key": "100%_done"}))["items"]["100%_done"]["n"] == 2
    assert all(value["at"].endswith("+00:00") for value in found.values())
    await store.close()


async def test_a_claim_whose_horizon_is_behind_its_cursor_moves_nothing(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose claim finds the cursor past the horizon it read (another server's
    batch moved the cursor meanwhile) leaves the cursor where it is: it never moves
    back, which would apply events again."""
    seen = Seen()
    await emit(store, 5)
    await consumers.catch_up(store, seen.consumer())
    at = await cursor_of(store, seen)
    real = store_consumers.claim_batch

    async def stale(conn: Any, name: str) -> tuple[int, int] | None:
        found = await real(conn, name)
        return None if found is None else (found[0], found[0] - 3)

    monkeypatch.setattr(store_consumers, "claim_batch", stale)
    await emit(store, 2)
    assert await consumers.step(store, seen.consumer()) == 0
    assert await cursor_of(store, seen) == at


async def test_a_failed_batch_changes_nothing_and_is_applied_again_whole(store: Store) -> None:
    class Failing(Seen):
        fail_at: int | None = None

        def apply(self, state: dict[str, Any], event: Event) -> None:
            super().apply(state, event)
            if event.seq == self.fail_at:
                self.fail_at = None  # once, as a crash would
                raise RuntimeError("crashed mid-batch")

    failing = Failing()
    seqs = await emit(store, 10)
    failing.fail_at = seqs[9]  # in the second batch of 7
    assert await consumers.step(store, failing.consumer()) == 7
    with pytest.raises(RuntimeError):
        await consumers.step(store, failing.consumer())
    assert (await state_of(store, failing))["seqs"] == seqs[:7]
    assert await cursor_of(store, failing) == seqs[6]
    assert await consumers.catch_up(store, failing.consumer()) == 3
    assert (await state_of(store, failing))["seqs"] == seqs


async def test_runners_in_several_processes_never_apply_an_event_twice(
        database_url: str) -> None:
    stores = [open_store(database_url) for _ in range(3)]
    seen, rows = Seen(), Rows()
    try:
        await make_rows_table(stores[0])
        stop = asyncio.Event()
        runners = [asyncio.create_task(consumers.run(s, p.consumer(), stop))
                   for s in stores for p in (seen, rows)]
        seqs = []
        for _ in range(10):  # appends while they run
            seqs += await emit(stores[0], 9)
        deadline = time.monotonic() + 20
        while (await state_of(stores[0], seen)).get("seqs") != seqs or \
                (await state_of(stores[0], rows))["seqs"] != seqs:
            assert time.monotonic() < deadline, "the runners did not catch up"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*runners)
    finally:
        for s in stores:
            await s.close()


async def test_a_rebuild_gives_the_live_state(store: Store) -> None:
    from tests.contract.test_handler_kinds import agent, run, submit

    activity, stats = projections.AgentActivity(), projections.TaskStats()
    await agent(store, "echo", {"type": "python", "target": "tests.handlers:echo"})
    await agent(store, "broken", {"type": "python", "target": "tests.handlers:broken"},
                limits={"max_retries": 1})
    live = [p.consumer() for p in (activity, stats)]
    ids = []
    for n in range(6):  # the projections follow as the tasks run, a batch at a time
        ids.append(await submit(store, "echo" if n % 2 else "broken", retryable=n % 3 == 0))
        await run(store, ids[-1])
        for consumer in live:
            await consumers.step(store, consumer)
    pending = await submit(store, "echo")  # one left pending
    cancelled = await submit(store, "echo")
    await queue.cancel(store, cancelled)
    for consumer in live:
        await consumers.catch_up(store, consumer)
    before = {p.name: await state_of(store, p) for p in (activity, stats)}
    echo = before["agent_activity"]["echo"]
    assert echo["tasks"]["succeeded"] == 3 and echo["tasks"]["pending"] == 1
    assert echo["tasks"]["cancelled"] == 1 and pending
    assert before["agent_activity"]["broken"]["tasks"]["failed"] == 3
    assert before["task_stats"]["total"]["created"] == 8
    registry = {p.name: p for p in (activity, stats)}
    for p in (activity, stats):
        at = await projections.rebuild(store, registry, p.name)
        assert at["status"] == "rebuilding" and at["cursor_seq"] == 0
        assert await state_of(store, p) == {}  # cleared in the same transaction
        with pytest.raises(Conflict) as again:  # a rebuild while one runs
            await projections.rebuild(store, registry, p.name)
        assert again.value.code == "rebuild_running"
        assert await cursor_of(store, p) == 0  # ... wrote nothing
        await consumers.catch_up(store, p.consumer())
        [done] = await projections.status(store, registry, [p.name])
        assert done["status"] == "live" and done["rebuild"] is None
    assert {p.name: await state_of(store, p) for p in (activity, stats)} == before


async def test_activity_counts_cancels_while_waiting_and_while_running(store: Store) -> None:
    from agentos import claims
    from tests.contract.test_handler_kinds import agent, submit

    activity = projections.AgentActivity()
    await agent(store, "echo", {"type": "python", "target": "tests.handlers:echo"})
    first, second, _ = [await submit(store, "echo", n=n) for n in range(3)]
    [claimed] = await claims.claim(store, "w1", limit=1)
    assert claimed.id == first  # claim order: the first one submitted
    await queue.cancel(store, second)  # a waiting task: cancelled at once
    await queue.cancel(store, first)  # a running one: asked, then ended by its worker
    await queue.fail(store, first, 1, {"message": "stopped"}, Outcome.CANCELLED)
    await consumers.catch_up(store, activity.consumer())
    echo = (await state_of(store, activity))["echo"]
    # each cancel left the status it was in (its event says which): the third waits
    assert echo["tasks"] == {"pending": 1, "running": 0, "succeeded": 0, "failed": 0,
                             "cancelled": 2}


async def test_a_table_projection_rebuilds_too(store: Store) -> None:
    rows = Rows()
    await make_rows_table(store)
    seqs = await emit(store, 12)
    await consumers.catch_up(store, rows.consumer())
    await projections.rebuild(store, {"rows": rows}, "rows")
    assert (await state_of(store, rows))["seqs"] == []
    await consumers.catch_up(store, rows.consumer())
    assert (await state_of(store, rows))["seqs"] == seqs


async def test_lag_and_progress_while_behind(store: Store) -> None:
    seen = Seen()
    await emit(store, 20)
    await consumers.step(store, seen.consumer())
    await asyncio.sleep(0.05)
    [at] = await projections.status(store, {"seen": seen})
    assert at["status"] == "catching_up" and at["lag_events"] == 13 and at["lag_s"] > 0.04
    await consumers.catch_up(store, seen.consumer())
    await projections.rebuild(store, {"seen": seen}, "seen")
    await consumers.step(store, seen.consumer())
    [at] = await projections.status(store, {"seen": seen})
    assert at["rebuild"]["target_seq"] == 20 and at["rebuild"]["progress"] == 0.35


async def test_registry_and_refusals(store: Store) -> None:
    registry = projections.load(REGISTRY_SPEC)
    assert sorted(registry) == ["agent_activity", "rows", "seen", "task_stats"]
    assert sorted(projections.load("tests.projections_fixture:Seen")) == [
        "agent_activity", "seen", "task_stats"]
    for spec in ("no.such.module:x", "tests.projections_fixture:nope",
                 "tests.projections_fixture:not_a_projection", "tests.projections_fixture",
                 "tests.projections_fixture:Seen,tests.projections_fixture:Seen"):
        with pytest.raises(InvalidInput):
            projections.load(spec)
    with pytest.raises(NotFound) as missing:
        await projections.rebuild(store, registry, "ghost")
    assert missing.value.code == "projection_not_found"
    async with store.read() as conn:
        assert (await conn.execute(select(consumers_table))).all() == []


async def test_a_runner_follows_appends_as_they_commit(store: Store) -> None:
    seen, stop = Seen(), asyncio.Event()
    runner = asyncio.create_task(consumers.run(store, seen.consumer(), stop))
    try:
        seqs = await emit(store, 3)
        deadline = time.monotonic() + 2  # a local commit wakes it at once
        while (await state_of(store, seen)).get("seqs") != seqs:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_live_projection_gathers_single_appends_into_few_batches(store: Store) -> None:
    """Woken by an append, a projection's runner waits GATHER_S before it reads, so
    single events arriving one by one (a request each) are folded a few at a time, not
    one transaction each; every event is still applied once, in order."""
    seen, stop = Seen(), asyncio.Event()
    follower = seen.consumer()
    assert follower.gather_s == projections.GATHER_S > 0
    batches: list[int] = []

    async def counted(conn: Any, batch: list[Event]) -> bool | None:
        batches.append(len(batch))
        return await follower.apply(conn, batch)

    runner = asyncio.create_task(consumers.run(
        store, dataclasses.replace(follower, apply=counted), stop))
    try:
        await consumers.catch_up(store, follower)  # nothing yet: the runner is following
        seqs = []
        for _ in range(10):  # ten appends within about one gathering
            seqs += await emit(store, 1)
            await asyncio.sleep(projections.GATHER_S / 10)
        await eventually_async(lambda: state_is(store, seen, seqs), timeout=10,
                               what="the ten events folded")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert sum(batches) == 10 and len(batches) <= 4, batches


async def state_is(store: Store, projection: Projection, seqs: list[int]) -> bool:
    return (await state_of(store, projection)).get("seqs") == seqs


async def test_appends_that_keep_coming_while_it_reads_are_gathered_too(store: Store) -> None:
    """A batch that reached the log's horizon is followed by a gathering, not by the
    next read at once, though appends kept coming while it ran (a request each, one
    after another): here every batch takes 20 ms and an append comes every 10 ms, so a
    follower that read again at once would run a batch per append or two; gathering,
    about one per GATHER_S of the time the appends took (a few more allowed). Every
    event is applied once. (Before, on PostgreSQL: 26 batches in about 1 s.)"""
    seen, stop = Seen(), asyncio.Event()
    follower = seen.consumer()
    batches: list[int] = []

    async def slow(conn: Any, batch: list[Event]) -> bool | None:
        batches.append(len(batch))
        await asyncio.sleep(0.02)
        return await follower.apply(conn, batch)

    runner = asyncio.create_task(consumers.run(
        store, dataclasses.replace(follower, apply=slow), stop))
    try:
        await consumers.catch_up(store, follower)
        await asyncio.sleep(0.05)  # the runner is waiting for appends
        seqs = []
        started = time.monotonic()
        for _ in range(60):
            seqs += await emit(store, 1)
            await asyncio.sleep(0.01)
        await eventually_async(lambda: state_is(store, seen, seqs), timeout=10,
                               what="the sixty events folded")
        took = time.monotonic() - started
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert sum(batches) == 60, batches
    assert len(batches) <= took / projections.GATHER_S + 3, (batches, took)


class SeenToo(Seen):
    """A second reader of ``count.*`` events, in batches of 3."""

    name = "seen_too"
    batch = 3


def counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of events each read of the log's events returned from the database."""
    reads: list[int] = []
    real = store_consumers.events_after

    async def counted(*args: Any) -> list[Any]:
        rows = await real(*args)
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(store_consumers, "events_after", counted)
    return reads


async def test_consumers_of_the_same_types_read_each_event_once(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A consumer whose types another has just read takes the events that read found
    instead of reading them again: only what was appended since comes from the
    database. (Before, every consumer read and decoded every event itself.)"""
    reads = counting_reads(monkeypatch)
    seen, too = Seen(), SeenToo()
    seqs = await emit(store, 1)
    for projection in (seen, too):  # both read those types here now
        assert await consumers.catch_up(store, projection.consumer()) == 1
    reads.clear()
    seqs += await emit(store, 10)
    await emit(store, 2, "other.kind")
    assert await consumers.catch_up(store, seen.consumer()) == 10
    assert sum(reads) == 10
    assert await consumers.catch_up(store, too.consumer()) == 10
    assert sum(reads) == 10  # none read again
    seqs += await emit(store, 4)
    assert await consumers.catch_up(store, too.consumer()) == 4
    assert await consumers.catch_up(store, seen.consumer()) == 4
    assert sum(reads) == 14
    assert await state_is(store, seen, seqs) and await state_is(store, too, seqs)


async def test_a_shared_read_hands_on_nothing_a_prune_deleted(store: Store) -> None:
    """Events pruned after one consumer read them are not handed to the next reader of
    the same types: it reads the log as it is now."""
    seen, too = Seen(), SeenToo()
    first = await emit(store, 1)
    for projection in (seen, too):
        await consumers.catch_up(store, projection.consumer())
    await emit(store, 5)
    assert await consumers.catch_up(store, seen.consumer()) == 5
    assert (await events.prune(store, timedelta(0), "count.*")).deleted == 6
    assert await consumers.catch_up(store, too.consumer()) == 0
    assert await state_is(store, too, first)


async def test_a_consumer_reading_types_alone_keeps_no_events(store: Store) -> None:
    """A read of types no other consumer here reads keeps nothing for later; what a
    shared read kept is let go within 2 * SHARED_S."""
    seen, too = Seen(), SeenToo()
    await emit(store, 3)
    await consumers.catch_up(store, seen.consumer())
    assert not consumers._READS[store].found
    await consumers.catch_up(store, too.consumer())
    await emit(store, 3)
    await consumers.catch_up(store, seen.consumer())
    assert consumers._READS[store].found
    await eventually_async(lambda: _nothing_kept(store), timeout=3 * consumers.SHARED_S,
                           what="the shared read let go")


async def _nothing_kept(store: Store) -> bool:
    return not consumers._READS[store].found


async def test_shared_reads_skip_and_repeat_nothing_whatever_the_order(store: Store) -> None:
    """Three consumers, two of the same types with other batch sizes, step in a random
    order while events of several types are appended in between: each applies every
    event of its types once, in order, as a reader of its own would."""
    import random

    class Other(Seen):
        name = "other_seen"
        types = ("count.a*", "count.b*")
        batch = 4

    chosen = random.Random(21)
    readers: list[Projection] = [Seen(), SeenToo(), Other()]
    expected: dict[str, list[int]] = {p.name: [] for p in readers}
    for _ in range(60):
        if chosen.random() < 0.4:
            kind = chosen.choice(["count.a", "count.b", "count.c", "other.kind"])
            for seq in await emit(store, chosen.randint(1, 30), kind):
                for p in readers:
                    if any(fnmatch.fnmatchcase(kind, glob) for glob in p.types):
                        expected[p.name].append(seq)
        else:
            await consumers.step(store, chosen.choice(readers).consumer())
    for p in readers:
        await consumers.catch_up(store, p.consumer())
        assert (await state_of(store, p)).get("seqs", []) == expected[p.name], p.name


async def test_a_shared_read_hands_on_no_event_past_the_reader_s_window(store: Store) -> None:
    """A read that went further than the next reader's window (its batch reads at most
    ``SCAN`` numbers an event) hands it only the events within it: the next reader's
    cursor stops at its window's end and the event past it is applied once, later."""
    seen, too = Seen(), SeenToo()  # windows of 7 and 3 events' worth of numbers
    first = await emit(store, 1)
    await emit(store, 3 * consumers.SCAN + 5, "other.kind")
    last = await emit(store, 1)
    assert await consumers.step(store, seen.consumer()) == 2  # both, within its window
    assert await consumers.step(store, too.consumer()) == 1  # the first only
    assert await cursor_of(store, too) == 3 * consumers.SCAN
    await consumers.catch_up(store, too.consumer())
    assert await state_is(store, too, first + last)
