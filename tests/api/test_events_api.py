"""The event system over HTTP: append, query, routes, subscriptions, schedules, bad input."""

import asyncio
from typing import Any

import httpx
import pytest

from agentos import server
from agentos.config import Settings
from agentos.store import Store
from tests.api.test_agents_api import assert_error
from tests.conftest import ADMIN_PASSWORD, client_for, login
from tests.snapshot import snapshot


async def routed(api: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    """The event's routes, once the server's router has handled it."""
    for _ in range(200):
        r: dict[str, Any] = (await api.get(f"/api/v1/events/{event_id}/routes")).json()
        if r["routed"]:
            return r
        await asyncio.sleep(0.02)
    raise AssertionError(f"event {event_id} was not routed")


async def test_emit_one_and_a_batch(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/events", json={"type": "alert.cpu", "payload": {"v": 1}})
    assert r.status_code == 201 and r.json()["seq"] == 1 and r.json()["duplicate"] is False
    r = await api.post("/api/v1/events", json={"events": [{"type": "a.b"}, {"type": "a.c"}]})
    assert r.status_code == 201
    assert [e["seq"] for e in r.json()["events"]] == [2, 3]
    r = await api.get("/api/v1/events", params={"type": "a.*"})
    assert [e["type"] for e in r.json()["events"]] == ["a.b", "a.c"]
    first = (await api.get("/api/v1/events", params={"limit": 1})).json()
    assert first["next_after_seq"] == 1
    one = await api.get(f"/api/v1/events/{first['events'][0]['id']}")
    assert one.json()["payload"] == {"v": 1}


async def test_dedup_returns_the_first_event(api: httpx.AsyncClient) -> None:
    a = await api.post("/api/v1/events", json={"type": "x", "dedup_key": "k"})
    b = await api.post("/api/v1/events", json={"type": "x", "dedup_key": "k", "payload": {"z": 1}})
    assert a.status_code == 201 and b.status_code == 200
    assert b.json()["id"] == a.json()["id"] and b.json()["duplicate"] is True


async def test_correlation_tree(api: httpx.AsyncClient) -> None:
    root = (await api.post("/api/v1/events", json={"type": "plan_generated",
                                                   "correlation_id": "run-7"})).json()
    await api.post("/api/v1/events", json={"type": "plan_judged", "correlation_id": "run-7",
                                           "causation_id": root["id"]})
    r = await api.get("/api/v1/correlations/run-7")
    tree = r.json()["tree"]
    assert tree[0]["type"] == "plan_generated"
    assert tree[0]["children"][0]["type"] == "plan_judged"
    assert_error(await api.get("/api/v1/correlations/none"), 404)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"type": "x", "payload": [1, 2]}, 422, "validation_failed"),
    ({"type": "x", "payload": "text"}, 422, "validation_failed"),
    ({"type": ""}, 422, "validation_failed"),
    ({"type": "a..b"}, 422, "validation_failed"),
    ({"type": "has space"}, 422, "validation_failed"),
    ({"type": "x", "priority": "urgent"}, 422, "validation_failed"),
    ({"type": "x", "colour": "red"}, 422, "validation_failed"),
    ({"events": [{"type": "ok"}, {"type": "bad..one"}]}, 422, "validation_failed"),
    ({"events": "nope"}, 400, "bad_event"),
    ([{"type": "x"}], 400, "bad_event"),
    ({"type": "x", "payload": {"blob": "y" * (1024 * 1024 + 10)}}, 413, "payload_too_large"),
])
async def test_bad_events_write_nothing(api: httpx.AsyncClient, store: Store, body: Any,
                                        status: int, code: str) -> None:
    seed = (await api.post("/api/v1/events", json={"type": "seed"})).json()
    await routed(api, seed["id"])  # the server's router has nothing left to change
    before = await snapshot(store)
    assert_error(await api.post("/api/v1/events", json=body), status, code)
    assert await snapshot(store) == before


@pytest.mark.parametrize(("content", "code"), [
    (b'{"type": "x", ', "malformed_json"),
    (b"", "malformed_json"),
    (b'{"events": [' + b",".join([b'{"type": "x"}'] * 10_001) + b"]}", "batch_too_large"),
])
async def test_unreadable_bodies_write_nothing(api: httpx.AsyncClient, store: Store,
                                               content: bytes, code: str) -> None:
    before = await snapshot(store)
    assert_error(await api.post("/api/v1/events", content=content,
                                headers={"content-type": "application/json"}), 400, code)
    assert await snapshot(store) == before


@pytest.mark.parametrize("params", [{"type": "a..b"}, {"priority": "urgent"},
                                    {"after_seq": -1}, {"limit": 0}, {"since": "yesterday"},
                                    {"type": "'; DROP TABLE events; --"},
                                    {"order": "newest"}, {"order": "desc", "before_seq": 0},
                                    {"before_seq": 5}])
async def test_bad_queries(api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    r = await api.get("/api/v1/events", params=params)
    assert 400 <= r.status_code < 500 and set(r.json()) == {"error"}


async def test_newest_first_pages_down_without_gaps_or_repeats(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/events", json={"events": [
        {"type": "page.a" if n % 3 else "page.b", "payload": {"n": n}} for n in range(10)]})
    assert r.status_code == 201
    seen: list[int] = []
    params: dict[str, Any] = {"order": "desc", "limit": 4, "type": "page.*"}
    while True:
        page = (await api.get("/api/v1/events", params=params)).json()
        assert page.get("next_after_seq") is None
        seen += [e["payload"]["n"] for e in page["events"]]
        if page["next_before_seq"] is None:
            break
        params["before_seq"] = page["next_before_seq"]
    assert seen == list(range(9, -1, -1))
    only_b = (await api.get("/api/v1/events", params={"order": "desc", "type": "page.b"})).json()
    assert [e["payload"]["n"] for e in only_b["events"]] == [9, 6, 3, 0]


async def test_stream_rejects_bad_input(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/api/v1/events/stream", params={"type": "a..b"}), 400)
    assert_error(await api.get("/api/v1/events/stream", headers={"Last-Event-ID": "x"}), 400)


async def test_events_are_routed_by_the_servers_router(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/agents", json={
        "name": "qa", "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
        "triggers": [{"event": "alert.*", "filter": {"severity": ["high"]}, "priority": 8}]})
    await api.post("/api/v1/agents/qa/versions/1.0.0/publish")
    e = (await api.post("/api/v1/events", json={"type": "alert.cpu",
                                                "payload": {"severity": "high"}})).json()
    r = await routed(api, e["id"])
    assert r["routes"] == [{**r["routes"][0], "agent": "qa", "priority": 8, "trigger_index": 0}]


async def test_durable_subscription_rereads_until_acked(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/subscriptions", json={"name": "audit-feed", "type": "qa.*"})
    assert r.status_code == 201 and r.json()["cursor_seq"] == 0
    assert_error(await api.post("/api/v1/subscriptions",
                                json={"name": "audit-feed", "type": "qa.*"}), 409)
    await api.post("/api/v1/events", json={"events": [
        {"type": "qa.a"}, {"type": "other"}, {"type": "qa.b"}, {"type": "qa.c"}]})
    page = (await api.get("/api/v1/subscriptions/audit-feed/events", params={"limit": 2})).json()
    assert [e["type"] for e in page["events"]] == ["qa.a", "qa.b"]
    # a consumer that crashed before acking reads the same events again
    again = (await api.get("/api/v1/subscriptions/audit-feed/events")).json()
    assert [e["type"] for e in again["events"]] == ["qa.a", "qa.b", "qa.c"]
    r = await api.post("/api/v1/subscriptions/audit-feed/ack",
                       json={"seq": page["events"][-1]["seq"]})
    assert r.json()["cursor_seq"] == 3
    rest = (await api.get("/api/v1/subscriptions/audit-feed/events")).json()
    assert [e["type"] for e in rest["events"]] == ["qa.c"]
    # acking backwards never moves the cursor back
    assert (await api.post("/api/v1/subscriptions/audit-feed/ack",
                           json={"seq": 1})).json()["cursor_seq"] == 3
    assert_error(await api.post("/api/v1/subscriptions/audit-feed/ack", json={"seq": 99}), 400)
    assert_error(await api.post("/api/v1/subscriptions/audit-feed/ack", json={"seq": -1}), 422)
    listed = (await api.get("/api/v1/subscriptions")).json()["subscriptions"]
    assert listed[0]["name"] == "audit-feed" and listed[0]["head_seq"] == 4
    assert (await api.delete("/api/v1/subscriptions/audit-feed")).status_code == 204
    assert_error(await api.get("/api/v1/subscriptions/audit-feed/events"), 404)


async def test_a_durable_read_can_wait_for_the_next_event(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/subscriptions", json={"name": "waiter", "type": "w.*"})
    path = "/api/v1/subscriptions/waiter/events"
    began = asyncio.get_running_loop().time()
    assert (await api.get(path, params={"wait_s": 0.3})).json() == {"events": []}
    assert asyncio.get_running_loop().time() - began >= 0.3
    reader = asyncio.create_task(api.get(path, params={"wait_s": 10}))
    await asyncio.sleep(0.1)
    await api.post("/api/v1/events", json={"events": [{"type": "x.noise"}, {"type": "w.one"}]})
    r = await asyncio.wait_for(reader, 5)  # a commit wakes it, long before wait_s
    assert [e["type"] for e in r.json()["events"]] == ["w.one"]
    for bad in (-1, 61, "soon"):
        assert_error(await api.get(path, params={"wait_s": bad}), 422)


@pytest.mark.parametrize("body", [
    {"name": "Bad Name", "type": "x"}, {"name": "ok", "type": "a..b"},
    {"name": "ok", "type": "x", "extra": 1}])
async def test_bad_subscriptions(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    r = await api.post("/api/v1/subscriptions", json=body)
    assert 400 <= r.status_code < 500
    assert (await api.get("/api/v1/subscriptions")).json()["subscriptions"] == []


async def test_schedules_crud(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/schedules", json={
        "name": "nightly", "cron": "0 2 * * *", "timezone": "Europe/Paris",
        "event": {"type": "qa.nightly", "payload": {"suite": "smoke"}}})
    assert r.status_code == 201 and r.json()["next_run_at"]
    assert (await api.post("/api/v1/schedules/nightly/pause")).json()["paused"] is True
    assert (await api.post("/api/v1/schedules/nightly/resume")).json()["paused"] is False
    r = await api.patch("/api/v1/schedules/nightly", json={"interval_s": 60})
    assert r.json()["kind"] == "interval" and r.json()["cron"] is None
    assert [s["name"] for s in (await api.get("/api/v1/schedules")).json()["schedules"]] == [
        "nightly"]
    assert (await api.delete("/api/v1/schedules/nightly")).status_code == 204
    assert_error(await api.get("/api/v1/schedules/nightly"), 404)


@pytest.mark.parametrize("body", [
    {"name": "s", "cron": "61 * * * *", "event": {"type": "x"}},
    {"name": "s", "cron": "* * * * *", "timezone": "Mars/Base", "event": {"type": "x"}},
    {"name": "s", "interval_s": 0, "event": {"type": "x"}},
    {"name": "s", "interval_s": -1, "event": {"type": "x"}},
    {"name": "s", "event": {"type": "x"}},
    {"name": "s", "interval_s": 5, "event": {"type": "bad..type"}},
    {"name": "s", "interval_s": 5, "event": {"type": "x", "priority": "urgent"}},
    {"name": "s", "interval_s": 5, "event": {"type": "x", "payload": [1]}},
    {"name": "Bad Name", "interval_s": 5, "event": {"type": "x"}},
    {"name": "s", "at": "2026-01-01T00:00:00", "event": {"type": "x"}},
    {"name": "s", "interval_s": 5},  # fires nothing
    {"name": "s", "interval_s": 5, "task": {"agent": "a", "priority": 11}},
    {"name": "s", "interval_s": 5, "task": {"agent": "a", "input": "text"}},
    {"name": "s", "interval_s": 5, "task": {"agent": "a", "run_at": "2026-01-01T00:00:00Z"}},
    {"name": "s", "interval_s": 5, "task": {"input": {}}},
])
async def test_bad_schedules_write_nothing(api: httpx.AsyncClient, store: Store,
                                           body: dict[str, Any]) -> None:
    before = await snapshot(store)
    r = await api.post("/api/v1/schedules", json=body)
    assert r.status_code == 422, r.text
    assert set(r.json()) == {"error"}
    assert await snapshot(store) == before


async def test_schedules_submit_tasks(api: httpx.AsyncClient, store: Store) -> None:
    r = await api.post("/api/v1/agents", json={
        "name": "reporter", "version": "1.0.0",
        "handler": {"type": "python", "target": "m:f"}})
    assert r.status_code == 201, r.text
    r = await api.post("/api/v1/agents/reporter/versions/1.0.0/publish")
    assert r.status_code == 200, r.text
    r = await api.post("/api/v1/schedules", json={
        "name": "report", "interval_s": 3600,
        "task": {"agent": "reporter", "input": {"kind": "daily"}, "priority": 8}})
    assert r.status_code == 201, r.text
    got = (await api.get("/api/v1/schedules/report")).json()
    assert got["event"] is None and got["last_task_id"] is None and got["last_error"] is None
    assert got["task"] == {"agent": "reporter", "input": {"kind": "daily"}, "priority": 8}
    r = await api.patch("/api/v1/schedules/report", json={
        "event": {"type": "report.due"}, "task": {"agent": "reporter", "version": "1.0.0"}})
    assert r.json()["event"]["type"] == "report.due"
    assert r.json()["task"] == {"agent": "reporter", "version": "1.0.0", "input": {},
                                "priority": 5}
    # an agent that cannot run: 400, nothing written
    before = await snapshot(store)
    for method, path, body in [
        ("POST", "/api/v1/schedules", {"name": "ghostly", "interval_s": 60,
                                        "task": {"agent": "ghost"}}),
        ("PATCH", "/api/v1/schedules/report", {"task": {"agent": "reporter",
                                                         "version": "2.0.0"}}),
    ]:
        error = assert_error(await api.request(method, path, json=body), 400)
        assert error["code"] == "agent_not_runnable"
    assert_error(await api.patch("/api/v1/schedules/report",
                                 json={"event": None, "task": None}), 400)
    assert await snapshot(store) == before


async def test_prune_endpoint(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/events", json={"type": "old.x"})
    r = await api.post("/api/v1/events/prune", json={"older_than": "30d", "dry_run": True})
    assert r.json() == {"would_delete": 0, "kept": 0}
    assert_error(await api.post("/api/v1/events/prune", json={"older_than": "soon"}), 400)


async def test_a_lower_payload_cap_is_enforced_and_writes_nothing(
        monkeypatch: pytest.MonkeyPatch, database_url: str, store: Store) -> None:
    monkeypatch.setenv("AGENTOS_EVENT_MAX_PAYLOAD_BYTES", "1024")
    settings = Settings(database_url=database_url, admin_password=ADMIN_PASSWORD,  # type: ignore[call-arg]
                        _env_file=None)
    assert settings.event_max_payload_bytes == 1024
    app = server.create(settings, store)
    async with app.router.lifespan_context(app), client_for(app) as api:
        api.headers["Authorization"] = f"Bearer {await login(api, 'admin', ADMIN_PASSWORD)}"
        await api.post("/api/v1/schedules", json={"name": "s", "interval_s": 60,
                                                  "event": {"type": "s.tick"}})
        before = await snapshot(store)
        big = {"type": "x", "payload": {"blob": "y" * 1100}}  # 1,111 bytes of JSON
        for body in [big, {"events": [{"type": "fine"}, big]}]:
            error = assert_error(await api.post("/api/v1/events", json=body), 413,
                                 "payload_too_large")
            assert error["details"] == {"size": 1111, "max_bytes": 1024}
        # a schedule's event is held to the same cap
        assert_error(await api.post("/api/v1/schedules", json={
            "name": "big", "interval_s": 60, "event": big}), 413, "payload_too_large")
        assert_error(await api.patch("/api/v1/schedules/s", json={"event": big}), 413,
                     "payload_too_large")
        assert await snapshot(store) == before
        fits = {"type": "x", "payload": {"blob": "y" * 1000}}  # 1,011 bytes
        assert (await api.post("/api/v1/events", json=fits)).status_code == 201
