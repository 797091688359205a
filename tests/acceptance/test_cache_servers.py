"""The cache of hot reads across two real ``agentos serve`` processes on one database.

A server reads an agent (and keeps it), the other publishes a new version: the writer
answers with the new one at once, and the reader converges in milliseconds by
PostgreSQL NOTIFY, by the wake-up sockets of a shared SQLite file, and with Redis.
Each path runs with a TTL of a minute or 30 s and is given ``NOTIFY_BOUND`` (a loaded
machine's stalls), far below it: only the notification can have told the reader
within it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests import redis_server
from tests.acceptance.conftest import Server, admin_token, environment, start

NOTIFY_BOUND = 10.0  # seconds for a change to reach the other server by a notification
CONVERGE_S = 20.0  # seconds before B "never converged" (below the long TTLs too)


def definition(version: str) -> str:
    return (f"name: cached\nversion: {version}\n"
            "handler: {type: python, target: 'm:f'}\n")


@contextmanager
def servers(tmp_path: Path, **variables: str) -> Iterator[tuple[Server, Server]]:
    a = start("serve", tmp_path, environment(**variables))
    try:
        b = start("serve", tmp_path, environment(**variables, AGENTOS_RUN_ROUTER="false",
                                                  AGENTOS_RUN_SCHEDULER="false"))
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def converge(a: Server, b: Server) -> float:
    """Seconds from A's publish of 1.1.0 to B answering with it (B having read 1.0.0)."""
    headers = {"Authorization": f"Bearer {admin_token(a.url)}"}
    with httpx.Client(base_url=a.url, headers=headers, timeout=10) as on_a, \
            httpx.Client(base_url=b.url, headers=headers, timeout=10) as on_b:
        r = on_a.post("/api/v1/agents/import?publish=true", content=definition("1.0.0"),
                      headers={"content-type": "application/yaml"})
        assert r.status_code == 201, r.text
        for _ in range(3):  # now in B's cache
            assert on_b.get("/api/v1/agents/cached").json()["version"] == "1.0.0"
        r = on_a.post("/api/v1/agents/import?publish=true", content=definition("1.1.0"),
                      headers={"content-type": "application/yaml"})
        assert r.status_code == 201, r.text
        began = time.monotonic()
        # the writer never reads a value older than its own write
        assert on_a.get("/api/v1/agents/cached").json()["version"] == "1.1.0"
        while on_b.get("/api/v1/agents/cached").json()["version"] != "1.1.0":
            assert time.monotonic() - began < CONVERGE_S, "B never converged"
            time.sleep(0.01)
        return time.monotonic() - began


def test_two_servers_converge(database_url: str, backend: str, tmp_path: Path) -> None:
    # the TTL is a minute while the server listens; pinned, so that a listener that
    # never started cannot pass through the one-second fallback
    with servers(tmp_path, AGENTOS_DATABASE_URL=database_url,
                 AGENTOS_CACHE_TTL_S="60") as (a, b):
        took = converge(a, b)
    assert took < NOTIFY_BOUND, took


@pytest.mark.parametrize("backend", ["sqlite"])
def test_two_servers_converge_through_redis(database_url: str, tmp_path: Path) -> None:
    with redis_server.running(tmp_path) as redis_url, \
            servers(tmp_path, AGENTOS_DATABASE_URL=database_url, AGENTOS_REDIS_URL=redis_url,
                    AGENTOS_CACHE_TTL_S="30") as (a, b):
        took = converge(a, b)
    assert took < NOTIFY_BOUND, took
