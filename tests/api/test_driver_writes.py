"""Single writes over HTTP take the store's driver connection (issue 21, target 1), with
the request's audit row in their transaction, on both backends: a single submit and a
single event append run no SQLAlchemy write transaction, their audit rows name what
they made, and a driver block that fails leaves neither its write nor its audit row."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from agentos import audit, locks, queue
from agentos.errors import AgentOSError, Conflict
from agentos.locks import state as lock_state
from agentos.store import Store
from agentos.store.tables import audit_log, events, tasks
from agentos.tasks import TaskIn
from tests.api.test_tasks_api import publish
from tests.contract.test_queue import agent
from tests.round_trips import RoundTrips


@pytest.fixture
def writes(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQLAlchemy write transactions requests begin from here on (each by the route
    that began it; the server's background loops, the router's say, are not counted)."""
    begun: list[str] = []
    original: Callable[[], AbstractAsyncContextManager[Any]] = store.write

    def counted() -> AbstractAsyncContextManager[Any]:
        _note_route(begun, with_file=True)
        return original()

    monkeypatch.setattr(store, "write", counted)
    return begun


def _note_route(made: list[str], with_file: bool = False) -> None:
    """Append the route (``name`` or ``name (file)``) the caller runs under, if any."""
    routes = [f"{f.name} ({f.filename.rsplit('/', 1)[-1]})" if with_file else f.name
              for f in traceback.extract_stack() if "/agentos/api/routes/" in f.filename]
    if routes:
        made.append(routes[-1])


async def audit_rows(store: Store, resource_id: str) -> list[Any]:
    async with store.read() as conn:
        return list((await conn.execute(select(audit_log).where(
            audit_log.c.resource_id == resource_id).order_by(audit_log.c.seq))).all())


async def test_a_single_submit_and_append_write_on_the_driver_with_their_audit_rows(
        api: httpx.AsyncClient, store: Store, writes: list[str]) -> None:
    await publish(api)
    writes.clear()
    task = await api.post("/api/v1/tasks", json={"agent": "a", "input": {"n": 1}})
    event = await api.post("/api/v1/events", json={"type": "driver.test", "payload": {}})
    assert task.status_code == 201 and event.status_code == 201, (task.text, event.text)
    assert writes == []  # before: one SQLAlchemy write transaction each
    [submitted] = await audit_rows(store, task.json()["id"])
    [appended] = await audit_rows(store, event.json()["id"])
    assert (submitted.actor, submitted.action, submitted.outcome) == (
        "user:admin", "tasks.submit", "ok")
    assert (appended.action, appended.outcome) == ("events.emit", "ok")
    verdict = await audit.verify(store)  # the rows written on the driver chain as others
    assert verdict.intact and verdict.head_seq >= 4, verdict


async def test_a_failed_driver_block_leaves_neither_its_write_nor_its_audit_row(
        store: Store) -> None:
    """Where the audit row is the block's last step in its transaction (SQLite; on
    PostgreSQL a batch with idempotency keys, whose row names the tasks the statement
    answers), a block that fails after its statement rolls both back; one that succeeds
    commits both."""
    store.before_commit(audit.flush, on_driver=audit.flush_on_driver)
    await agent(store)
    before = await _count(store)
    batches = iter([["failed-1", "failed-2"], ["failed-3", "failed-4"]])

    def refuse(ids: list[str]) -> None:
        raise Conflict("refused after the statement", code="test_refused")

    async def submit(named: Callable[[list[str]], None]) -> list[tuple[Any, bool]]:
        with audit.request_scope():
            audit.expect(audit.Entry(actor="user:t", action="tasks.submit",
                                     resource_type="task"))
            return await store.tasks.submit(
                [TaskIn(agent="a", idempotency_key=key) for key in next(batches)],
                queue.DEFAULTS, named=named)

    with pytest.raises(Conflict):
        await submit(refuse)
    assert await _count(store) == before
    made = await submit(audit.names)
    assert all(new for _, new in made)
    assert await _count(store) == (before[0] + 2, before[1] + 2, before[2] + 1)
    async with store.read() as conn:
        [entry] = (await conn.execute(select(audit_log).where(
            audit_log.c.action == "tasks.submit"))).all()
    assert entry.actor == "user:t" and entry.details["ids"] == [row.id for row, _ in made]


async def test_a_folded_statement_the_database_refuses_gives_its_audit_row_back(
        store: Store) -> None:
    """On PostgreSQL, where a write's statement carries the request's audit row
    (``Store.folding``), a statement the database refuses is rolled back whole: the
    entry is the request's again, so a retry (the locks retry a deadlock's victim)
    still records it. After an error of the caller's own, once its statement may have
    committed the row, the entry is not given back: no row is written twice."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite's blocks are transactions: their hooks run at the end")
    store.before_commit(audit.flush, on_driver=audit.flush_on_driver)
    entry = audit.Entry(actor="user:t", action="test.write", resource_type="test",
                        resource_id="refused-1")
    with audit.request_scope():
        audit.expect(entry)
        with pytest.raises(AgentOSError):
            async with store.folding() as (db, fold):
                assert fold is not None and fold() is not None
                await db.execute("SELECT 1 / 0")
        assert audit.pending() is entry
        with pytest.raises(Conflict):
            async with store.folding() as (db, fold):
                assert fold is not None and fold() is not None
                raise Conflict("the caller's own, after its statement", code="test_refused")
        assert audit.pending() is None


async def test_two_audited_submits_racing_for_one_key_write_one_task_and_two_rows(
        store: Store) -> None:
    """Two requests submit one task with the same idempotency key at once (on
    PostgreSQL each statement carries its audit row; the one that loses the key fails
    whole and is sent again, then answers the earlier task): one task, and each request
    its one audit row naming it."""
    store.before_commit(audit.flush, on_driver=audit.flush_on_driver)
    await agent(store)

    async def submit(n: int) -> tuple[Any, bool]:
        with audit.request_scope():
            audit.expect(audit.Entry(actor=f"user:{n}", action="tasks.submit",
                                     resource_type="task"))
            [made] = await store.tasks.submit([TaskIn(agent="a", idempotency_key="race-1")],
                                              queue.DEFAULTS, named=audit.names)
            return made

    made = await asyncio.gather(*(submit(n) for n in range(2)))
    assert len({row.id for row, _ in made}) == 1 and sorted(new for _, new in made) == [
        False, True]
    rows = await audit_rows(store, made[0][0].id)
    assert sorted(r.actor for r in rows) == ["user:0", "user:1"], rows
    assert (await audit.verify(store)).intact


async def _count(store: Store) -> tuple[int, ...]:
    async with store.read() as conn:
        return tuple([int((await conn.execute(select(func.count()).select_from(t))
                           ).scalar_one()) for t in (tasks, events, audit_log)])


async def test_concurrent_audited_blocks_commit_side_by_side(store: Store) -> None:
    """On PostgreSQL two requests' driver blocks are open at once, each on a connection
    of its own, so one's commit (its WAL flush) does not queue the other's: with the
    one driver connection, 8 concurrent single appends fell from about 300 to 205/s.
    Both audit rows are written. (SQLite has one writer at a time by design.)"""
    if store.dialect != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    store.before_commit(audit.flush, on_driver=audit.flush_on_driver)
    inside = [asyncio.Event(), asyncio.Event()]

    async def block(n: int) -> None:
        with audit.request_scope():
            audit.expect(audit.Entry(actor=f"user:{n}", action="test.write",
                                     resource_type="test", resource_id=f"side-{n}"))
            async with store.driver(hooked=True) as db:
                inside[n].set()
                await asyncio.wait_for(inside[1 - n].wait(), 10)  # both open at once
                await db.execute("SELECT 1")

    await asyncio.gather(block(0), block(1))
    assert [len(await audit_rows(store, f"side-{n}")) for n in (0, 1)] == [1, 1]


async def test_a_driver_block_that_changed_nothing_leaves_the_entry_for_the_next_write(
        store: Store) -> None:
    """``nothing_changed`` on a driver block's connection (a lock that was held) keeps
    its hooks from running, as on a write transaction: the request's audit row goes
    with its next write that changes something, and a block after it is unaffected."""
    store.before_commit(audit.flush, on_driver=audit.flush_on_driver)
    with audit.request_scope():
        audit.expect(audit.Entry(actor="user:t", action="test.write", resource_type="test",
                                 resource_id="unchanged-1"))
        async with store.driver(hooked=True) as db:
            store.nothing_changed(db)
        assert await audit_rows(store, "unchanged-1") == []
        async with store.driver(hooked=True):
            pass
    assert len(await audit_rows(store, "unchanged-1")) == 1


async def test_a_lock_taken_and_given_up_over_http_writes_on_the_driver(
        api: httpx.AsyncClient, store: Store, writes: list[str]) -> None:
    """Acquiring a free lock and releasing it, with and without a waiter to hand it to,
    run no SQLAlchemy write transaction (they did while the server's audit hook was
    set); each leaves its one audit row, chained as the others."""
    lock = "/api/v1/locks/drv:1"
    got = await api.post(f"{lock}/acquire", json={"owner": "a"})
    assert got.status_code == 200 and got.json()["granted"], got.text
    released = await api.post(f"{lock}/release", json={"owner": "a",
                                                       "token": got.json()["token"]})
    assert released.status_code == 200, released.text
    assert writes == []
    again = (await api.post(f"{lock}/acquire", json={"owner": "a"})).json()
    waiter = asyncio.create_task(api.post(f"{lock}/acquire", json={"owner": "b", "wait_s": 10}))
    async with asyncio.timeout(30):  # b queued (a write of its own: it changed the queue)
        while not [w for w in (await api.get(lock)).json()["queue"] if w["owner"] == "b"]:
            await asyncio.sleep(0.01)
    writes.clear()
    handed = await api.post(f"{lock}/release", json={"owner": "a", "token": again["token"]})
    assert handed.status_code == 200, handed.text
    assert (await waiter).json()["granted"] is True
    assert writes == []  # the hand-over too
    actions = [(r.action, r.outcome) for r in await audit_rows(store, "drv:1")]
    assert actions == [("locks.acquire", "ok"), ("locks.release", "ok"),
                       ("locks.acquire", "ok"), ("locks.acquire", "ok"),
                       ("locks.release", "ok")], actions
    verdict = await audit.verify(store)
    assert verdict.intact, verdict


async def test_a_single_complete_over_http_writes_on_the_driver_unless_it_holds_a_lock(
        api: httpx.AsyncClient, store: Store, writes: list[str]) -> None:
    """A complete whose attempt holds no lock runs no SQLAlchemy write transaction: its
    task, execution record, task.succeeded event and audit row are one driver block.
    One whose attempt holds a lock (or waits for one) is ended where the lock goes back,
    in a write transaction; a stale one answers 409 and writes nothing."""
    await publish(api)
    ids = [(await api.post("/api/v1/tasks", json={"agent": "a", "input": {"n": n}})
            ).json()["id"] for n in range(2)]
    claim = await api.post("/api/v1/tasks/claim", json={"worker_id": "w", "limit": 2})
    assert [t["id"] for t in claim.json()["tasks"]] == ids, claim.text
    first, second = ids
    held = await api.post("/api/v1/locks/drv:2/acquire", json={"owner": f"task:{second}"})
    assert held.json()["granted"], held.text
    writes.clear()
    done = await api.post(f"/api/v1/tasks/{first}/complete",
                          json={"attempt": 1, "output": {"ok": 1}, "cost": 0.5})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["output"]) == ("succeeded", {"ok": 1})
    assert writes == []  # before: one SQLAlchemy write transaction
    before = await _count(store)
    stale = await api.post(f"/api/v1/tasks/{first}/complete", json={"attempt": 1})
    assert stale.status_code == 409, stale.text
    assert await _count(store) == before and writes == []
    ended = await api.post(f"/api/v1/tasks/{second}/complete", json={"attempt": 1})
    assert ended.status_code == 200 and ended.json()["status"] == "succeeded", ended.text
    assert writes == ["complete (tasks.py)"]  # the lock's owner held it: given back too
    lock = (await api.get("/api/v1/locks/drv:2")).json()
    assert lock["holder"] is None, lock
    for task_id in ids:
        entries = [(r.action, r.outcome) for r in await audit_rows(store, task_id)]
        assert entries == [("tasks.submit", "ok"), ("tasks.complete", "ok")], entries
        detail = (await api.get(f"/api/v1/tasks/{task_id}")).json()
        assert [a["outcome"] for a in detail["attempts"]] == ["succeeded"], detail
    async with store.read() as conn:
        kinds = (await conn.execute(select(events.c.type, events.c.causation_id).where(
            events.c.type == "task.succeeded"))).all()
    assert sorted(kinds) == sorted(("task.succeeded", i) for i in ids), kinds
    assert (await audit.verify(store)).intact


async def test_a_complete_whose_attempt_waits_for_a_lock_leaves_the_queue(
        api: httpx.AsyncClient, store: Store, writes: list[str]) -> None:
    """An attempt whose lock owner waits in a lock's queue is ended where the queue is
    left too (the write transaction), not on the driver path that knows no locks."""
    await publish(api)
    task_id = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()["id"]
    claim = await api.post("/api/v1/tasks/claim", json={"worker_id": "w", "limit": 1})
    assert claim.json()["tasks"][0]["id"] == task_id, claim.text
    lock = "/api/v1/locks/drv:3"
    assert (await api.post(f"{lock}/acquire", json={"owner": "x"})).json()["granted"]
    owner = f"task:{task_id}"
    # as the worker's ctx.lock waits: fenced by the attempt, so once it ended the
    # waiter's next look is refused instead of joining the queue again
    waiter = asyncio.create_task(locks.acquire(store, "drv:3", locks.Claim(
        owner, task_id=task_id, attempt=1), wait_s=3))
    async with asyncio.timeout(30):
        while not [w for w in (await api.get(lock)).json()["queue"] if w["owner"] == owner]:
            await asyncio.sleep(0.01)
    writes.clear()
    done = await api.post(f"/api/v1/tasks/{task_id}/complete", json={"attempt": 1})
    assert done.status_code == 200 and done.json()["status"] == "succeeded", done.text
    assert writes == ["complete (tasks.py)"]
    assert (await api.get(lock)).json()["queue"] == []
    with pytest.raises(Conflict):  # the attempt is over: its wait is refused
        await waiter
    assert (await api.get(lock)).json()["queue"] == []


async def test_a_claim_round_trip_gives_back_the_locks_taken_in_its_attempts_name(
        api: httpx.AsyncClient) -> None:
    """A remote worker's claim that carries completions ends an attempt holding a lock
    (taken over HTTP in its name, not declared by its agent) where the lock goes back;
    before, only declared resources counted and the lock stayed until its lease ran out."""
    await publish(api)
    ids = [(await api.post("/api/v1/tasks", json={"agent": "a"})).json()["id"]
           for _ in range(2)]
    claim = await api.post("/api/v1/tasks/claim", json={"worker_id": "far", "limit": 2})
    assert [t["id"] for t in claim.json()["tasks"]] == ids, claim.text
    got = await api.post("/api/v1/locks/drv:4/acquire", json={"owner": f"task:{ids[0]}"})
    assert got.json()["granted"], got.text
    again = await api.post("/api/v1/tasks/claim", json={
        "worker_id": "far", "limit": 0,
        "completed": [{"id": i, "attempt": 1, "output": {}} for i in ids]})
    assert again.status_code == 200 and again.json()["stale"] == [], again.text
    assert (await api.get("/api/v1/locks/drv:4")).json()["holder"] is None
    for task_id in ids:
        assert (await api.get(f"/api/v1/tasks/{task_id}")).json()["status"] == "succeeded"


async def test_a_join_or_hand_over_that_changes_nothing_leaves_the_audit_row_to_the_full_path(
        api: httpx.AsyncClient, store: Store) -> None:
    """A wait's join that finds the lock free, and a hand-over with a stale token,
    change nothing and write no audit row (on PostgreSQL the row rides in their
    statement only when it has one): the acquire's one row is the full path's, and
    the refused release writes none."""
    lock = "/api/v1/locks/nc:1"
    lock_state._contended("nc:1", True)  # as after a hand-over here: the wait joins first
    held = (await api.post(f"{lock}/acquire", json={"owner": "a", "wait_s": 1})).json()
    assert held["granted"] is True, held
    lock_state._contended("nc:1", True)  # and the release hands over first
    refused = await api.post(f"{lock}/release", json={"owner": "a", "token": held["token"] + 5})
    assert refused.status_code == 409, refused.text
    assert [(r.action, r.outcome) for r in await audit_rows(store, "nc:1")] == [
        ("locks.acquire", "ok")]
    assert (await audit.verify(store)).intact


async def test_an_audited_queue_join_and_hand_over_are_one_round_trip_each_on_postgresql(
        api: httpx.AsyncClient, store: Store, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTP on PostgreSQL a wait's queue join and a release's hand-over carry the
    request's audit row in their own statement, sent after the lock row's in one
    pipeline: one round trip each, where a transaction took four (BEGIN, the pipeline
    of the lock row's statement and theirs, the audit row, COMMIT). Two owners take
    turns: once a process has handed a lock over, its next wait joins first and its
    next release hands over first (``locks.state._CONTENDED``), so from the second
    turn on each is the one statement. The audit rows chain, each committed with its
    write's event."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite's transaction is local calls, not round trips")
    lock = "/api/v1/locks/trip:2"
    async with store.driver_read():  # the shared connection (waits' looks) untraced
        pass
    trips = RoundTrips(store, tmp_path / "libpq.trace", monkeypatch)

    async def queued(owner: str) -> bool:
        return owner in [w["owner"] for w in (await api.get(lock)).json()["queue"]]

    try:
        held = (await api.post(f"{lock}/acquire", json={"owner": "a"})).json()
        holder, waiter, turns = "a", "b", []
        for _ in range(3):
            mark = trips.mark()
            wait = asyncio.create_task(api.post(f"{lock}/acquire",
                                                json={"owner": waiter, "wait_s": 20}))
            async with asyncio.timeout(30):
                while not await queued(waiter):
                    await asyncio.sleep(0.01)
            join_trips = trips.since(mark)
            mark = trips.mark()
            released = await api.post(f"{lock}/release",
                                      json={"owner": holder, "token": held["token"]})
            assert released.status_code == 200, released.text
            handover_trips = trips.since(mark)
            held = (await wait).json()
            assert held["granted"] is True, held
            holder, waiter = waiter, holder
            turns.append((join_trips, handover_trips))
        assert turns[1:] == [(1, 1), (1, 1)], turns
        actions = [(r.action, r.outcome) for r in await audit_rows(store, "trip:2")]
        assert actions == [("locks.acquire", "ok")] + [
            ("locks.acquire", "ok"), ("locks.release", "ok")] * 3, actions
        async with store.read() as conn:  # each row committed with its write's event
            pairs = (await conn.exec_driver_sql(
                "SELECT e.type, count(a.seq) FROM events e LEFT JOIN audit_log a"
                " ON a.xmin::text = e.xmin::text AND a.resource_id = 'trip:2'"
                " WHERE e.type IN ('lock.queued', 'lock.released')"
                " GROUP BY e.seq, e.type ORDER BY e.seq")).all()
        assert pairs == [("lock.queued", 1), ("lock.released", 1)] * 3, pairs
        assert (await audit.verify(store)).intact
    finally:
        trips.close()


async def test_an_audited_single_write_is_one_round_trip_on_postgresql(
        api: httpx.AsyncClient, store: Store, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a single submit (with an idempotency key or not), event append,
    complete, lock acquire and release over HTTP carry their audit row in their own
    statement (``Store.folding``): one round trip each, where a transaction took four
    (BEGIN, the write, the audit row, COMMIT). Counted in libpq's trace of the store's
    writer connections, where each round trip ends with a Sync (extended protocol) or
    is one Query (simple). The rows are there, chain, and each committed with its
    write."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite's transaction is local calls, not round trips")
    async with store.driver_read():  # the shared connection (background loops) untraced
        pass
    trips = RoundTrips(store, tmp_path / "libpq.trace", monkeypatch)
    await publish(api)

    async def sent(method: str, path: str, body: dict[str, Any]) -> tuple[Any, int]:
        mark = trips.mark()
        answer = await api.request(method, path, json=body)
        assert answer.status_code in (200, 201), answer.text
        return answer.json(), trips.since(mark)

    try:
        for n in range(2):  # the first of each prepares its statement: a round trip more
            task, submit_trips = await sent("POST", "/api/v1/tasks",
                                            {"agent": "a", "input": {"n": n}})
            event, append_trips = await sent("POST", "/api/v1/events",
                                             {"type": "trip.test", "payload": {"n": n}})
            claim = await api.post("/api/v1/tasks/claim", json={"worker_id": "w", "limit": 1})
            assert [t["id"] for t in claim.json()["tasks"]] == [task["id"]], claim.text
            _, complete_trips = await sent("POST", f"/api/v1/tasks/{task['id']}/complete",
                                           {"attempt": 1, "output": {"n": n}})
            got, acquire_trips = await sent("POST", "/api/v1/locks/trip:1/acquire",
                                            {"owner": "a", "ttl_s": 30})
            _, release_trips = await sent("POST", "/api/v1/locks/trip:1/release",
                                          {"owner": "a", "token": got["token"]})
        assert (submit_trips, append_trips, complete_trips) == (1, 1, 1)
        assert (acquire_trips, release_trips) == (1, 1)
        assert [r.action for r in await audit_rows(store, "trip:1")] == [
            "locks.acquire", "locks.release"] * 2
        assert [r.action for r in await audit_rows(store, task["id"])] == [
            "tasks.submit", "tasks.complete"]
        assert [r.action for r in await audit_rows(store, event["id"])] == ["events.emit"]
        # each audit row committed with its write: the same transaction wrote both
        async with store.read() as conn:
            pairs = (await conn.exec_driver_sql(
                "SELECT e.type, e.xmin::text = a.xmin::text FROM events e JOIN audit_log a"
                " ON a.resource_id = coalesce(e.causation_id, e.id) AND a.action = CASE"
                " e.type WHEN 'task.created' THEN 'tasks.submit' WHEN 'task.succeeded'"
                " THEN 'tasks.complete' ELSE 'events.emit' END"
                " WHERE e.type IN ('task.created', 'task.succeeded', 'trip.test')")).all()
        assert sorted(pairs) == [("task.created", True)] * 2 + [
            ("task.succeeded", True)] * 2 + [("trip.test", True)] * 2, pairs
        # one task with an idempotency key: one round trip when new; sent again, the
        # statement writes nothing and the audit row naming the first task follows in
        # one statement of its own (the first such row prepares it: a round trip more)
        keyed, keyed_trips = await sent("POST", "/api/v1/tasks",
                                        {"agent": "a", "idempotency_key": "trip-k"})
        for _ in range(2):
            again, replay_trips = await sent("POST", "/api/v1/tasks",
                                             {"agent": "a", "idempotency_key": "trip-k"})
        assert keyed_trips == 1 and again["id"] == keyed["id"]
        assert replay_trips == 2  # before: 4 (the statement, then BEGIN, the row, COMMIT)
        assert [r.action for r in await audit_rows(store, keyed["id"])] == [
            "tasks.submit"] * 3  # each replay's row names the first task
        assert (await audit.verify(store)).intact
    finally:
        trips.close()


async def test_a_remote_claim_round_trip_writes_on_the_driver_with_its_audit_row(
        api: httpx.AsyncClient, store: Store, writes: list[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote worker's claim over HTTP (its completions and its claim) is the
    worker's one-step round trip on the store's driver connection, with the request's
    audit row: on PostgreSQL in the round trip's own statement, one round trip on a
    writer's connection (before: BEGIN, the statement, the row and COMMIT through
    SQLAlchemy; the look at the completed attempts' locks is in it too since the test
    below); on SQLite in its write transaction. An empty
    poll writes no row. The only SQLAlchemy write left is the worker's presence, at
    most once a ``PRESENCE_EVERY``."""
    from agentos.worker import instances

    monkeypatch.setattr(instances, "PRESENCE_EVERY", 3600.0)
    trips = None
    if store.dialect == "postgresql":
        async with store.driver_read():  # the shared connection (background loops) untraced
            pass
        trips = RoundTrips(store, tmp_path / "libpq.trace", monkeypatch)
    try:
        await publish(api)
        for n in range(6):
            await api.post("/api/v1/tasks", json={"agent": "a", "input": {"n": n}})
        writes.clear()
        done: list[dict[str, Any]] = []
        rounds = []
        for _ in range(3):  # the first prepares its statement: a round trip more
            mark = trips.mark() if trips else 0
            answer = await api.post("/api/v1/tasks/claim", json={
                "worker_id": "far", "limit": 2, "completed": done})
            assert answer.status_code == 200 and len(answer.json()["tasks"]) == 2, answer.text
            rounds.append(trips.since(mark) if trips else 0)
            done = [{"id": t["id"], "attempt": t["attempt"]} for t in answer.json()["tasks"]]
        answer = await api.post("/api/v1/tasks/claim", json={
            "worker_id": "far", "limit": 0, "completed": done})
        assert answer.json() == {"tasks": [], "stale": []}
        empty = await api.post("/api/v1/tasks/claim", json={"worker_id": "far"})
        assert empty.json() == {"tasks": []}
    finally:
        if trips:
            trips.close()
    assert writes == ["claim (tasks.py)"], writes  # the presence, written once
    if trips:
        assert rounds[1:] == [1, 1], rounds
    async with store.read() as conn:
        rows = (await conn.execute(select(audit_log.c.action, audit_log.c.outcome).where(
            audit_log.c.action == "tasks.claim"))).all()
    assert [tuple(r) for r in rows] == [("tasks.claim", "ok")] * 4  # not the empty poll
    if store.dialect == "postgresql":  # each row committed with its round trip's events
        async with store.read() as conn:
            pairs = (await conn.exec_driver_sql(
                "SELECT e.type, count(a.seq) FROM events e LEFT JOIN audit_log a"
                " ON a.xmin::text = e.xmin::text AND a.action = 'tasks.claim'"
                " WHERE e.type IN ('task.started', 'task.succeeded')"
                " GROUP BY e.seq, e.type")).all()
        assert sorted(pairs) == [("task.started", 1)] * 6 + [("task.succeeded", 1)] * 6
    assert (await audit.verify(store)).intact


@pytest.fixture
def reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The reads outside any transaction that requests make from here on (PostgreSQL's
    driver connection, SQLite's reader: where a remote claim looked at its attempts'
    locks before its round trip)."""
    made: list[str] = []
    if store.dialect == "postgresql":
        original_read = store.driver_read

        def counted_read() -> AbstractAsyncContextManager[Any]:
            _note_route(made)
            return original_read()

        monkeypatch.setattr(store, "driver_read", counted_read)
    else:
        original_row = store.read_row  # type: ignore[attr-defined]

        def counted_row(statement: str, params: dict[str, Any]) -> Any:
            _note_route(made)
            return original_row(statement, params)

        monkeypatch.setattr(store, "read_row", counted_row)
    return made


async def test_a_remote_claim_looks_at_its_attempts_locks_within_its_round_trip(
        api: httpx.AsyncClient, store: Store, reads: list[str], writes: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote worker's completions carried by its next claim are looked at for locks
    by the round trip itself (a read before it, until now): an attempt that holds its
    agent's declared resource and one that holds none end in one request, the lock is
    given back, the claim answers the next tasks, and the request writes one audit row
    (the round trip that found the lock wrote nothing, not even a row of its own)."""
    from agentos.worker import instances

    monkeypatch.setattr(instances, "PRESENCE_EVERY", 3600.0)
    await publish(api)
    await api.post("/api/v1/agents", json={
        "name": "dev", "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
        "resources": ["device:{input.device_id}"], "permissions": {"lock": ["device:*"]}})
    await api.post("/api/v1/agents/dev/versions/1.0.0/publish")
    for n in range(4):
        await api.post("/api/v1/tasks", json={"agent": "a", "input": {"n": n}})
    await api.post("/api/v1/tasks", json={"agent": "dev", "input": {"device_id": "p7"},
                                          "priority": 9})

    async def claim_rows() -> int:
        async with store.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(audit_log).where(
                audit_log.c.action == "tasks.claim"))).scalar_one())

    first = (await api.post("/api/v1/tasks/claim", json={"worker_id": "far", "limit": 2})
             ).json()["tasks"]
    assert [t["agent"] for t in first] == ["dev", "a"] and first[0]["locks"], first
    plain = (await api.post("/api/v1/tasks/claim", json={"worker_id": "far", "limit": 1})
             ).json()["tasks"]
    reads.clear()
    writes.clear()
    before = await claim_rows()
    # no lock held among these: the one-step round trip ends them and claims on
    answer = (await api.post("/api/v1/tasks/claim", json={
        "worker_id": "far", "limit": 1,
        "completed": [{"id": t["id"], "attempt": t["attempt"]} for t in plain]})).json()
    assert answer["stale"] == [] and len(answer["tasks"]) == 1, answer
    assert writes == []
    # the device holder among these: they end where its lock is given back
    mixed = (await api.post("/api/v1/tasks/claim", json={
        "worker_id": "far", "limit": 2,
        "completed": [{"id": t["id"], "attempt": t["attempt"]} for t in first]})).json()
    assert mixed["stale"] == [] and len(mixed["tasks"]) == 1, mixed
    assert reads == []  # before: one lock look a claim with completions
    assert writes == ["claim (tasks.py)"]  # the holder's: where locks are given back
    for t in [*first, *plain]:
        assert (await api.get(f"/api/v1/tasks/{t['id']}")).json()["status"] == "succeeded"
    assert (await api.get("/api/v1/locks/device:p7")).json()["holder"] is None
    assert await claim_rows() == before + 2  # one a request
    assert (await audit.verify(store)).intact
