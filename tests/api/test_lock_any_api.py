"""POST /api/v1/locks/acquire-any over HTTP on both backends: a list or a prefix, a wait
answered by the first grant, the audit row naming what was granted, and bad input
refused writing nothing."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

ANY = "/api/v1/locks/acquire-any"


async def take(api: httpx.AsyncClient, resource: str, owner: str = "setup") -> int:
    got = (await api.post(f"/api/v1/locks/{resource}/acquire", json={"owner": owner})).json()
    assert got["granted"]
    return int(got["token"])


async def test_a_list_a_prefix_and_a_wait(api: httpx.AsyncClient) -> None:
    token = await take(api, "device:ios-1")
    got = (await api.post(ANY, json={"owner": "a", "resources": [
        "device:ios-1", "device:android-1"], "ttl_s": 10})).json()
    assert got["granted"] is True and got["resource"] == "device:android-1"
    assert got["token"] == 1 and got["expires_at"]
    busy = (await api.post(ANY, json={"owner": "b", "prefix": "device:"})).json()
    assert busy == {"granted": False, "position": 1, "resource": "device:android-1"}
    waiting = asyncio.create_task(api.post(ANY, json={
        "owner": "b", "prefix": "device:", "wait_s": 20, "priority": 7}))
    while not (await api.get("/api/v1/locks/device:ios-1")).json()["queue"]:
        await asyncio.sleep(0.02)
    queued = (await api.get("/api/v1/locks/device:android-1")).json()["queue"]
    assert [(w["owner"], w["priority"]) for w in queued] == [("b", 7)]
    await api.post("/api/v1/locks/device:ios-1/release", json={"owner": "setup",
                                                                "token": token})
    won = (await asyncio.wait_for(waiting, 20)).json()
    assert won["granted"] and won["resource"] == "device:ios-1" and won["token"] == 2
    assert (await api.get("/api/v1/locks/device:android-1")).json()["queue"] == []
    entries = (await api.get("/api/v1/audit", params={"action": "locks.acquire"})
               ).json()["entries"]
    # each names what it got; one that queued first (recorded as it joined), its pool
    assert [e["resource_id"] for e in entries if e["details"].get("pool")] == [
        "device:*", "device:*", "device:android-1"]


async def test_an_operator_takes_any_a_viewer_may_not(
        api: httpx.AsyncClient, as_role: Callable[[str], Awaitable[httpx.AsyncClient]]
) -> None:
    await take(api, "device:a")
    operator, viewer = await as_role("operator"), await as_role("viewer")
    got = await operator.post(ANY, json={"owner": "op", "prefix": "device:"})
    assert got.status_code == 200 and got.json()["granted"] is False
    refused = await viewer.post(ANY, json={"owner": "v", "prefix": "device:"})
    assert refused.status_code == 403


@pytest.mark.parametrize(("body", "status", "code"), [
    ({}, 400, "bad_pool"),
    ({"resources": ["device:a"], "prefix": "device:"}, 400, "bad_pool"),
    ({"resources": []}, 400, "bad_resources"),
    ({"resources": ["device:a", "nope"]}, 400, "bad_resource"),
    ({"resources": [f"device:{n}" for n in range(101)]}, 422, None),
    ({"prefix": "device"}, 400, "bad_prefix"),
    ({"prefix": "device:*"}, 400, "bad_prefix"),
    ({"prefix": "x" * 300}, 422, None),
    ({"prefix": "device:", "priority": 11}, 400, "bad_priority"),
    ({"prefix": "device:", "ttl_s": 0}, 400, "bad_ttl"),
    ({"prefix": "device:", "wait_s": -1}, 400, "bad_wait"),
    ({"prefix": "device:", "extra": 1}, 422, None),
    ({"prefix": "device:nothing-here-"}, 404, "no_resources"),
])
async def test_bad_requests_write_nothing(api: httpx.AsyncClient, body: dict[str, Any],
                                          status: int, code: str | None) -> None:
    await take(api, "device:a")
    before = (await api.get("/api/v1/events", params={"type": "lock.*"})).json()
    response = await api.post(ANY, json={"owner": "o", **body})
    assert response.status_code == status, response.text
    if code:
        assert response.json()["error"]["code"] == code
    assert (await api.get("/api/v1/events", params={"type": "lock.*"})).json() == before
    assert (await api.get("/api/v1/locks/device:a")).json()["queue"] == []
