"""GET /api/v1/schedules/{name}/fires on both backends: a schedule's fires newest first,
paged by ``before``; 404 for an unknown schedule, a 4xx JSON error for a bad limit."""

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from agentos import schedules
from agentos.sdk import AsyncClient
from agentos.store import Store
from tests.api.test_agents_api import assert_error
from tests.api.test_tasks_api import publish
from tests.contract.test_schedules import make_due


@pytest.fixture
async def sdk(app: FastAPI, api: httpx.AsyncClient) -> AsyncIterator[AsyncClient]:
    """The SDK, signed in as ``api`` is."""
    async with AsyncClient("http://agentos.test", token=api.headers["Authorization"][7:],
                           transport=httpx.ASGITransport(app=app)) as client:
        yield client


async def fire(store: Store, name: str) -> None:
    await make_due(store, name, timedelta(seconds=1))
    await schedules.fire_due(store)


async def test_a_task_only_schedule_lists_its_fires(api: httpx.AsyncClient, store: Store,
                                                   sdk: AsyncClient) -> None:
    await publish(api, "reporter")
    r = await api.post("/api/v1/schedules", json={
        "name": "sweep", "interval_s": 600, "task": {"agent": "reporter"}})
    assert r.status_code == 201, r.text
    assert (await api.get("/api/v1/schedules/sweep/fires")).json() == {
        "fires": [], "next_before": None}
    await fire(store, "sweep")
    await fire(store, "sweep")
    page = (await api.get("/api/v1/schedules/sweep/fires")).json()
    tasks = (await api.get("/api/v1/tasks", params={"agent": "reporter", "order": "desc"})
             ).json()["tasks"]
    assert page["next_before"] is None
    assert [f["task_id"] for f in page["fires"]] == [t["id"] for t in tasks]
    assert len(tasks) == 2
    assert [f["event_id"] for f in page["fires"]] == [None, None]
    assert set(page["fires"][0]) == {"id", "schedule", "scheduled_for", "fired_at", "catch_up",
                                     "missed", "event_id", "task_id", "error"}
    # a page of one, then the next from its cursor
    first = (await api.get("/api/v1/schedules/sweep/fires", params={"limit": 1})).json()
    assert first["fires"] == page["fires"][:1] and first["next_before"] == page["fires"][0]["id"]
    rest = (await api.get("/api/v1/schedules/sweep/fires", params={
        "limit": 1, "before": first["next_before"]})).json()
    assert rest == {"fires": page["fires"][1:], "next_before": None}
    # the SDK follows the pages
    assert [f.id async for f in sdk.iterate(sdk.list_schedule_fires, name="sweep", limit=1)] \
        == [f["id"] for f in page["fires"]]
    # deleting the schedule deletes its fires
    assert (await api.delete("/api/v1/schedules/sweep")).status_code == 204
    assert_error(await api.get("/api/v1/schedules/sweep/fires"), 404, "schedule_not_found")


async def test_unknown_schedule_and_bad_limits(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/api/v1/schedules/nosuch/fires"), 404, "schedule_not_found")
    await api.post("/api/v1/schedules", json={"name": "s", "interval_s": 60,
                                              "event": {"type": "x"}})
    for limit in ("0", "1001", "many"):
        r = await api.get("/api/v1/schedules/s/fires", params={"limit": limit})
        assert 400 <= r.status_code < 500
        assert_error(r, r.status_code)
    assert_error(await api.get("/api/v1/schedules/s/fires", params={"before": "x" * 37}),
                 422)
