"""Repeated failed logins are slowed, then refused for a while (429), per user and per
address; the real user gets back in once the lockout ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from agentos import server
from agentos.config import Settings
from agentos.store import Store
from tests.conftest import ADMIN_PASSWORD, client_for

LOCKOUT = 1.5  # seconds
DELAY = 0.2  # seconds, the cap of the slow-down


@pytest.fixture
async def guarded(database_url: str, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, admin_password=ADMIN_PASSWORD,  # type: ignore[call-arg]
                        login_max_failures=4, login_lockout_s=LOCKOUT,
                        login_max_delay_s=DELAY, _env_file=None)
    app = server.create(settings, store)
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield client


async def attempt(client: httpx.AsyncClient, password: str, user: str = "admin"
                  ) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": user,
                                                         "password": password})


async def test_failures_slow_down_then_lock_out_for_a_while(
        guarded: httpx.AsyncClient) -> None:
    # three failures answer at once; from the third on, the next ones wait
    for _ in range(3):
        assert (await attempt(guarded, "wrong-password")).status_code == 401
    began = time.monotonic()
    assert (await attempt(guarded, "wrong-password")).status_code == 401
    assert time.monotonic() - began >= DELAY * 0.9
    # the fourth failure locks: even the right password is refused, with Retry-After
    refused = await attempt(guarded, ADMIN_PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "login_locked"
    assert int(refused.headers["retry-after"]) >= 1
    # once the lockout ends the real user gets in, and the count starts over
    await asyncio.sleep(LOCKOUT + 0.1)
    assert (await attempt(guarded, ADMIN_PASSWORD)).status_code == 200
    assert (await attempt(guarded, "wrong-password")).status_code == 401
    assert (await attempt(guarded, ADMIN_PASSWORD)).status_code == 200


async def test_one_address_guessing_many_users_is_locked_out(
        guarded: httpx.AsyncClient) -> None:
    for n in range(4):
        assert (await attempt(guarded, "guess", user=f"user{n}")).status_code == 401
    assert (await attempt(guarded, "guess", user="someone-else")).status_code == 429


async def test_parallel_guesses_all_count(guarded: httpx.AsyncClient) -> None:
    results = await asyncio.gather(*(attempt(guarded, f"guess-{n}") for n in range(6)))
    assert {r.status_code for r in results} <= {401, 429}
    assert (await attempt(guarded, ADMIN_PASSWORD)).status_code == 429
