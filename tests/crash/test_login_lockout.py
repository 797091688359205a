"""The login lockout holds against a burst on a real server, on both backends: every
attempt is counted before its password is checked, so 300 parallel guesses get
exactly ``max_failures`` password checks and the rest 429, and the right password
sent last in a burst is refused too (both used to pass: 300 x 401, and a login)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import ADMIN_PASSWORD, Server, environment, start

MAX_FAILURES = 10


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start("serve", tmp_path, environment(
        AGENTOS_DATABASE_URL=database_url, AGENTOS_LOG_LEVEL="warning",
        AGENTOS_LOGIN_MAX_FAILURES=str(MAX_FAILURES), AGENTOS_LOGIN_LOCKOUT_S="300",
        AGENTOS_LOGIN_MAX_DELAY_S="0.05"))
    try:
        yield running
    finally:
        running.stop()


async def burst(url: str, passwords: list[str], user: str = "admin",
                last_after_s: float | None = None) -> list[int]:
    """Each password in its own request, all at once (the last ``last_after_s`` later)."""
    limits = httpx.Limits(max_connections=len(passwords), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:
        async def one(password: str, after_s: float = 0.0) -> int:
            await asyncio.sleep(after_s)
            r = await http.post("/api/v1/auth/login",
                                json={"username": user, "password": password})
            return r.status_code

        calls = [one(p) for p in passwords[:-1]]
        calls.append(one(passwords[-1], last_after_s or 0.0))
        return list(await asyncio.gather(*calls))


async def test_300_parallel_guesses_get_max_failures_checks(server: Server) -> None:
    answers = Counter(await burst(server.url, [f"guess-{n}" for n in range(300)]))
    assert answers == {401: MAX_FAILURES, 429: 300 - MAX_FAILURES}, answers
    # the account stays shut for the lockout, the right password included
    assert await burst(server.url, [ADMIN_PASSWORD]) == [429]


async def test_the_right_password_last_in_a_burst_is_refused(server: Server) -> None:
    # 59 guesses, the right password 0.05 s later while they are still being checked
    answers = await burst(server.url, [f"guess-{n}" for n in range(59)] + [ADMIN_PASSWORD],
                          last_after_s=0.05)
    assert answers[-1] == 429, answers
    assert Counter(answers[:-1]) == {401: MAX_FAILURES, 429: 59 - MAX_FAILURES}
