"""/api/v1/sessions: login sessions listed (never their tokens) and ended by an admin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from agentos.store import Store
from agentos.store.tables import credentials
from tests.conftest import USER_PASSWORD, client_for, login
from tests.snapshot import snapshot

RoleClient = Callable[[str], Awaitable[httpx.AsyncClient]]


async def test_sessions_are_listed_and_ended(api: httpx.AsyncClient, app: FastAPI,
                                             store: Store) -> None:
    # Given a user signed in twice, and an API key (not a session)
    await api.post("/api/v1/users", json={"username": "ana", "role": "operator",
                                          "password": USER_PASSWORD})
    async with client_for(app) as laptop, client_for(app) as phone:
        for device in (laptop, phone):
            token = await login(device, "ana", USER_PASSWORD)
            device.headers["Authorization"] = f"Bearer {token}"
        await api.post("/api/v1/api-keys", json={"name": "ci", "role": "operator"})
        assert (await laptop.get("/api/v1/tasks")).status_code == 200  # a use is noted
        listed = (await api.get("/api/v1/sessions", params={"username": "ana"})).json()
        assert [s["username"] for s in listed["sessions"]] == ["ana", "ana"]
        assert all(s["live"] and s["role"] == "operator" and s["expires_at"]
                   for s in listed["sessions"])
        assert not any("token" in s or "secret_hash" in s for s in listed["sessions"])
        everyone = (await api.get("/api/v1/sessions")).json()["sessions"]
        assert sorted(s["username"] for s in everyone) == ["admin", "ana", "ana"]
        # one at a time, the pages give each session once, newest first
        paged, before = [], None
        while True:
            page = (await api.get("/api/v1/sessions", params={"limit": 1, **(
                {"before": before} if before else {})})).json()
            paged += [s["id"] for s in page["sessions"]]
            if (before := page["next_before"]) is None:
                break
        assert paged == [s["id"] for s in everyone] and len(set(paged)) == 3
        # When an admin ends the newest one (the phone's)
        newest = listed["sessions"][0]["id"]
        assert (await api.delete(f"/api/v1/sessions/{newest}")).status_code == 204
        # Then that token is refused at once and the other goes on
        assert (await phone.get("/api/v1/tasks")).status_code == 401
        assert (await laptop.get("/api/v1/tasks")).status_code == 200
    live = (await api.get("/api/v1/sessions", params={"username": "ana"})).json()["sessions"]
    assert len(live) == 1 and live[0]["id"] != newest
    ended = (await api.get("/api/v1/sessions", params={"username": "ana",
                                                       "include_ended": "true"})).json()
    assert [s["live"] for s in ended["sessions"]] == [False, True]
    assert ended["sessions"][0]["revoked_at"] is not None
    # an expired session is no longer live
    async with store.write() as conn:
        await conn.execute(update(credentials).where(credentials.c.id == live[0]["id"])
                           .values(expires_at=credentials.c.created_at))
    assert (await api.get("/api/v1/sessions", params={"username": "ana"})).json() == {
        "sessions": [], "next_before": None}
    # the end is audited with the session's id
    audit = (await api.get("/api/v1/audit", params={"action": "sessions.end"})).json()
    assert [e["resource_id"] for e in audit["entries"]] == [newest]


async def test_sessions_are_for_admins_and_bad_ends_write_nothing(
        api: httpx.AsyncClient, as_role: RoleClient, store: Store) -> None:
    operator = await as_role("operator")
    assert (await operator.get("/api/v1/sessions")).status_code == 403
    mine = (await api.get("/api/v1/sessions")).json()["sessions"]
    assert (await operator.delete(f"/api/v1/sessions/{mine[0]['id']}")).status_code == 403
    before = await snapshot(store)
    for bad, status in (("no-such-session", 404), ("x" * 37, 422)):
        r = await api.delete(f"/api/v1/sessions/{bad}")
        assert r.status_code == status, r.text
    key = (await api.post("/api/v1/api-keys", json={"name": "k", "role": "viewer"})).json()
    before = await snapshot(store)
    r = await api.delete(f"/api/v1/sessions/{key['id']}")  # a key is no session
    assert r.status_code == 404 and r.json()["error"]["code"] == "session_not_found"
    assert await snapshot(store) == before
    assert (await api.get("/api/v1/sessions", params={"limit": 0})).status_code == 422
