"""GET /api/v1/tasks/{id}/explain over HTTP, both backends: who cancelled a task, a
viewer may ask, an unknown task is 404, and a workflow run's explanation carries its
waiting task's gate."""

from collections.abc import Awaitable, Callable

import httpx
import pytest

from agentos.store import Store
from tests.api.test_agents_api import assert_error
from tests.api.test_tasks_api import publish
from tests.api.test_workflows_api import setup
from tests.snapshot import snapshot


async def test_unknown_task_is_404_and_writes_nothing(api: httpx.AsyncClient,
                                                      store: Store) -> None:
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    error = assert_error(await api.get("/api/v1/tasks/nope/explain"), 404, "task_not_found")
    assert error["details"] == {"task_id": "nope"}
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before


async def test_a_viewer_reads_why_and_who_cancelled(
        api: httpx.AsyncClient, as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    await publish(api)
    task = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()
    viewer = await as_role("viewer")
    r = await viewer.get(f"/api/v1/tasks/{task['id']}/explain")
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["gate"] == "no_worker" and found["status"] == "pending"
    assert [f["gate"] for f in found["findings"]] == ["no_worker", "queue"]
    operator = await as_role("operator")
    assert (await operator.post(f"/api/v1/tasks/{task['id']}/cancel")).status_code == 200
    found = (await viewer.get(f"/api/v1/tasks/{task['id']}/explain")).json()
    assert found["gate"] is None and found["status"] == "cancelled"
    assert found["summary"].startswith("cancelled before it ran by user:operator-")
    [ended] = found["findings"]
    assert ended["details"]["cancelled_by"]["action"] == "tasks.cancel"


async def test_a_run_explains_its_waiting_task(api: httpx.AsyncClient) -> None:
    await setup(api)
    run = (await api.post("/api/v1/workflow-runs", json={"workflow": "review",
                                                         "input": {"n": 2}})).json()
    explained = (await api.get(f"/api/v1/workflow-runs/{run['id']}/explain")).json()
    [waiting] = explained["waiting"]
    [task] = waiting["tasks"]
    assert task["explain"]["gate"] == "no_worker"
    assert "no live worker serves agent doubler" in explained["summary"]
    found = (await api.get(f"/api/v1/tasks/{task['task_id']}/explain")).json()
    assert found["workflow"]["run_id"] == run["id"] and found["workflow"]["step"] == "work"


PAGER = """
name: pager
version: 1.0.0
handler: {type: python, target: "tests.handlers:echo"}
capabilities: [{name: paging}]
triggers:
  - {event: "alert.*", filter: {severity: [high, critical]}, priority: 8,
     input: {device: "{payload.device_id}"}}
  - {event: "alert.*", capability: paging}
"""


async def test_router_explain_sees_live_switches_and_writes_nothing(
        api: httpx.AsyncClient, store: Store,
        as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    r = await api.post("/api/v1/agents/import?publish=true", content=PAGER,
                       headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    viewer = await as_role("viewer")
    event = {"type": "alert.cpu", "source": "monitor",
             "payload": {"severity": "low", "device_id": "pixel-7"}}
    before = await snapshot(store)
    r = await viewer.post("/api/v1/router/explain", json=event)
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["routed_to"] == ["pager"]
    [pager] = found["agents"]
    first, second = pager["triggers"]
    assert first["failed"] == "payload severity='low' is not one of ['high', 'critical']"
    assert second["matches"] and second["task"]["capability"] == "paging"
    assert await snapshot(store) == before  # not appended, not routed, not audited
    r = await api.post("/api/v1/agents/pager/capabilities/paging/disable",
                       json={"reason": "pager broken"})
    assert r.status_code == 200, r.text
    found = (await viewer.post("/api/v1/router/explain", json=event)).json()
    assert found["routed_to"] == [] and found["summary"] == "alert.cpu would route to no agent"
    assert found["agents"][0]["triggers"][1]["failed"] == "capability 'paging' is disabled"
    assert found["agents"][0]["capabilities"] == {"paging": False}
    high = {**event, "payload": {"severity": "high", "device_id": "pixel-7"}}
    found = (await viewer.post("/api/v1/router/explain", json=high)).json()
    assert found["agents"][0]["triggers"][0]["task"]["input"] == {"device": "pixel-7"}


@pytest.mark.parametrize("body, path", [
    ({"type": "alert..cpu"}, "type"),
    ({"type": "alert.cpu", "payload": [1, 2]}, "payload"),
    ({"type": "alert.cpu", "colour": "red"}, "colour"),
    ({"source": "monitor"}, "type"),
    ({"type": "alert.cpu", "priority": "urgent"}, "priority"),
])
async def test_router_explain_refuses_a_malformed_event(api: httpx.AsyncClient, store: Store,
                                                       body: dict[str, object],
                                                       path: str) -> None:
    before = await snapshot(store)
    r = await api.post("/api/v1/router/explain", json=body)
    error = assert_error(r, 422, "invalid_request")
    assert error["details"]["errors"][0]["path"] == path
    assert await snapshot(store) == before


async def test_router_explain_refuses_what_is_not_an_event(api: httpx.AsyncClient,
                                                          store: Store) -> None:
    before = await snapshot(store)
    assert_error(await api.post("/api/v1/router/explain", content=b"{not json",
                                headers={"Content-Type": "application/json"}),
                 400, "malformed_json")
    assert_error(await api.post("/api/v1/router/explain", json=[{"type": "a.b"}]), 422,
                 "invalid_request")
    assert await snapshot(store) == before
