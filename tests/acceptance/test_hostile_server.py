"""Hostile input against a real ``agentos serve``: a YAML alias bomb is refused at once
while the server keeps answering, and no bad request costs the client its keep-alive
connection."""

from __future__ import annotations

import threading
import time

import httpx

from tests.acceptance.conftest import Server
from tests.unit.test_document_bounds import laughs

BOUND_S = 5.0  # seconds a refusal or a /health may take: a loaded machine's stall, not
# the minutes a parse of the bomb took


def test_a_yaml_bomb_is_refused_at_once_and_health_keeps_answering(server: Server) -> None:
    """Every refusal comes within ``BOUND_S`` and /health, asked all along, answers
    between each refusal and the next, each answer within ``BOUND_S`` too."""
    bomb = laughs(9)  # 342 bytes for 387 million strings: stalled the server, grew 10 GB
    slowest, probes = 0.0, 0
    failed: list[BaseException] = []
    stop = threading.Event()

    def probe() -> None:
        nonlocal slowest, probes
        with httpx.Client(base_url=server.url, timeout=60.0) as http:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    assert http.get("/health").status_code == 200
                except BaseException as exc:  # seen by the test, not lost with the thread
                    failed.append(exc)
                    return
                slowest = max(slowest, time.monotonic() - began)
                probes += 1
                time.sleep(0.01)

    def answered_since(seen: int) -> None:
        deadline = time.monotonic() + BOUND_S
        while probes == seen and not failed:
            assert time.monotonic() < deadline, "/health did not answer"
            time.sleep(0.005)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        answered_since(0)
        with httpx.Client(base_url=server.url, timeout=10.0,
                          headers={"Authorization": f"Bearer {server.token}",
                                   "Content-Type": "application/yaml"}) as http:
            for _ in range(20):
                seen, began = probes, time.monotonic()
                r = http.post("/api/v1/agents/import", content=bomb)
                assert time.monotonic() - began < BOUND_S
                assert r.status_code == 413, r.text
                assert r.json()["error"]["code"] == "document_too_large"
                answered_since(seen)  # health keeps answering
            assert http.get("/api/v1/agents").json()["agents"] == []
    finally:
        stop.set()
        prober.join()
    assert not failed, failed
    assert slowest < BOUND_S, slowest


def test_bad_requests_in_a_row_keep_the_connection(server: Server) -> None:
    """One client, one connection: every refusal is a 4xx in the error shape and the
    server never closes the connection on it (a 500 used to reset it)."""
    json_ = {"content-type": "application/json"}
    bad: list[tuple[str, str, bytes, dict[str, str], int]] = [
        ("POST", "/api/v1/events", b'{"payload": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
         json_, 422),
        ("POST", "/api/v1/events", b'{"type": "a.b", "source": "\xff\xfe"}', json_, 400),
        ("POST", "/api/v1/events", b'{"type": "a.b", "source": "a\\u0000"}', json_, 422),
        ("GET", "/api/v1/events?source=%00", b"", {}, 422),
        ("GET", "/api/v1/tasks/%00", b"", {}, 422),
        ("GET", "/api/v1/events?after_seq=99999999999999999999", b"", {}, 422),
        ("POST", "/api/v1/locks/r:x/release", b'{"owner": "a", "token": 99999999999999999999}',
         json_, 422),
        ("POST", "/api/v1/tasks/x/heartbeat", b'{"attempt": 99999999999999999999}', json_, 422),
        ("POST", "/api/v1/events", b'{"type": "a.b", "payload": {"x": NaN}}', json_, 422),
        ("POST", "/api/v1/events", b"{not json", json_, 400),
        ("POST", "/api/v1/agents/import", b"a: &a [1]\n" + b"\xff", {"content-type":
                                                                  "application/yaml"}, 400),
        ("GET", "/api/v1/nowhere", b"", {}, 404),
        ("POST", "/api/v1/events", b'{"type": "a.b", "payload": {"x": "'
         + b"a" * (5 * 1024 * 1024) + b'"}}', json_, 413),
        ("GET", "/api/v1/tasks/none", b"", {}, 404),
    ]
    with httpx.Client(base_url=server.url, timeout=30.0,
                      headers={"Authorization": f"Bearer {server.token}"}) as http:
        first = http.get("/health")
        connection = first.extensions["network_stream"].get_extra_info("client_addr")
        for method, path, body, headers, status in bad:
            r = http.request(method, path, content=body, headers=headers)
            assert r.status_code == status, (path, r.text)
            assert set(r.json()) == {"error"} and set(r.json()["error"]) == {
                "code", "message", "details"}
            assert r.headers.get("connection", "").lower() != "close", path
            again = http.get("/health")
            assert again.extensions["network_stream"].get_extra_info("client_addr") == \
                connection, f"the connection was closed after {method} {path}"


def test_a_local_client_cannot_name_its_address(server: Server) -> None:
    """uvicorn believed X-Forwarded-For from any local client by default; a server
    believes it only from AGENTOS_TRUSTED_PROXIES (none here)."""
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        r = http.post("/api/v1/auth/login", json={"username": "x", "password": "y"},
                      headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
        assert r.status_code == 401
        entries = http.get("/api/v1/audit", params={"action": "auth.login", "outcome": "denied"},
                           headers={"Authorization": f"Bearer {server.token}"}).json()
    assert entries["entries"][0]["ip"] == "127.0.0.1"
