"""Task logs over HTTP, both backends: a remote worker sends its lines with heartbeat,
complete and fail (numbered after the kept ones, bounded like a local worker's);
GET /api/v1/tasks/{id}/logs pages them; bad input is refused and writes nothing."""

from typing import Any

import httpx
import pytest

from agentos.config import Settings
from agentos.store import Store
from tests.api.test_agents_api import assert_error
from tests.api.test_tasks_api import publish
from tests.conftest import ADMIN_PASSWORD
from tests.snapshot import snapshot


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The suite's settings, with an attempt's log bounded at 4 lines."""
    return Settings(database_url=database_url, admin_password=ADMIN_PASSWORD,  # type: ignore[call-arg]
                    login_max_delay_s=0, task_log_max_lines=4, _env_file=None)


async def claimed(api: httpx.AsyncClient) -> str:
    await publish(api)
    task = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()
    r = await api.post("/api/v1/tasks/claim", json={"worker_id": "remote-1"})
    assert [t["id"] for t in r.json()["tasks"]] == [task["id"]]
    return str(task["id"])


def lines(page: dict[str, Any]) -> list[tuple[int, int, str, str]]:
    return [(x["attempt"], x["line"], x["level"], x["message"]) for x in page["lines"]]


async def test_a_remote_workers_lines(api: httpx.AsyncClient) -> None:
    task_id = await claimed(api)
    r = await api.post(f"/api/v1/tasks/{task_id}/heartbeat", json={"attempt": 1, "logs": [
        {"message": "one"}, {"level": "warning", "message": "two",
                             "at": "2026-12-04T10:00:00+01:00"}]})
    assert r.status_code == 200, r.text
    page = (await api.get(f"/api/v1/tasks/{task_id}/logs")).json()
    assert page["status"] == "running"
    assert lines(page) == [(1, 1, "info", "one"), (1, 2, "warning", "two")]
    assert page["lines"][1]["at"] == "2026-12-04T09:00:00+00:00"
    r = await api.post(f"/api/v1/tasks/{task_id}/fail", json={
        "attempt": 1, "error": {"type": "boom", "message": "no"},
        "logs": [{"level": "error", "message": "three"}]})
    assert r.status_code == 200 and r.json()["status"] == "scheduled"
    # its retry is due 10 ms after the failure: the claim waits for it rather than racing it
    r = await api.post("/api/v1/tasks/claim", json={"worker_id": "remote-1", "wait_s": 10})
    assert [t["id"] for t in r.json()["tasks"]] == [task_id]
    r = await api.post(f"/api/v1/tasks/{task_id}/complete", json={
        "attempt": 2, "output": {}, "logs": [{"message": f"again {n}"} for n in range(6)]})
    assert r.status_code == 200 and r.json()["status"] == "succeeded"
    page = (await api.get(f"/api/v1/tasks/{task_id}/logs")).json()
    assert lines(page)[:3] == [(1, 1, "info", "one"), (1, 2, "warning", "two"),
                               (1, 3, "error", "three")]
    second = (await api.get(f"/api/v1/tasks/{task_id}/logs?attempt=2")).json()
    assert [(x["line"], x["level"]) for x in second["lines"]] == [
        (1, "info"), (2, "info"), (3, "info"), (4, "info"), (5, "truncated")]
    assert "an attempt keeps 4 lines" in second["lines"][-1]["message"]
    first = (await api.get(f"/api/v1/tasks/{task_id}/logs?limit=2")).json()
    assert first["next_after"] == "1:2"
    rest = (await api.get(f"/api/v1/tasks/{task_id}/logs?after=1:2&limit=2")).json()
    assert [(x["attempt"], x["line"]) for x in rest["lines"]] == [(1, 3), (2, 1)]


async def test_a_late_heartbeat_adds_nothing(api: httpx.AsyncClient) -> None:
    task_id = await claimed(api)
    await api.post(f"/api/v1/tasks/{task_id}/complete", json={"attempt": 1})
    r = await api.post(f"/api/v1/tasks/{task_id}/heartbeat", json={
        "attempt": 1, "logs": [{"message": "late"}]})
    assert_error(r, 409, "stale_attempt")
    assert (await api.get(f"/api/v1/tasks/{task_id}/logs")).json()["lines"] == []


async def test_unknown_task_and_bad_cursors(api: httpx.AsyncClient, store: Store) -> None:
    task_id = await claimed(api)
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    error = assert_error(await api.get("/api/v1/tasks/nope/logs"), 404, "task_not_found")
    assert error["details"] == {"task_id": "nope"}
    assert_error(await api.get(f"/api/v1/tasks/{task_id}/logs?after=3"), 400, "bad_cursor")
    assert_error(await api.get(f"/api/v1/tasks/{task_id}/logs?limit=0"), 422,
                 "invalid_request")
    assert_error(await api.get(f"/api/v1/tasks/{task_id}/logs?attempt=0"), 422,
                 "invalid_request")
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before


@pytest.mark.parametrize("logs, path", [
    ([{"level": "loud", "message": "x"}], "logs.0.level"),
    ([{"message": "x", "extra": 1}], "logs.0.extra"),
    ([{"message": "x", "at": "2026-12-04T10:00:00"}], "logs.0.at"),
    ([{"message": "x", "at": "9999-12-31T00:00:00+00:00"}], "logs.0.at"),
    ([{"message": "x"}] * 1001, "logs"),
    ([{"level": "info"}], "logs.0.message"),
])
async def test_bad_lines_are_refused_and_nothing_is_written(
        api: httpx.AsyncClient, store: Store, logs: list[dict[str, Any]], path: str) -> None:
    task_id = await claimed(api)
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    for route, body in (("heartbeat", {"attempt": 1}),
                        ("complete", {"attempt": 1}),
                        ("fail", {"attempt": 1, "error": {"type": "x"}})):
        r = await api.post(f"/api/v1/tasks/{task_id}/{route}", json={**body, "logs": logs})
        error = assert_error(r, 422, "invalid_request")
        assert error["details"]["errors"][0]["path"] == path
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before
