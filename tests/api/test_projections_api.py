"""/api/v1/projections over HTTP: status, state, rebuild (202, then 409 while it runs),
unknown names, and the audit row of a rebuild. The app here runs no projection loop
(each test moves the projections itself); tests/acceptance/test_projections_cli.py
has a real server keep them live."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from agentos import consumers, events
from agentos.config import Settings
from agentos.events import EventIn
from agentos.store import Store
from agentos.store.tables import audit_log
from agentos.store.tables import consumers as consumers_table
from agentos.workflows.engine import CONSUMER as ENGINE_CURSOR


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"run_projections": False})


async def test_status_state_and_rebuild(app: FastAPI, api: httpx.AsyncClient,
                                        store: Store) -> None:
    await events.append(store, [EventIn(type=f"task.{kind}", source="queue",
                                        payload={"task_id": "t1", "agent": "echo"})
                                for kind in ("created", "started", "succeeded")])
    listed = (await api.get("/api/v1/projections")).json()["projections"]
    assert [p["name"] for p in listed] == ["agent_activity", "task_stats"]
    assert listed[0]["status"] == "catching_up" and listed[0]["lag_events"] == 3
    registry = app.state.projections
    for projection in registry.values():
        await consumers.catch_up(store, projection.consumer())
    one = (await api.get("/api/v1/projections/agent_activity")).json()
    assert (one["status"], one["cursor_seq"], one["lag_events"], one["types"]) == (
        "live", 3, 0, ["task.*"])
    state = (await api.get("/api/v1/projections/agent_activity/state")).json()
    assert state["items"]["echo"]["tasks"]["succeeded"] == 1
    assert state["items"]["echo"]["last_run"]["status"] == "succeeded"
    total = (await api.get("/api/v1/projections/task_stats/state",
                           params={"key": "total"})).json()
    assert total == {"items": {"total": {"created": 1, "started": 1, "succeeded": 1,
                                         "success_rate": 1.0}}, "next_after": None}
    hours = (await api.get("/api/v1/projections/task_stats/state",
                           params={"prefix": "hour:", "limit": 1})).json()
    assert len(hours["items"]) == 1 and hours["next_after"] is None

    r = await api.post("/api/v1/projections/agent_activity/rebuild")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "rebuilding" and r.json()["rebuild"]["target_seq"] == 3
    again = await api.post("/api/v1/projections/agent_activity/rebuild")
    assert again.status_code == 409 and again.json()["error"]["code"] == "rebuild_running"
    assert (await api.get("/api/v1/projections/agent_activity/state")).json()["items"] == {}
    await consumers.catch_up(store, registry["agent_activity"].consumer())
    assert (await api.get("/api/v1/projections/agent_activity/state")).json() == state
    async with store.read() as conn:
        audited = (await conn.execute(select(audit_log.c.action, audit_log.c.resource_id)
                                      .where(audit_log.c.resource_type == "projections")
                                      .where(audit_log.c.outcome == "ok"))).all()
    assert [tuple(r) for r in audited] == [("projections.rebuild", "agent_activity")]


async def test_unknown_names_and_bad_parameters(api: httpx.AsyncClient, store: Store) -> None:
    for method, path in (("GET", "/api/v1/projections/ghost"),
                         ("GET", "/api/v1/projections/ghost/state"),
                         ("POST", "/api/v1/projections/ghost/rebuild")):
        r = await api.request(method, path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "projection_not_found"
    r = await api.get("/api/v1/projections/task_stats/state", params={"limit": "0"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_limit"
    async with store.read() as conn:  # no projection's cursor (the workflow engine keeps its own)
        assert (await conn.execute(select(consumers_table.c.name).where(
            consumers_table.c.name != ENGINE_CURSOR))).all() == []
