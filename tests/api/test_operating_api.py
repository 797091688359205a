"""Operating agents over HTTP: live config (typed, bounded, audited with old and new),
capability switches, an agent's and a worker's live state, deleting an agent; roles,
and bad input refused with 4xx writing nothing. Both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import func, select

from agentos import queue
from agentos.store import Store
from agentos.store.tables import agent_versions, audit_log, events, metric_series
from agentos.tasks import TaskIn
from agentos.worker.loop import Worker
from tests.snapshot import snapshot

DEFINITION: dict[str, Any] = {
    "name": "tuner", "version": "1.0.0",
    "handler": {"type": "python", "target": "tests.handlers:config_echo"},
    "capabilities": [{"name": "search"}, {"name": "write", "enabled": False}],
    "triggers": [{"event": "doc.new", "capability": "search"}],
    "config": {
        "threshold": {"type": "float", "value": 0.5, "min": 0, "max": 1},
        "retries": {"type": "integer", "value": 3, "min": 0, "max": 10},
        "mode": {"type": "string", "value": "fast", "choices": ["fast", "careful"]},
        "verbose": {"type": "boolean", "value": False},
        "extra": {"type": "json", "value": {"a": 1}},
    },
}


async def publish(api: httpx.AsyncClient, definition: dict[str, Any] = DEFINITION) -> None:
    r = await api.post("/api/v1/agents", json=definition)
    assert r.status_code == 201, r.text
    r = await api.post(f"/api/v1/agents/{definition['name']}/versions/"
                       f"{definition['version']}/publish")
    assert r.status_code == 200, r.text


async def audit_rows(store: Store, action: str) -> list[Any]:
    async with store.read() as conn:
        return list((await conn.execute(select(audit_log).where(
            audit_log.c.action == action, audit_log.c.outcome == "ok")
            .order_by(audit_log.c.seq))).all())


async def events_of(store: Store, type: str) -> list[Any]:
    async with store.read() as conn:
        return list((await conn.execute(select(events).where(events.c.type == type)
                                        .order_by(events.c.seq))).all())


async def test_config_set_read_clear_audited_with_old_and_new(
        api: httpx.AsyncClient, store: Store,
        as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    await publish(api)
    config = (await api.get("/api/v1/agents/tuner/config")).json()
    assert config["version"] == "1.0.0"
    by_key = {e["key"]: e for e in config["config"]}
    assert by_key["threshold"]["value"] == 0.5 and not by_key["threshold"]["overridden"]
    assert by_key["mode"]["choices"] == ["fast", "careful"]
    operator = await as_role("operator")
    r = await operator.put("/api/v1/agents/tuner/config/threshold", json={"value": 0.9})
    assert r.status_code == 200, r.text
    assert r.json()["value"] == 0.9 and r.json()["overridden"]
    assert r.json()["override"]["updated_by"].startswith("user:operator")
    await operator.put("/api/v1/agents/tuner/config/extra", json={"value": [1, {"b": None}]})
    await operator.put("/api/v1/agents/tuner/config/verbose", json={"value": True})
    values = {e["key"]: e["value"] for e in
              (await api.get("/api/v1/agents/tuner/config")).json()["config"]}
    assert values == {"threshold": 0.9, "retries": 3, "mode": "fast", "verbose": True,
                      "extra": [1, {"b": None}]}
    r = await operator.delete("/api/v1/agents/tuner/config/threshold")
    assert r.status_code == 200 and r.json()["value"] == 0.5 and not r.json()["overridden"]
    viewer = await as_role("viewer")
    assert (await viewer.get("/api/v1/agents/tuner/config")).status_code == 200
    assert (await viewer.put("/api/v1/agents/tuner/config/threshold",
                             json={"value": 0.1})).status_code == 403
    rows = await audit_rows(store, "agents.config_set")
    assert [r.resource_id for r in rows] == ["tuner/threshold", "tuner/extra", "tuner/verbose"]
    assert rows[0].details["change"] == {"key": "threshold", "old": 0.5, "new": 0.9,
                                         "overridden_before": False, "overridden": True}
    [unset] = await audit_rows(store, "agents.config_unset")
    assert unset.details["change"]["old"] == 0.9 and unset.details["change"]["new"] == 0.5
    changes = await events_of(store, "agent.config_changed")
    assert [(e.payload["key"], e.payload["new"]) for e in changes] == [
        ("threshold", 0.9), ("extra", [1, {"b": None}]), ("verbose", True), ("threshold", 0.5)]


async def test_handlers_read_the_live_value(api: httpx.AsyncClient, store: Store) -> None:
    await publish(api)

    async def run_one() -> dict[str, Any]:
        [(task, _)] = await queue.submit(store, [TaskIn(agent="tuner")])
        await Worker(store, burst=True, poll_interval=0.05).run()
        return dict((await queue.get(store, task.id)).to_dict()["output"]["config"])

    assert (await run_one())["retries"] == 3
    await api.put("/api/v1/agents/tuner/config/retries", json={"value": 7})
    assert (await run_one())["retries"] == 7  # no restart, no new version
    await api.delete("/api/v1/agents/tuner/config/retries")
    assert (await run_one())["retries"] == 3


async def test_bad_config_input_is_4xx_and_writes_nothing(api: httpx.AsyncClient,
                                                         store: Store) -> None:
    await publish(api)
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    cases = [
        ("threshold", {"value": "high"}, 422, "bad_config_value"),  # wrong type
        ("threshold", {"value": 1.5}, 422, "bad_config_value"),  # above max
        ("threshold", {"value": -0.1}, 422, "bad_config_value"),  # below min
        ("retries", {"value": 2.5}, 422, "bad_config_value"),  # a float for an integer
        ("retries", {"value": True}, 422, "bad_config_value"),  # true is not 1
        ("mode", {"value": "slow"}, 422, "bad_config_value"),  # not a choice
        ("verbose", {"value": "yes"}, 422, None),  # a string for a boolean
        ("nope", {"value": 1}, 404, "config_key_not_found"),  # unknown key
        ("threshold", {}, 422, None),  # no value at all
        ("threshold", {"value": 0.2, "extra": 1}, 422, None),  # unknown field
    ]
    for key, body, status, code in cases:
        r = await api.put(f"/api/v1/agents/tuner/config/{key}", json=body)
        assert r.status_code == status, (key, body, r.text)
        assert "error" in r.json()
        if code:
            assert r.json()["error"]["code"] == code, r.text
    r = await api.put("/api/v1/agents/ghost/config/x", json={"value": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "agent_not_found"
    assert (await api.delete("/api/v1/agents/tuner/config/nope")).status_code == 404
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before


async def test_capability_switches_stop_and_resume_routing(
        api: httpx.AsyncClient, store: Store,
        as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    from agentos import router

    await publish(api)
    caps = {c["name"]: c for c in (await api.get("/api/v1/agents/tuner/capabilities")
                                   ).json()["capabilities"]}
    assert caps["search"]["enabled"] and not caps["write"]["enabled"]
    operator = await as_role("operator")
    r = await operator.post("/api/v1/agents/tuner/capabilities/search/disable",
                            json={"reason": "index rebuild"})
    assert r.status_code == 200, r.text
    search = next(c for c in r.json()["capabilities"] if c["name"] == "search")
    assert not search["enabled"] and search["switch"]["reason"] == "index rebuild"
    state = (await api.get("/api/v1/agents/tuner/state")).json()
    assert [(h["reason"], h["ref"]) for h in state["held"]] == [("capability", "search")]
    async def routed(event_id: str) -> list[dict[str, Any]]:
        """The event's routes once the router (this test's or the server's) took it."""
        for _ in range(200):
            await router.route_batch(store)
            found = (await api.get(f"/api/v1/events/{event_id}/routes")).json()
            if found["routed"]:
                return list(found["routes"])
            await asyncio.sleep(0.05)
        raise AssertionError(f"event {event_id} was not routed within 10 s")

    # an event for the trigger that needs it is not routed to the agent: its route says why
    first = (await api.post("/api/v1/events", json={"type": "doc.new"})).json()
    [skipped] = await routed(first["id"])
    assert (skipped["agent"], skipped["trigger_index"], skipped["task_id"],
            skipped["skipped"]) == ("tuner", 0, None, "capability 'search' is disabled")
    r = await operator.post("/api/v1/agents/tuner/capabilities/search/enable", json={})
    assert r.status_code == 200
    assert (await api.get("/api/v1/agents/tuner/state")).json()["held"] == []
    second = (await api.post("/api/v1/events", json={"type": "doc.new"})).json()
    [fired] = await routed(second["id"])
    assert fired["agent"] == "tuner" and fired["task_id"] and fired["skipped"] is None
    # a capability disabled in the definition is switched on live too
    await operator.post("/api/v1/agents/tuner/capabilities/write/enable")
    assert all(c["enabled"] for c in (await api.get("/api/v1/agents/tuner/capabilities")
                                      ).json()["capabilities"])
    disabled = await audit_rows(store, "agents.capability_disable")
    assert disabled[0].resource_id == "tuner/search"
    assert disabled[0].details["change"]["reason"] == "index rebuild"
    assert [e.payload["capability"] for e in await events_of(
        store, "agent.capability_enabled")] == ["search", "write"]


async def test_bad_capability_input_is_4xx_and_writes_nothing(api: httpx.AsyncClient,
                                                             store: Store) -> None:
    await publish(api)
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    for path, body, status, code in [
        ("tuner/capabilities/teleport/disable", {"reason": "x"}, 404, "capability_not_found"),
        ("tuner/capabilities/search/disable", {}, 400, "reason_required"),
        ("tuner/capabilities/search/disable", {"reason": "   "}, 400, "reason_required"),
        ("tuner/capabilities/search/disable", {"reason": "x" * 501}, 422, None),
        ("ghost/capabilities/search/disable", {"reason": "x"}, 404, "agent_not_found"),
    ]:
        r = await api.post(f"/api/v1/agents/{path}", json=body)
        assert r.status_code == status, (path, r.text)
        if code:
            assert r.json()["error"]["code"] == code
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before


async def test_agent_and_worker_state(api: httpx.AsyncClient, store: Store) -> None:
    await publish(api, {**DEFINITION, "handler": {"type": "python",
                                                  "target": "tests.handlers:slow"}})
    state = (await api.get("/api/v1/agents/tuner/state")).json()
    assert state["status"] == "idle" and state["queue_depth"] == 0
    await queue.submit(store, [TaskIn(agent="tuner", input={"seconds": 30}) for _ in range(3)])
    state = (await api.get("/api/v1/agents/tuner/state")).json()
    assert state["status"] == "waiting" and state["queue_depth"] == 3
    worker = Worker(store, concurrency=2, poll_interval=0.05)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            state = (await api.get("/api/v1/agents/tuner/state")).json()
            if state["running"] == 2:
                break
            await asyncio.sleep(0.05)
        assert state["status"] == "busy" and state["queue_depth"] == 1
        assert {t["worker_id"] for t in state["running_tasks"]} == {worker.id}
        assert state["last_heartbeat_at"] is not None
        assert [w["id"] for w in state["workers"]] == [worker.id]
        one = (await api.get(f"/api/v1/workers/{worker.id}")).json()
        assert one["alive"] and one["running"] == 2 and one["concurrency"] == 2
        assert len(one["running_tasks"]) == 2
    finally:
        worker.stop()
        worker.grace = 0.1
        await running
    r = await api.get("/api/v1/workers/no-such-worker")
    assert r.status_code == 404 and r.json()["error"]["code"] == "worker_not_found"
    assert (await api.get("/api/v1/agents/ghost/state")).status_code == 404


async def test_delete_agent_cascades_and_keeps_history(
        api: httpx.AsyncClient, store: Store,
        as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    await publish(api, {**DEFINITION, "handler": {"type": "python",
                                                  "target": "tests.handlers:slow"}})
    await api.put("/api/v1/agents/tuner/config/retries", json={"value": 5})
    await api.post("/api/v1/agents/tuner/capabilities/search/disable", json={"reason": "x"})
    budget = (await api.post("/api/v1/budgets", json={
        "scope": "agent", "target": "tuner", "metric": "tokens", "period": "day",
        "limit": 100})).json()
    async with store.write() as conn:
        await conn.execute(metric_series.insert().values(
            name="tasks.succeeded", kind="counter", tags={"agent": "tuner"},
            tags_key="agent=tuner", agent="tuner"))
    [(task, _)] = await queue.submit(store, [TaskIn(agent="tuner", input={"seconds": 30})])
    async with store.write() as conn:  # as a worker's claim leaves it
        from agentos.store.tables import tasks

        await conn.execute(tasks.update().where(tasks.c.id == task.id).values(
            status="running", worker_id="w-1", attempt=1))
    operator = await as_role("operator")
    assert (await operator.delete("/api/v1/agents/tuner")).status_code == 403
    r = await api.delete("/api/v1/agents/tuner")
    assert r.status_code == 409 and r.json()["error"]["code"] == "agent_busy"
    assert (await api.get("/api/v1/agents/tuner")).status_code == 200  # nothing removed
    r = await api.delete("/api/v1/agents/tuner", params={"force": "true"})
    assert r.status_code == 200, r.text
    assert r.json() == {"agent": "tuner", "cancelled_tasks": 1, "versions": 1, "config": 1,
                        "capabilities": 1, "holds": 1, "metric_series": 1, "budgets": 1}
    assert (await api.get(f"/api/v1/budgets/{budget['id']}")).status_code == 404
    assert (await queue.get(store, task.id)).to_dict()["cancel_requested"]
    assert (await api.get("/api/v1/agents/tuner")).status_code == 404
    assert (await api.get("/api/v1/agents/tuner/config")).status_code == 404
    # the agent's rows only: the server's own series (http.requests...) may have been
    # flushed meanwhile
    for column in (agent_versions.c.name, metric_series.c.agent):
        async with store.read() as conn:
            assert (await conn.execute(select(func.count()).where(column == "tuner"))
                    ).scalar() == 0
    # the logs are never rewritten: old events and audit rows still read
    assert [e.payload["key"] for e in await events_of(store, "agent.config_changed")] == [
        "retries"]
    [deleted] = await events_of(store, "agent.deleted")
    assert deleted.payload["force"] and deleted.subject == "tuner"
    assert len(await audit_rows(store, "agents.config_set")) == 1
    [row] = await audit_rows(store, "agents.delete_agent")
    assert row.resource_id == "tuner" and row.details["query"] == {"force": "true"}
    verdict = (await api.get("/api/v1/audit/verify")).json()
    assert verdict["intact"]
    assert (await api.delete("/api/v1/agents/tuner")).status_code == 404


async def test_a_task_needing_a_disabled_capability_waits(api: httpx.AsyncClient,
                                                          store: Store) -> None:
    from agentos import router

    await publish(api)
    r = await api.post("/api/v1/tasks", json={"agent": "tuner", "capability": "search"})
    assert r.status_code == 201 and r.json()["capability"] == "search"
    needs, free = r.json()["id"], (await api.post("/api/v1/tasks", json={"agent": "tuner"})
                                   ).json()["id"]
    await api.post("/api/v1/agents/tuner/capabilities/search/disable", json={"reason": "x"})
    await Worker(store, burst=True, poll_interval=0.05).run()
    statuses = {i: (await api.get(f"/api/v1/tasks/{i}")).json()["status"] for i in (needs, free)}
    assert statuses == {needs: "pending", free: "succeeded"}  # only the one that needs it
    why = (await api.get(f"/api/v1/tasks/{needs}/explain")).json()  # and it says why
    assert why["gate"] == "capability", why
    assert "it needs capability search of agent tuner, switched off" in why["summary"]
    assert "(x)" in why["summary"]  # the reason given when it was disabled
    await api.post("/api/v1/agents/tuner/capabilities/search/enable", json={})
    await Worker(store, burst=True, poll_interval=0.05).run()
    assert (await api.get(f"/api/v1/tasks/{needs}")).json()["status"] == "succeeded"
    # a routed task needs its trigger's capability
    event = (await api.post("/api/v1/events", json={"type": "doc.new"})).json()
    for _ in range(200):
        await router.route_batch(store)
        routes = (await api.get(f"/api/v1/events/{event['id']}/routes")).json()
        if routes["routed"]:
            break
        await asyncio.sleep(0.05)
    [route] = routes["routes"]
    assert (await api.get(f"/api/v1/tasks/{route['task_id']}")).json()["capability"] == "search"
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    for body in ({"agent": "tuner", "capability": "teleport"},
                 {"agent": "tuner", "capability": "Not A Name"}):
        r = await api.post("/api/v1/tasks", json=body)
        assert r.status_code in (400, 422), r.text
    r = await api.post("/api/v1/tasks", json={"agent": "tuner", "capability": "teleport"})
    assert r.json()["error"]["code"] == "unknown_capability"
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before
