"""X-Forwarded-For is believed only from AGENTOS_TRUSTED_PROXIES: anyone else's does
not change the address in the audit log, nor get around the per-address login
throttle by naming a new address on every guess."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from pydantic import ValidationError

from agentos.api.app import create_app
from agentos.config import Settings
from agentos.store import Store
from tests.conftest import ADMIN_PASSWORD, client_for, login

PEER = "127.0.0.1"  # the test transport's client address


@asynccontextmanager
async def served(database_url: str, store: Store, proxies: str = "",
                 **more: object) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, admin_password=ADMIN_PASSWORD,  # type: ignore[call-arg]
                        login_max_delay_s=0, trusted_proxies=proxies, _env_file=None, **more)
    app = create_app(settings, store)
    async with app.router.lifespan_context(app), client_for(app) as client:
        client.headers["Authorization"] = f"Bearer {await login(client, 'admin', ADMIN_PASSWORD)}"
        yield client


async def failed_login_ip(client: httpx.AsyncClient, forwarded: str) -> str:
    await client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"},
                      headers={"X-Forwarded-For": forwarded})
    entries = (await client.get("/api/v1/audit", params={"action": "auth.login",
                                                          "outcome": "denied"})).json()
    return str(entries["entries"][0]["ip"])


async def test_untrusted_forwarded_for_is_ignored(database_url: str, store: Store) -> None:
    async with served(database_url, store) as client:
        assert await failed_login_ip(client, "203.0.113.7") == PEER
    async with served(database_url, store, proxies="10.0.0.0/8, 192.0.2.1") as client:
        assert await failed_login_ip(client, "203.0.113.8") == PEER


async def test_a_trusted_proxy_names_the_client(database_url: str, store: Store) -> None:
    async with served(database_url, store, proxies=f"{PEER}") as client:
        assert await failed_login_ip(client, "203.0.113.9") == "203.0.113.9"
        # the client is the last address the trusted proxies did not add
        assert await failed_login_ip(client, "198.51.100.1, 203.0.113.10") == "203.0.113.10"
    async with served(database_url, store, proxies="127.0.0.0/8") as client:
        assert await failed_login_ip(client, "203.0.113.11") == "203.0.113.11"


async def test_a_new_forwarded_address_per_guess_does_not_escape_the_throttle(
        database_url: str, store: Store) -> None:
    async with served(database_url, store, login_max_failures=3) as client:
        answers = [(await client.post("/api/v1/auth/login", json={
            "username": f"user{n}", "password": "x"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code for n in range(5)]
    assert answers == [401, 401, 401, 429, 429]


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ValidationError, match="not an address"):
        Settings(trusted_proxies="10.0.0.1, proxy.example", _env_file=None)  # type: ignore[call-arg]
