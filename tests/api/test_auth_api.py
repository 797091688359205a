"""Logins, tokens, API keys and users over HTTP: the right answer for each credential,
and every bad one refused with the right 4xx, writing nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update

from agentos.store import Store
from agentos.store.tables import audit_log, credentials, users
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, client_for, login
from tests.snapshot import snapshot

RoleClient = Callable[[str], Awaitable[httpx.AsyncClient]]


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    assert body["code"] == code, body
    return body


async def last_audit(store: Store) -> Any:
    async with store.read() as conn:
        return (await conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())
                                   .limit(1))).first()


async def test_login_me_logout(anon: httpx.AsyncClient, app: FastAPI, store: Store) -> None:
    r = await anon.post("/api/v1/auth/login", json={"username": "admin",
                                                    "password": ADMIN_PASSWORD},
                        headers={"User-Agent": "pytest-agent"})
    assert r.status_code == 200
    body = r.json()
    assert body["token"].startswith("aos_") and body["expires_at"]
    assert body["user"]["username"] == "admin" and "password" not in str(body["user"])
    row = await last_audit(store)
    assert (row.actor, row.action, row.outcome, row.user_agent) == (
        "user:admin", "auth.login", "ok", "pytest-agent")
    async with client_for(app, body["token"]) as me:
        who = (await me.get("/api/v1/auth/me")).json()
        assert (who["actor"], who["role"], who["user"]["last_login_at"] is not None) == (
            "user:admin", "admin", True)
        assert (await me.post("/api/v1/auth/logout")).status_code == 204
        error(await me.get("/api/v1/auth/me"), 401, "credential_revoked")
    # only the hash of a token is stored
    async with store.read() as conn:
        hashes = (await conn.execute(select(credentials.c.secret_hash))).scalars().all()
    assert body["token"] not in hashes


@pytest.mark.parametrize("who,password", [("admin", "wrong-password"),
                                          ("nobody", ADMIN_PASSWORD),
                                          ("x' OR '1'='1", "' OR 1=1 --")])
async def test_a_wrong_login_is_401_and_only_counted(
        anon: httpx.AsyncClient, store: Store, who: str, password: str) -> None:
    before = await snapshot(store, skip=("login_failures", "audit_log", "audit_head"))
    r = await anon.post("/api/v1/auth/login", json={"username": who, "password": password})
    assert error(r, 401, "login_failed")["message"] == "wrong username or password"
    assert await snapshot(store, skip=("login_failures", "audit_log", "audit_head")) == before
    row = await last_audit(store)
    assert (row.action, row.outcome) == ("auth.login", "denied")
    assert password not in str(row.details)


async def test_a_disabled_user_cannot_log_in_and_loses_their_tokens(
        api: httpx.AsyncClient, anon: httpx.AsyncClient, app: FastAPI,
        as_role: RoleClient) -> None:
    viewer = await as_role("viewer")
    name = (await viewer.get("/api/v1/auth/me")).json()["username"]
    assert (await api.patch(f"/api/v1/users/{name}", json={"active": False})).status_code == 200
    error(await viewer.get("/api/v1/agents"), 401, "credential_revoked")
    error(await anon.post("/api/v1/auth/login", json={"username": name,
                                                      "password": USER_PASSWORD}),
          401, "user_disabled")
    assert (await api.patch(f"/api/v1/users/{name}", json={"active": True})).status_code == 200
    await login(anon, name, USER_PASSWORD)


async def test_an_expired_token_is_401(anon: httpx.AsyncClient, app: FastAPI,
                                       store: Store) -> None:
    token = await login(anon, "admin", ADMIN_PASSWORD)
    async with store.write() as conn:
        await conn.execute(update(credentials).values(
            expires_at=text("created_at") if store.dialect == "postgresql"
            else credentials.c.created_at))
    async with client_for(app, token) as late:
        error(await late.get("/api/v1/agents"), 401, "credential_expired")


@pytest.mark.parametrize("header", ["Basic YWRtaW46eA==", "Bearer", "Bearer ", "Bearer a b",
                                    "Token abc", "aos_abc"])
async def test_a_malformed_authorization_header_is_401(anon: httpx.AsyncClient,
                                                       header: str) -> None:
    r = await anon.get("/api/v1/agents", headers={"Authorization": header})
    error(r, 401, "bad_authorization")


async def test_an_unknown_token_is_401(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/api/v1/agents", headers={"Authorization": "Bearer aos_made-up"})
    error(r, 401, "invalid_credential")
    r = await anon.get("/api/v1/agents", headers={"Authorization": "bearer aos_made-up"})
    error(r, 401, "invalid_credential")  # the scheme is case-insensitive


async def test_api_keys_are_shown_once_scoped_recorded_and_revocable(
        api: httpx.AsyncClient, app: FastAPI, store: Store) -> None:
    r = await api.post("/api/v1/api-keys", json={"name": "ci", "role": "operator",
                                                 "expires_in_days": 1})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["key"].startswith(made["prefix"] + "_") and made["prefix"].startswith("aok_")
    listed = (await api.get("/api/v1/api-keys")).json()["api_keys"]
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    async with client_for(app, made["key"]) as worker:
        who = (await worker.get("/api/v1/auth/me")).json()
        assert (who["actor"], who["role"]) == (f"key:{made['prefix']}", "operator")
        assert (await worker.post("/api/v1/events", json={"type": "k.used"})).status_code == 201
        error(await worker.post("/api/v1/schedules", json={}), 403, "forbidden")
        error(await worker.post("/api/v1/auth/logout"), 403, "not_a_session")
        used = (await api.get("/api/v1/api-keys")).json()["api_keys"][0]
        assert used["last_used_at"] is not None
        row = (await api.get("/api/v1/audit", params={"action": "events.emit"})).json()
        assert row["entries"][0]["actor"] == f"key:{made['prefix']}"
        # revoked: refused at once by this server
        assert (await api.delete(f"/api/v1/api-keys/{made['id']}")).status_code == 204
        error(await worker.get("/api/v1/agents"), 401, "credential_revoked")
    error(await api.delete("/api/v1/api-keys/nope"), 404, "api_key_not_found")
    assert (await api.get("/api/v1/api-keys")).json()["api_keys"] == []


async def test_an_expired_key_is_401(api: httpx.AsyncClient, app: FastAPI) -> None:
    # time enough for the create on a loaded machine (an expiry already past is refused)
    soon = datetime.now(UTC) + timedelta(seconds=3)
    made = await api.post("/api/v1/api-keys", json={
        "name": "old", "role": "viewer", "expires_at": soon.isoformat()})
    assert made.status_code == 201, made.text
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    async with client_for(app, made.json()["key"]) as old:
        error(await old.get("/api/v1/agents"), 401, "credential_expired")


async def test_bad_key_requests_are_422(api: httpx.AsyncClient, store: Store) -> None:
    before = await snapshot(store)
    for body in ({"name": "x", "role": "root"}, {"name": "", "role": "viewer"},
                 {"name": "x", "role": "viewer", "expires_in_days": 1, "never_expires": True},
                 {"name": "x", "role": "viewer", "expires_at": "2030-01-01T00:00:00"}):
        assert (await api.post("/api/v1/api-keys", json=body)).status_code == 422, body
    assert await snapshot(store) == before


async def test_users_crud_never_shows_a_password(api: httpx.AsyncClient, store: Store) -> None:
    r = await api.post("/api/v1/users", json={"username": "ana", "password": "long-enough-1",
                                              "role": "operator", "email": "ana@example.com"})
    assert r.status_code == 201
    assert set(r.json()) == {"username", "email", "role", "active", "created_at",
                             "updated_at", "last_login_at"}
    error(await api.post("/api/v1/users", json={"username": "ana",
                                                "password": "long-enough-1"}),
          409, "user_exists")
    assert [u["username"] for u in (await api.get("/api/v1/users")).json()["users"]] == [
        "admin", "ana"]
    assert (await api.patch("/api/v1/users/ana", json={"role": "viewer"})).json()["role"] == \
        "viewer"
    assert (await api.delete("/api/v1/users/ana")).status_code == 204
    error(await api.get("/api/v1/users/ana"), 404, "user_not_found")
    async with store.read() as conn:
        stored = (await conn.execute(select(users.c.password_hash))).scalars().all()
    assert all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in stored)


async def test_bad_users_are_422_and_write_nothing(api: httpx.AsyncClient,
                                                  store: Store) -> None:
    before = await snapshot(store)
    for body in ({"username": "x", "password": "short"}, {"username": "bad name",
                                                          "password": "long-enough-1"},
                 {"username": "x", "password": "long-enough-1", "role": "root"},
                 {"username": "x", "password": "long-enough-1", "email": "no-at"},
                 {"username": "x", "password": "long-enough-1", "is_admin": True}):
        assert (await api.post("/api/v1/users", json=body)).status_code == 422, body
    r = await api.post("/api/v1/users", content=b'{"username": "x", "password": "' +
                       b"a" * 5_000_000 + b'"}', headers={"Content-Type": "application/json"})
    error(r, 413, "payload_too_large")
    assert await snapshot(store) == before


async def test_the_last_admin_stays(api: httpx.AsyncClient, store: Store) -> None:
    before = await snapshot(store)
    error(await api.patch("/api/v1/users/admin", json={"role": "viewer"}), 409, "last_admin")
    error(await api.patch("/api/v1/users/admin", json={"active": False}), 409, "last_admin")
    error(await api.delete("/api/v1/users/admin"), 409, "last_admin")
    assert await snapshot(store) == before


async def test_a_new_password_revokes_every_token(
        anon: httpx.AsyncClient, app: FastAPI, api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/users", json={"username": "bo", "password": USER_PASSWORD})
    first, second = await login(anon, "bo", USER_PASSWORD), await login(anon, "bo",
                                                                          USER_PASSWORD)
    async with client_for(app, first) as a, client_for(app, second) as b:
        error(await a.post("/api/v1/auth/password", json={
            "current_password": "not-it-at-all", "new_password": "a-new-password"}),
            400, "wrong_password")
        r = await a.post("/api/v1/auth/password", json={"current_password": USER_PASSWORD,
                                                        "new_password": "a-new-password"})
        assert r.status_code == 200, r.text
        for client in (a, b):
            error(await client.get("/api/v1/agents"), 401, "credential_revoked")
    await login(anon, "bo", "a-new-password")
    # an admin's reset does the same
    token = await login(anon, "bo", "a-new-password")
    await api.patch("/api/v1/users/bo", json={"password": "reset-by-admin"})
    async with client_for(app, token) as c:
        error(await c.get("/api/v1/agents"), 401, "credential_revoked")


async def test_a_role_change_applies_to_live_sessions(api: httpx.AsyncClient,
                                                      as_role: RoleClient) -> None:
    viewer = await as_role("viewer")
    error(await viewer.post("/api/v1/events", json={"type": "a.b"}), 403, "forbidden")
    name = (await viewer.get("/api/v1/auth/me")).json()["username"]
    await api.patch(f"/api/v1/users/{name}", json={"role": "operator"})
    assert (await viewer.post("/api/v1/events", json={"type": "a.b"})).status_code == 201


async def test_refused_changes_write_nothing_but_their_audit_row(
        store: Store, as_role: RoleClient) -> None:
    viewer, operator = await as_role("viewer"), await as_role("operator")
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    for client, method, path, body in (
            (viewer, "POST", "/api/v1/events", {"type": "a.b"}),
            (viewer, "POST", "/api/v1/tasks", {"agent": "x"}),
            (viewer, "POST", "/api/v1/tasks/claim", {"worker_id": "w"}),
            (operator, "POST", "/api/v1/schedules", {"name": "s", "interval_s": 5,
                                                     "event": {"type": "a.b"}}),
            (operator, "POST", "/api/v1/users", {"username": "eve",
                                                 "password": "long-enough-1",
                                                 "role": "admin"}),
            (operator, "POST", "/api/v1/agents/x/versions/1.0.0/publish", None),
            (operator, "GET", "/api/v1/audit", None)):
        r = await client.request(method, path, json=body)
        error(r, 403, "forbidden")
        row = await last_audit(store)
        actor = (await client.get("/api/v1/auth/me")).json()["actor"]
        assert (row.actor, row.outcome, row.details["needs"]) == (
            actor, "denied", r.json()["error"]["details"]["needs"]), path
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before


async def test_a_change_is_audited_with_who_what_where(api: httpx.AsyncClient,
                                                       store: Store) -> None:
    r = await api.post("/api/v1/schedules", json={"name": "nightly", "cron": "0 2 * * *",
                                                  "event": {"type": "qa.nightly"}},
                       headers={"User-Agent": "ops-script/1"})
    assert r.status_code == 201, r.text
    row = await last_audit(store)
    assert (row.actor, row.actor_role, row.action, row.outcome, row.resource_type,
            row.resource_id, row.user_agent, row.ip) == (
        "user:admin", "admin", "schedules.create", "ok", "schedules", "nightly",
        "ops-script/1", "127.0.0.1")
    assert row.details["body"] == {"name": "nightly", "cron": "0 2 * * *"}
    # a change that fails (409) leaves no row
    seq = row.seq
    r = await api.post("/api/v1/schedules", json={"name": "nightly", "cron": "0 2 * * *",
                                                  "event": {"type": "qa.nightly"}})
    assert r.status_code == 409
    assert (await last_audit(store)).seq == seq
    # reads leave none either
    await api.get("/api/v1/schedules")
    assert (await last_audit(store)).seq == seq


SQL_METACHARACTERS = ["'", "' OR '1'='1", "x'; DROP TABLE users; --", "%", "_", "\\",
                      '"; SELECT 1; --', "admin'--"]


@pytest.mark.parametrize("path,params", [
    ("/api/v1/audit", ["actor", "action", "resource_type", "resource_id"]),
    ("/api/v1/tasks", ["agent", "correlation_id"]),
    ("/api/v1/events", ["type", "source", "correlation_id", "run_id"]),
    ("/api/v1/agents", ["q", "tag", "capability", "event", "after"]),
    ("/api/v1/api-keys", ["include_revoked"]),
])
async def test_sql_metacharacters_in_filters_are_only_text(
        api: httpx.AsyncClient, store: Store, path: str, params: list[str]) -> None:
    await api.post("/api/v1/events", json={"type": "a.b"})
    moving = ("route_queue", "routes")  # the router's own progress
    before = await snapshot(store, skip=moving)
    for param in params:
        for value in SQL_METACHARACTERS:
            r = await api.get(path, params={param: value})
            assert r.status_code in (200, 400, 422), (param, value, r.text)
            if r.status_code == 200:
                listed = next(v for k, v in r.json().items() if isinstance(v, list))
                assert listed == [], (param, value)
    assert await snapshot(store, skip=moving) == before
    async with store.read() as conn:
        assert (await conn.execute(select(users.c.username))).scalars().all() == ["admin"]


async def test_an_empty_claim_leaves_no_audit_row(api: httpx.AsyncClient,
                                                  store: Store) -> None:
    before = (await last_audit(store)).seq
    r = await api.post("/api/v1/tasks/claim", json={"worker_id": "w1", "wait_s": 0.3})
    assert r.status_code == 200 and r.json()["tasks"] == []
    assert (await last_audit(store)).seq == before  # an idle worker's polls fill nothing
    # a claim that takes a task is a change: one row, with the worker's id
    from tests.api.test_tasks_api import publish

    await publish(api)
    task = (await api.post("/api/v1/tasks", json={"agent": "a"})).json()
    r = await api.post("/api/v1/tasks/claim", json={"worker_id": "w1"})
    assert [t["id"] for t in r.json()["tasks"]] == [task["id"]]
    row = await last_audit(store)
    assert (row.action, row.details["body"]) == ("tasks.claim", {"worker_id": "w1"})


@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/events"])
@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "yesterday", "' OR 1=1 --"])
async def test_bad_times_in_filters_are_422(api: httpx.AsyncClient, path: str,
                                            value: str) -> None:
    for param in ("since", "until"):
        error(await api.get(path, params={param: value}), 422, "invalid_request")
