"""Revocation across servers: two apps (each its own store and cache) on one database.

A credential one server has verified and cached must be refused there soon after
another server revokes it: at once on PostgreSQL (NOTIFY clears every cache),
within AGENTOS_AUTH_CACHE_S at most anywhere (the cache's lifetime)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from agentos import server as agentos_server
from agentos.config import Settings
from agentos.store import open_store
from tests.conftest import ADMIN_PASSWORD, client_for, login

CACHE_S = 1.0  # seconds a server trusts a verified credential
NOTIFY_BOUND = 0.5  # seconds for a NOTIFY to reach the other server


@asynccontextmanager
async def server(url: str) -> AsyncIterator[FastAPI]:
    store = open_store(url)
    app = agentos_server.create(Settings(database_url=url, admin_password=ADMIN_PASSWORD,  # type: ignore[call-arg]
                              auth_cache_s=CACHE_S, _env_file=None), store)
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        await store.close()


async def refused_after(client: httpx.AsyncClient, limit: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < limit:
        if (await client.get("/api/v1/agents")).status_code == 401:
            return time.monotonic() - began
        await asyncio.sleep(0.02)
    raise AssertionError(f"still accepted after {limit} s")


async def test_a_logout_on_one_server_is_honoured_by_the_other(database_url: str,
                                                               backend: str) -> None:
    async with server(database_url) as a, server(database_url) as b, client_for(a) as on_a:
        token = await login(on_a, "admin", ADMIN_PASSWORD)
        on_a.headers["Authorization"] = f"Bearer {token}"
        async with client_for(b, token) as on_b:
            assert (await on_b.get("/api/v1/agents")).status_code == 200  # cached on b
            assert (await on_a.post("/api/v1/auth/logout")).status_code == 204
            took = await refused_after(on_b, CACHE_S + 1.0)
    if backend == "postgres":
        assert took < NOTIFY_BOUND, took


async def test_a_revoked_key_and_a_disabled_user_are_refused_by_the_other(
        database_url: str) -> None:
    async with server(database_url) as a, server(database_url) as b, client_for(a) as admin:
        admin.headers["Authorization"] = f"Bearer {await login(admin, 'admin', ADMIN_PASSWORD)}"
        key = (await admin.post("/api/v1/api-keys",
                                json={"name": "w", "role": "operator"})).json()
        await admin.post("/api/v1/users", json={"username": "zed", "password": "zed-password"})
        async with client_for(b, key["key"]) as by_key, client_for(b) as by_user:
            token = await login(by_user, "zed", "zed-password")
            by_user.headers["Authorization"] = f"Bearer {token}"
            for client in (by_key, by_user):
                assert (await client.get("/api/v1/agents")).status_code == 200
            await admin.delete(f"/api/v1/api-keys/{key['id']}")
            await admin.patch("/api/v1/users/zed", json={"active": False})
            for client in (by_key, by_user):
                await refused_after(client, CACHE_S + 1.0)
