"""Tasks over HTTP: submit, batch, list, get, cancel, retry, the worker protocol, bad input."""

import asyncio
from typing import Any

import httpx
import pytest

from agentos.store import Store
from tests.api.test_agents_api import assert_error
from tests.snapshot import snapshot


async def publish(api: httpx.AsyncClient, name: str = "a", publish: bool = True) -> None:
    await api.post("/api/v1/agents", json={
        "name": name, "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
        "limits": {"max_retries": 1, "backoff": {"initial_s": 0.01, "jitter": False}}})
    if publish:
        await api.post(f"/api/v1/agents/{name}/versions/1.0.0/publish")


async def test_worker_protocol_round_trip(api: httpx.AsyncClient) -> None:
    await publish(api)
    r = await api.post("/api/v1/tasks", json={"agent": "a", "input": {"q": 1}, "priority": 8,
                                              "idempotency_key": "k1"})
    assert r.status_code == 201 and r.json()["status"] == "pending"
    task_id = r.json()["id"]
    again = await api.post("/api/v1/tasks", json={"agent": "a", "input": {"q": 1},
                                                   "priority": 8, "idempotency_key": "k1"})
    assert again.status_code == 200 and again.json()["id"] == task_id
    other = await api.post("/api/v1/tasks", json={"agent": "a", "input": {"q": 2},
                                                   "priority": 8, "idempotency_key": "k1"})
    error = assert_error(other, 409, "idempotency_conflict")
    assert error["details"] == {"idempotency_key": "k1", "fields": ["input"], "task_id": task_id}
    other = await api.post("/api/v1/tasks/batch", json={"tasks": [
        {"agent": "a", "input": {"q": 1}}, {"agent": "a", "priority": 1, "input": {"q": 1},
                                            "idempotency_key": "k1"}]})
    error = assert_error(other, 409, "idempotency_conflict")
    assert error["details"]["fields"] == ["priority"] and error["details"]["index"] == 1
    claim = await api.post("/api/v1/tasks/claim", json={"worker_id": "remote-1", "limit": 5})
    [task] = claim.json()["tasks"]
    assert task["id"] == task_id and task["attempt"] == 1 and task["input"] == {"q": 1}
    beat = await api.post(f"/api/v1/tasks/{task_id}/heartbeat", json={"attempt": 1})
    assert beat.status_code == 200 and beat.json()["cancel_requested"] is False
    assert_error(await api.post(f"/api/v1/tasks/{task_id}/complete", json={"attempt": 2}), 409,
                 "stale_attempt")
    done = await api.post(f"/api/v1/tasks/{task_id}/complete",
                          json={"attempt": 1, "output": {"a": 2}, "tokens": {"total": 9}})
    assert done.json()["status"] == "succeeded"
    full = (await api.get(f"/api/v1/tasks/{task_id}")).json()
    assert full["attempts"][0]["worker_id"] == "remote-1"
    assert full["attempts"][0]["tokens"] == {"total": 9}
    assert_error(await api.post(f"/api/v1/tasks/{task_id}/cancel"), 409)


async def test_a_claim_records_the_attempts_completed_since_the_last(api: httpx.AsyncClient
                                                                     ) -> None:
    await publish(api)
    made = (await api.post("/api/v1/tasks/batch", json={
        "tasks": [{"agent": "a"} for _ in range(4)]})).json()["tasks"]
    first = (await api.post("/api/v1/tasks/claim", json={"worker_id": "far", "limit": 2})
             ).json()["tasks"]
    done = [{"id": t["id"], "attempt": t["attempt"], "output": {"n": n}, "tokens": {"total": 3}}
            for n, t in enumerate(first)]
    stale = {"id": made[3]["id"], "attempt": 1}  # not running: not recorded
    again = (await api.post("/api/v1/tasks/claim", json={
        "worker_id": "far", "limit": 2, "completed": [stale, *done]})).json()
    assert again.get("stale") == [stale] and len(again["tasks"]) == 2, again
    assert not {t["id"] for t in again["tasks"]} & {t["id"] for t in first}
    for n, t in enumerate(first):
        full = (await api.get(f"/api/v1/tasks/{t['id']}")).json()
        assert full["status"] == "succeeded" and full["output"] == {"n": n}
        assert full["attempts"][0]["worker_id"] == "far"
        assert full["attempts"][0]["tokens"] == {"total": 3}
    last = (await api.post("/api/v1/tasks/claim", json={"worker_id": "far", "limit": 0,
                                                        "completed": [
        {"id": t["id"], "attempt": t["attempt"]} for t in again["tasks"]]})).json()
    assert last == {"tasks": [], "stale": []}
    listed = (await api.get("/api/v1/tasks", params={"status": "succeeded"})).json()["tasks"]
    assert len(listed) == 4
    assert_error(await api.post("/api/v1/tasks/claim", json={
        "worker_id": "far", "completed": [{"id": "x", "attempt": 0}]}), 422)
    twice = [{"id": "x", "attempt": 1}, {"id": "x", "attempt": 2}]
    assert_error(await api.post("/api/v1/tasks/claim", json={
        "worker_id": "far", "completed": twice}), 422)


async def test_a_remote_claim_holds_the_agents_declared_resources(api: httpx.AsyncClient
                                                                  ) -> None:
    for name, resource in [("dev", "device:{input.device_id}"), ("phones", "phone:{input.id}")]:
        await api.post("/api/v1/agents", json={
            "name": name, "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
            "resources": [resource], "permissions": {"lock": ["device:*"]}})
        await api.post(f"/api/v1/agents/{name}/versions/1.0.0/publish")
    first, second = [(await api.post("/api/v1/tasks", json={
        "agent": "dev", "input": {"device_id": "pixel-7"}})).json()["id"] for _ in range(2)]
    refused = (await api.post("/api/v1/tasks", json={"agent": "phones", "input": {"id": "x"}})
               ).json()["id"]
    claim = (await api.post("/api/v1/tasks/claim", json={"worker_id": "far", "limit": 5})).json()
    [task] = claim["tasks"]  # the second waits for the device; the third may not lock it
    assert task["id"] == first
    [held] = task["locks"]
    assert held["resource"] == "device:pixel-7" and held["token"] == 1
    lock = (await api.get("/api/v1/locks/device:pixel-7")).json()
    assert lock["holder"]["owner"] == f"task:{first}" and lock["holder"]["task_id"] == first
    assert [w["task_id"] for w in lock["queue"]] == [second]  # its place is kept
    # the attempt's heartbeats renew its lock with its lease
    beat = await api.post(f"/api/v1/tasks/{first}/heartbeat", json={"attempt": 1,
                                                                    "lease_s": 600})
    assert beat.status_code == 200
    renewed = (await api.get("/api/v1/locks/device:pixel-7")).json()["holder"]
    assert renewed["expires_at"] > lock["holder"]["expires_at"]
    assert (await api.get(f"/api/v1/tasks/{second}")).json()["status"] == "scheduled"
    failed = (await api.get(f"/api/v1/tasks/{refused}")).json()
    assert failed["status"] == "failed" and failed["error"]["type"] == "lock_not_permitted"
    # the end of the attempt (carried by the next claim) releases the lock to the task
    # that waits, which runs next
    again = (await api.post("/api/v1/tasks/claim", json={
        "worker_id": "far", "wait_s": 5, "completed": [{"id": first, "attempt": 1}]})).json()
    assert again["stale"] == []
    [then] = again["tasks"]
    assert then["id"] == second and then["locks"][0]["token"] == 2
    assert (await api.get(f"/api/v1/tasks/{first}")).json()["status"] == "succeeded"
    await api.post(f"/api/v1/tasks/{second}/fail", json={
        "attempt": then["attempt"], "error": {"type": "Boom", "message": "no"},
        "retryable": False})
    assert (await api.get("/api/v1/locks/device:pixel-7")).json()["holder"] is None


async def test_fail_retry_dead_letter_and_rerun(api: httpx.AsyncClient) -> None:
    await publish(api)
    task_id = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()["id"]
    for attempt in (1, 2):
        got: list[dict[str, Any]] = []
        for _ in range(100):
            got = (await api.post("/api/v1/tasks/claim",
                                  json={"worker_id": "w", "wait_s": 1})).json()["tasks"]
            if got:
                break
        assert got[0]["attempt"] == attempt
        await api.post(f"/api/v1/tasks/{task_id}/fail", json={
            "attempt": attempt, "error": {"type": "Boom", "message": "no"}})
    failed = (await api.get("/api/v1/tasks", params={"status": "failed"})).json()["tasks"]
    assert [t["id"] for t in failed] == [task_id]
    assert (await api.post(f"/api/v1/tasks/{task_id}/retry")).json()["status"] == "pending"


async def test_batch_and_list(api: httpx.AsyncClient) -> None:
    await publish(api)
    r = await api.post("/api/v1/tasks/batch", json={"tasks": [
        {"agent": "a", "input": {"n": i}, "correlation_id": "batch-1"} for i in range(5)]})
    assert r.status_code == 201 and len(r.json()["tasks"]) == 5
    page = (await api.get("/api/v1/tasks", params={"correlation_id": "batch-1",
                                                   "limit": 3})).json()
    assert len(page["tasks"]) == 3 and page["next_after_seq"] is not None


async def test_newest_first_pages_down_by_status_and_agent(api: httpx.AsyncClient) -> None:
    await publish(api, "a")
    await publish(api, "b")
    r = await api.post("/api/v1/tasks/batch", json={"tasks": [
        {"agent": "a" if n % 3 else "b", "input": {"n": n}} for n in range(10)]})
    assert r.status_code == 201
    ids = [t["id"] for t in r.json()["tasks"]]
    cancelled = [ids[2], ids[7]]
    for task_id in cancelled:
        assert (await api.post(f"/api/v1/tasks/{task_id}/cancel")).status_code == 200

    async def walk(params: dict[str, Any]) -> list[int]:
        seen: list[int] = []
        query = {"order": "desc", "limit": 3, **params}
        while True:
            page = (await api.get("/api/v1/tasks", params=query)).json()
            assert page.get("next_after_seq") is None
            seen += [t["input"]["n"] for t in page["tasks"]]
            if page["next_before_seq"] is None:
                return seen
            query["before_seq"] = page["next_before_seq"]

    assert await walk({}) == list(range(9, -1, -1))
    assert await walk({"agent": "b"}) == [9, 6, 3, 0]
    assert await walk({"status": "cancelled"}) == [7, 2]
    assert await walk({"agent": "a", "status": "pending"}) == [8, 5, 4, 1]
    for bad in ({"before_seq": 3}, {"order": "newest"}, {"order": "desc", "before_seq": 0}):
        r = await api.get("/api/v1/tasks", params=bad)
        assert 400 <= r.status_code < 500 and set(r.json()) == {"error"}, (bad, r.text)


async def test_type_and_metadata_are_kept_listed_and_part_of_a_key(api: httpx.AsyncClient
                                                                    ) -> None:
    await publish(api)
    labels = {"customer": "acme", "requested_by": "ops-lead", "quarter": 4}
    r = await api.post("/api/v1/tasks", json={"agent": "a", "type": "train",
                                              "metadata": labels, "idempotency_key": "t1"})
    assert r.status_code == 201, r.text
    assert (r.json()["type"], r.json()["metadata"]) == ("train", labels)
    plain = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()
    assert (plain["type"], plain["metadata"]) == (None, None)
    await api.post("/api/v1/tasks/batch", json={"tasks": [
        {"agent": "a", "type": "analyze"}, {"agent": "a", "type": "train"}]})
    trains = (await api.get("/api/v1/tasks", params={"type": "train"})).json()["tasks"]
    assert [t["type"] for t in trains] == ["train", "train"]
    assert trains[0]["id"] == r.json()["id"] and trains[0]["metadata"] == labels
    newest = (await api.get("/api/v1/tasks", params={"type": "train", "order": "desc",
                                                      "limit": 1})).json()
    assert newest["tasks"][0]["id"] == trains[1]["id"] and newest["next_before_seq"]
    # the same key again: the same task; with other labels or type: 409, nothing written
    again = await api.post("/api/v1/tasks", json={"agent": "a", "type": "train",
                                                  "metadata": labels, "idempotency_key": "t1"})
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    other = await api.post("/api/v1/tasks", json={"agent": "a", "type": "analyze",
                                                  "metadata": {**labels, "quarter": 1},
                                                  "idempotency_key": "t1"})
    error = assert_error(other, 409, "idempotency_conflict")
    assert error["details"]["fields"] == ["type", "metadata"]
    # a claimed task carries them to the worker
    claimed = (await api.post("/api/v1/tasks/claim", json={"worker_id": "w", "limit": 1})
               ).json()["tasks"]
    assert (claimed[0]["type"], claimed[0]["metadata"]) == ("train", labels)


async def test_cancel_pending(api: httpx.AsyncClient) -> None:
    await publish(api)
    task_id = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()["id"]
    assert (await api.post(f"/api/v1/tasks/{task_id}/cancel")).json()["status"] == "cancelled"
    claim = await api.post("/api/v1/tasks/claim", json={"worker_id": "w"})
    assert claim.json()["tasks"] == []
    assert_error(await api.post(f"/api/v1/tasks/{task_id}/complete", json={"attempt": 1}),
                 409)


@pytest.mark.parametrize(("body", "status"), [
    ({"agent": "ghost"}, 400),
    ({"agent": "drafty"}, 400),
    ({"agent": "a", "priority": 11}, 422),
    ({"agent": "a", "priority": 0}, 422),
    ({"agent": "a", "timeout_s": -1}, 422),
    ({"agent": "a", "input": [1, 2]}, 422),
    ({"agent": "a", "colour": "red"}, 422),
    ([{"agent": "a"}], 400),
    ({"agent": "a", "type": "Train!"}, 422),
    ({"agent": "a", "type": ""}, 422),
    ({"agent": "a", "metadata": ["a"]}, 422),
    ({"agent": "a", "metadata": {"note": "x" * 9000}}, 422),
])
async def test_bad_submissions_write_nothing(api: httpx.AsyncClient, store: Store,
                                             body: Any, status: int) -> None:
    await publish(api)
    await publish(api, "drafty", publish=False)
    before = await snapshot(store)
    r = await api.post("/api/v1/tasks", json=body)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    assert await snapshot(store) == before


async def test_bad_batch_is_all_or_nothing(api: httpx.AsyncClient, store: Store) -> None:
    await publish(api)
    before = await snapshot(store)
    r = await api.post("/api/v1/tasks/batch", json={"tasks": [{"agent": "a"},
                                                              {"agent": "a", "priority": 99}]})
    assert r.status_code == 422 and "tasks[1].priority" in r.text
    assert await snapshot(store) == before


async def test_bad_worker_calls(api: httpx.AsyncClient) -> None:
    assert_error(await api.post("/api/v1/tasks/claim", json={"worker_id": ""}), 422)
    assert_error(await api.post("/api/v1/tasks/claim", json={"worker_id": "w", "limit": 0}),
                 422)
    assert_error(await api.post("/api/v1/tasks/nope/heartbeat", json={"attempt": 1}), 404)
    assert_error(await api.post("/api/v1/tasks/nope/fail", json={
        "attempt": 1, "error": {"type": "x"}, "outcome": "succeeded"}), 400)
    assert_error(await api.get("/api/v1/tasks", params={"status": "bogus"}), 422)


async def test_workers_endpoint(api: httpx.AsyncClient, store: Store) -> None:
    from agentos.worker import instances

    await instances.register(store, "remote-9", None, 2)
    [w] = (await api.get("/api/v1/workers")).json()["workers"]
    assert w["id"] == "remote-9" and w["alive"] and w["agents"] is None


async def test_remote_workers_are_listed_by_their_claims(api: httpx.AsyncClient) -> None:
    await publish(api)
    empty = await api.post("/api/v1/tasks/claim", json={"worker_id": "far-1", "agents": ["a"]})
    assert empty.json()["tasks"] == []
    [w] = (await api.get("/api/v1/workers")).json()["workers"]
    assert (w["id"], w["agents"], w["status"], w["running"], w["alive"]) == (
        "far-1", ["a"], "idle", 0, True)
    task_id = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()["id"]
    [task] = (await api.post("/api/v1/tasks/claim", json={"worker_id": "far-1"})).json()["tasks"]
    [w] = (await api.get("/api/v1/workers")).json()["workers"]
    assert (w["agents"], w["status"], w["running"]) == (None, "busy", 1)
    before = w["last_heartbeat_at"]
    await api.post(f"/api/v1/tasks/{task_id}/heartbeat", json={"attempt": task["attempt"]})
    [w] = (await api.get("/api/v1/workers")).json()["workers"]
    assert w["last_heartbeat_at"] > before and w["started_at"] <= before


async def test_a_busy_remote_worker_is_counted_where_its_presence_is_not_rewritten(
        api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server writes a remote worker's presence at most every ``PRESENCE_EVERY``
    seconds while it serves the same agents from the same host (a busy worker claims
    many times a second); its running tasks and busy or idle are counted when the
    workers are read, so they are exact between writes."""
    from agentos.worker import instances

    await publish(api)
    monkeypatch.setattr(instances, "PRESENCE_EVERY", 3600.0)
    claim = {"worker_id": "far-2", "agents": ["a"]}
    assert (await api.post("/api/v1/tasks/claim", json=claim)).json()["tasks"] == []
    [first] = (await api.get("/api/v1/workers")).json()["workers"]
    assert (first["status"], first["running"]) == ("idle", 0)
    for n in range(2):
        await api.post("/api/v1/tasks", json={"agent": "a", "input": {"n": n}})
    got = (await api.post("/api/v1/tasks/claim", json={**claim, "limit": 2})).json()["tasks"]
    [w] = (await api.get("/api/v1/workers")).json()["workers"]
    assert (w["status"], w["running"], w["last_heartbeat_at"]) == (
        "busy", 2, first["last_heartbeat_at"])  # counted; the row not written again
    one = (await api.get("/api/v1/workers/far-2")).json()
    assert (one["status"], one["running"]) == ("busy", 2)
    done = [{"id": t["id"], "attempt": t["attempt"]} for t in got]
    await api.post("/api/v1/tasks/claim", json={**claim, "limit": 0, "completed": done})
    [w] = (await api.get("/api/v1/workers")).json()["workers"]
    one = (await api.get("/api/v1/workers/far-2")).json()
    assert (w["status"], w["running"], one["status"], one["running"]) == ("idle", 0, "idle", 0)
    monkeypatch.setattr(instances, "PRESENCE_EVERY", 0.0)  # due: written again
    await api.post("/api/v1/tasks/claim", json=claim)
    [w] = (await api.get("/api/v1/workers")).json()["workers"]
    assert w["last_heartbeat_at"] > first["last_heartbeat_at"]


async def test_what_a_server_remembers_of_remote_workers_is_bounded(
        api: httpx.AsyncClient, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claimer sending a new worker id each time cannot grow the server's memory of
    the presence it wrote: past ``REMEMBERED`` ids it forgets them all (at worst a write
    a claim), and every worker is still listed."""
    from agentos.worker import instances

    monkeypatch.setattr(instances, "REMEMBERED", 3)
    for n in range(7):
        await api.post("/api/v1/tasks/claim", json={"worker_id": f"many-{n}"})
        assert len(instances._WRITTEN[store]) <= 3
    listed = (await api.get("/api/v1/workers")).json()["workers"]
    assert sorted(w["id"] for w in listed) == [f"many-{n}" for n in range(7)]


async def test_workers_page_with_remote_ones_counted(api: httpx.AsyncClient,
                                                    store: Store) -> None:
    """Pages of workers, in-process and remote mixed, each remote one's running tasks
    counted (the count is one grouped read joined to the page)."""
    from agentos.worker import instances

    await publish(api)
    for n in range(3):
        await instances.register(store, f"local-{n}", None, 4)
    for n in range(2):
        await api.post("/api/v1/tasks", json={"agent": "a", "input": {"n": n}})
    await api.post("/api/v1/tasks/claim", json={"worker_id": "remote-0", "limit": 2})
    await api.post("/api/v1/tasks/claim", json={"worker_id": "remote-1"})  # none left
    pages, after = [], None
    while True:
        page = (await api.get("/api/v1/workers", params={"limit": 2, **(
            {"after": after} if after else {})})).json()
        pages.append([(w["id"], w["status"], w["running"]) for w in page["workers"]])
        after = page["next_after"]
        if after is None:
            break
    assert pages == [[("local-0", "idle", 0), ("local-1", "idle", 0)],
                     [("local-2", "idle", 0), ("remote-0", "busy", 2)],
                     [("remote-1", "idle", 0)]], pages


async def test_fail_as_cancelled_needs_a_cancel_request(api: httpx.AsyncClient,
                                                        store: Store) -> None:
    await publish(api)
    task_id = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()["id"]
    await api.post("/api/v1/tasks/claim", json={"worker_id": "w"})
    def written(tables: dict[str, Any]) -> dict[str, Any]:  # the router drains route_queue
        return {name: rows for name, rows in tables.items() if name != "route_queue"}

    before = written(await snapshot(store))
    body = {"attempt": 1, "error": {"type": "cancelled"}, "outcome": "cancelled"}
    assert_error(await api.post(f"/api/v1/tasks/{task_id}/fail", json=body), 409,
                 "cancel_not_requested")
    assert written(await snapshot(store)) == before
    await api.post(f"/api/v1/tasks/{task_id}/cancel")
    done = await api.post(f"/api/v1/tasks/{task_id}/fail", json={**body, "tokens": {"total": 3}})
    assert done.json()["status"] == "cancelled"
    [attempt] = (await api.get(f"/api/v1/tasks/{task_id}")).json()["attempts"]
    assert (attempt["outcome"], attempt["tokens"]) == ("cancelled", {"total": 3})


async def test_a_window_of_created_time_pages_like_the_whole_list(api: httpx.AsyncClient
                                                                  ) -> None:
    await publish(api)

    async def batch(ns: range) -> list[dict[str, Any]]:
        r = await api.post("/api/v1/tasks/batch", json={"tasks": [
            {"agent": "a", "input": {"n": n}} for n in ns]})
        assert r.status_code == 201, r.text
        return list(r.json()["tasks"])

    early = await batch(range(4))
    await asyncio.sleep(0.05)
    late = await batch(range(4, 9))
    boundary = late[0]["created_at"]
    assert max(t["created_at"] for t in early) < boundary

    async def walk(params: dict[str, Any]) -> list[int]:
        seen: list[int] = []
        query = {"order": "desc", "limit": 2, **params}
        while True:
            page = (await api.get("/api/v1/tasks", params=query)).json()
            seen += [t["input"]["n"] for t in page["tasks"]]
            if page["next_before_seq"] is None:
                return seen
            query["before_seq"] = page["next_before_seq"]

    # since is inclusive, until exclusive: the two windows split the list at the boundary
    assert await walk({"since": boundary}) == [8, 7, 6, 5, 4]
    assert await walk({"until": boundary}) == [3, 2, 1, 0]
    assert await walk({"since": early[0]["created_at"], "until": boundary,
                       "agent": "a", "status": "pending"}) == [3, 2, 1, 0]
    oldest_first = (await api.get("/api/v1/tasks", params={"since": boundary, "limit": 3})).json()
    assert [t["input"]["n"] for t in oldest_first["tasks"]] == [4, 5, 6]
    for bad in ({"since": "yesterday"}, {"until": "2026-01-01T00:00:00"}):  # no time zone
        assert_error(await api.get("/api/v1/tasks", params=bad), 422)
