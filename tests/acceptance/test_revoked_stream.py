"""A long-lived request does not outlive its credential: an event stream and a durable
subscription's long poll, open on one server while another disables the user, end
within AGENTOS_AUTH_CACHE_S (at once on PostgreSQL, whose NOTIFY reaches every server).
A stream used to keep delivering for as long as it stayed open."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Server, admin_token, environment, start

CACHE_S = 1.0  # AGENTOS_AUTH_CACHE_S of both servers
MARGIN = 1.5  # seconds for the check, the close and a loaded machine
PASSWORD = "ana-password-for-tests"


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    env = environment(AGENTOS_DATABASE_URL=database_url, AGENTOS_AUTH_CACHE_S=str(CACHE_S),
                      AGENTOS_LOG_LEVEL="warning")
    a = start("serve", tmp_path, env)
    try:
        b = start("serve", tmp_path, env)
        try:
            a.token = b.token = admin_token(a.url)
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def user_token(server: Server, username: str) -> str:
    admin = {"Authorization": f"Bearer {server.token}"}
    r = httpx.post(f"{server.url}/api/v1/users", headers=admin,
                   json={"username": username, "password": PASSWORD, "role": "operator"})
    assert r.status_code == 201, r.text
    r = httpx.post(f"{server.url}/api/v1/auth/login",
                   json={"username": username, "password": PASSWORD})
    return str(r.json()["token"])


def disable(server: Server, username: str) -> float:
    r = httpx.patch(f"{server.url}/api/v1/users/{username}", json={"active": False},
                    headers={"Authorization": f"Bearer {server.token}"})
    assert r.status_code == 200, r.text
    return time.monotonic()


def test_a_stream_ends_when_its_user_is_disabled_elsewhere(
        servers: tuple[Server, Server]) -> None:
    a, b = servers
    token = user_token(a, "ana")
    received: list[tuple[float, str]] = []  # (when, line)
    ended = threading.Event()

    def read() -> None:
        with httpx.stream("GET", f"{a.url}/api/v1/events/stream",
                          headers={"Authorization": f"Bearer {token}"},
                          timeout=httpx.Timeout(30.0)) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                received.append((time.monotonic(), line))
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stop = threading.Event()

    def emit() -> None:  # events keep flowing before and after the revocation
        with httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {b.token}"}
                          ) as http:
            while not stop.is_set():
                http.post("/api/v1/events", json={"type": "tick"})
                time.sleep(0.05)

    emitter = threading.Thread(target=emit, daemon=True)
    emitter.start()
    try:
        deadline = time.monotonic() + 10
        while not any(line.startswith("data:") for _, line in received):
            assert time.monotonic() < deadline, "the stream delivered nothing"
            time.sleep(0.05)
        disabled_at = disable(b, "ana")
        assert ended.wait(CACHE_S + MARGIN + 10), "the stream outlived its credential"
    finally:
        stop.set()
        emitter.join()
    closed_at, last = next((at, line) for at, line in reversed(received) if line)
    assert last.startswith(": closed: "), received[-3:]
    assert closed_at - disabled_at < CACHE_S + MARGIN, closed_at - disabled_at
    # reconnecting is refused
    r = httpx.get(f"{a.url}/api/v1/events/stream", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_a_long_poll_ends_when_its_user_is_disabled_elsewhere(
        servers: tuple[Server, Server]) -> None:
    a, b = servers
    token = user_token(a, "bea")
    http = httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {token}"},
                        timeout=30.0)
    assert http.post("/api/v1/subscriptions", json={"name": "s"}).status_code == 201
    answer: list[httpx.Response] = []
    poller = threading.Thread(target=lambda: answer.append(
        http.get("/api/v1/subscriptions/s/events", params={"wait_s": 20})))
    poller.start()
    time.sleep(0.5)  # waiting on server a
    disabled_at = disable(b, "bea")
    poller.join(CACHE_S + MARGIN + 10)
    took = time.monotonic() - disabled_at
    http.close()
    assert answer and answer[0].status_code == 401, answer
    assert took < CACHE_S + MARGIN, took


def test_a_claim_long_poll_ends_when_its_key_is_revoked_elsewhere(
        servers: tuple[Server, Server]) -> None:
    a, b = servers
    admin = {"Authorization": f"Bearer {b.token}"}
    key = httpx.post(f"{b.url}/api/v1/api-keys", headers=admin,
                     json={"name": "worker", "role": "operator"}).json()
    answer: list[httpx.Response] = []

    def claim() -> None:
        answer.append(httpx.post(f"{a.url}/api/v1/tasks/claim", timeout=40.0,
                                 headers={"Authorization": f"Bearer {key['key']}"},
                                 json={"worker_id": "w1", "wait_s": 25}))

    poller = threading.Thread(target=claim)
    poller.start()
    time.sleep(0.5)
    assert httpx.delete(f"{b.url}/api/v1/api-keys/{key['id']}", headers=admin
                        ).status_code == 204
    revoked_at = time.monotonic()
    poller.join(CACHE_S + MARGIN + 10)
    assert answer and answer[0].status_code == 401, answer
    assert time.monotonic() - revoked_at < CACHE_S + MARGIN
