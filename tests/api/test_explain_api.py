"""GET /api/v1/tasks/{id}/explain over HTTP, both backends: who cancelled a task, a
viewer may ask, an unknown task is 404, and a workflow run's explanation carries its
waiting task's gate."""

from collections.abc import Awaitable, Callable

import httpx

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
