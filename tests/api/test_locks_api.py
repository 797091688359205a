"""/api/v1/locks over HTTP on both backends: the answers' shapes, long-polling, and bad
input that gets a 4xx JSON error and changes nothing."""

import asyncio
from typing import Any

import httpx
import pytest

R = "device:pixel-7"


async def acquire(api: httpx.AsyncClient, resource: str = R, **body: Any) -> httpx.Response:
    return await api.post(f"/api/v1/locks/{resource}/acquire", json={"owner": "a", **body})


async def state(api: httpx.AsyncClient, resource: str = R) -> dict[str, Any]:
    response = await api.get(f"/api/v1/locks/{resource}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_acquire_release_renew(api: httpx.AsyncClient) -> None:
    got = (await acquire(api, ttl_s=10)).json()
    assert got["granted"] is True and got["token"] == 1 and got["expires_at"]
    busy = (await acquire(api, owner="b")).json()
    assert busy == {"granted": False, "position": 1, "resource": R}
    renewed = await api.post(f"/api/v1/locks/{R}/renew",
                             json={"owner": "a", "token": 1, "ttl_s": 60})
    assert renewed.status_code == 200 and renewed.json()["expires_at"] > got["expires_at"]
    shown = await state(api)
    assert shown["holder"]["owner"] == "a" and shown["holder"]["token"] == 1
    listed = (await api.get("/api/v1/locks", params={"type": "device"})).json()["locks"]
    assert [x["resource"] for x in listed] == [R]
    assert (await api.get("/api/v1/locks", params={"type": "other"})).json() == {
        "locks": [], "next_after": None}
    released = await api.post(f"/api/v1/locks/{R}/release", json={"owner": "a", "token": 1})
    assert released.status_code == 200
    assert (await state(api))["holder"] is None


async def test_long_poll_is_granted_on_release(api: httpx.AsyncClient) -> None:
    await acquire(api)
    waiter = asyncio.create_task(acquire(api, owner="b", wait_s=20))
    while not (await state(api))["queue"]:
        await asyncio.sleep(0.01)
    assert (await state(api))["queue"][0]["owner"] == "b"
    await api.post(f"/api/v1/locks/{R}/release", json={"owner": "a", "token": 1})
    got = (await waiter).json()
    assert got["granted"] is True and got["token"] == 2


async def test_each_lock_change_is_audited_once(api: httpx.AsyncClient) -> None:
    token = (await acquire(api)).json()["token"]  # a free lock: one statement
    assert (await acquire(api, owner="b", wait_s=0.2)).json()["granted"] is False  # queued
    await api.post(f"/api/v1/locks/{R}/release", json={"owner": "a", "token": token})
    again = (await acquire(api)).json()
    await api.post(f"/api/v1/locks/{R}/release", json={"owner": "a", "token": again["token"]})
    audit = (await api.get("/api/v1/audit", params={"resource_type": "locks"})).json()["entries"]
    assert [e["action"] for e in reversed(audit)] == [
        "locks.acquire", "locks.acquire", "locks.release", "locks.acquire", "locks.release"]


async def test_acquire_many_and_force_release(api: httpx.AsyncClient) -> None:
    body = {"resources": ["device:b", "device:a"], "owner": "m", "ttl_s": 30}
    got = (await api.post("/api/v1/locks/acquire-many", json=body)).json()
    assert got["granted"] and [x["resource"] for x in got["locks"]] == ["device:a", "device:b"]
    again = (await api.post("/api/v1/locks/acquire-many", json={**body, "owner": "n"})).json()
    assert again["granted"] is False
    forced = await api.post("/api/v1/locks/device:a/force-release")
    assert forced.status_code == 200 and forced.json()["owner"] == "m"
    types = [e["type"] for e in (await api.get("/api/v1/events", params={"type": "lock.*"})
                                 ).json()["events"]]
    assert types == ["lock.acquired", "lock.acquired", "lock.force_released"]


@pytest.mark.parametrize(("resource", "body", "code"), [
    ("pixel-7", {}, "bad_resource"),
    ("Device:x", {}, "bad_resource"),
    ("device:", {}, "bad_resource"),
    ("device:a%20b", {}, "bad_resource"),
    (R, {"ttl_s": 0}, "bad_ttl"),
    (R, {"ttl_s": -5}, "bad_ttl"),
    (R, {"ttl_s": 3601}, "bad_ttl"),
    (R, {"priority": 0}, "bad_priority"),
    (R, {"priority": 11}, "bad_priority"),
    (R, {"wait_s": -1}, "bad_wait"),
    (R, {"wait_s": 301}, "bad_wait"),
    (R, {"owner": ""}, "invalid_request"),
    (R, {"priority": "high"}, "invalid_request"),
    (R, {"surprise": 1}, "invalid_request"),
])
async def test_bad_acquire_changes_nothing(api: httpx.AsyncClient, resource: str,
                                           body: dict[str, Any], code: str) -> None:
    response = await acquire(api, resource, **body)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] == code
    assert (await api.get("/api/v1/locks")).json()["locks"] == []
    assert (await api.get("/api/v1/events")).json()["events"] == []


async def test_bad_acquire_many(api: httpx.AsyncClient) -> None:
    for resources in ([], ["device:a", "nope"], ["device:a"] * 101):
        response = await api.post("/api/v1/locks/acquire-many",
                                  json={"resources": resources, "owner": "a"})
        assert 400 <= response.status_code < 500, resources
    assert (await api.get("/api/v1/locks")).json()["locks"] == []


async def test_release_and_renew_refusals_change_nothing(api: httpx.AsyncClient) -> None:
    never = await api.post("/api/v1/locks/device:never/release", json={"owner": "a", "token": 1})
    assert never.status_code == 404 and never.json()["error"]["code"] == "lock_not_found"
    await acquire(api)
    before = await state(api)
    for path, body, code in [
        ("release", {"owner": "b", "token": 1}, "lock_not_owner"),
        ("release", {"owner": "a", "token": 2}, "lock_stale_token"),
        ("renew", {"owner": "zz", "token": 1}, "lock_not_owner"),
        ("renew", {"owner": "a", "token": 9}, "lock_stale_token"),
    ]:
        response = await api.post(f"/api/v1/locks/{R}/{path}", json=body)
        assert response.status_code == 409 and response.json()["error"]["code"] == code
    bad = await api.post(f"/api/v1/locks/{R}/release", json={"owner": "a", "token": 0})
    assert bad.status_code == 422
    assert await state(api) == before
    await api.post(f"/api/v1/locks/{R}/release", json={"owner": "a", "token": 1})
    again = await api.post(f"/api/v1/locks/{R}/release", json={"owner": "a", "token": 1})
    assert again.status_code == 409 and again.json()["error"]["code"] == "lock_not_held"
    free = await api.post(f"/api/v1/locks/{R}/force-release")
    assert free.status_code == 409


async def test_workers_list_their_locks(api: httpx.AsyncClient) -> None:
    workers = (await api.get("/api/v1/workers")).json()["workers"]
    assert all("locks" in w for w in workers)
