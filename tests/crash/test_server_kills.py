"""A server SIGKILLed again and again while a client appends events and submits tasks:
after each kill a new server takes over the database, the client sends again what got
no answer (the same dedup and idempotency keys), and in the end every event and task
is there exactly once, and a reader paging the log sees each event once, in order. On
PostgreSQL a kill may leave holes in the sequence numbers (numbers taken by appends
that never committed): readers page past them."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import Server, admin_token, environment, start

KILLS = 3
AGENT = {"name": "k", "version": "1.0.0", "handler": {"type": "python", "target": "m:f"}}


def serve(url: str, cwd: Path) -> Server:
    return start("serve", cwd, environment(AGENTOS_DATABASE_URL=url,
                                           AGENTOS_LOG_LEVEL="warning"))


class Client:
    """Sends event n and task n in turn until stopped; remembers what got no answer."""

    def __init__(self) -> None:
        self.next = 0
        self.unanswered: list[int] = []

    def run(self, url: str, token: str, stop: threading.Event) -> None:
        with httpx.Client(base_url=url, timeout=5.0,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            for n in [*self.unanswered]:  # the server died before it answered these
                self._send(http, n)
                self.unanswered.remove(n)
            while not stop.is_set():
                n, self.next = self.next, self.next + 1
                try:
                    self._send(http, n)
                except httpx.TransportError:
                    self.unanswered.append(n)
                    return

    @staticmethod
    def _send(http: httpx.Client, n: int) -> None:
        r = http.post("/api/v1/events", json={"type": "kill.test", "dedup_key": f"e{n}",
                                              "payload": {"n": n}})
        assert r.status_code in (200, 201), r.text
        r = http.post("/api/v1/tasks", json={"agent": "k", "idempotency_key": f"t{n}",
                                             "input": {"n": n}})
        assert r.status_code in (200, 201), r.text


def pages(http: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a listing, 37 a page (page boundaries fall anywhere)."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = http.get(path, params={**params, "after_seq": after, "limit": 37}).json()
        out += page[key]
        if page["next_after_seq"] is None:
            return out
        after = page["next_after_seq"]


@pytest.mark.timeout(300)
def test_nothing_lost_or_doubled_across_server_kills(database_url: str, backend: str,
                                                     tmp_path: Path) -> None:
    rng = random.Random(7)
    server = serve(database_url, tmp_path)
    token = admin_token(server.url)
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/api/v1/agents", "/api/v1/agents/k/versions/1.0.0/publish"):
        assert httpx.post(f"{server.url}{path}", json=AGENT, headers=headers).is_success
    client = Client()
    try:
        for _ in range(KILLS):
            stop = threading.Event()
            sender = threading.Thread(target=client.run, args=(server.url, token, stop))
            sender.start()
            began, deadline = client.next, time.monotonic() + 20
            while client.next < began + 10:  # into the stream, then a kill at any moment
                assert time.monotonic() < deadline, "the client made no progress"
                time.sleep(0.02)
            time.sleep(rng.random() * 0.3)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            stop.set()
            sender.join(30)
            server = serve(database_url, tmp_path)
        stop = threading.Event()
        stop.set()
        client.run(server.url, token, stop)  # what the last kill left unanswered
        assert not client.unanswered
        sent = client.next
        with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as http:
            everything = pages(http, "/api/v1/events", "events")
            made = pages(http, "/api/v1/tasks", "tasks", agent="k")
    finally:
        server.stop()
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(set(seqs)), "an event read twice or out of order"
    logged = [e for e in everything if e["type"] == "kill.test"]
    assert sorted(e["payload"]["n"] for e in logged) == list(range(sent))  # each once
    assert sorted(t["input"]["n"] for t in made) == list(range(sent))
    created = {e["payload"]["task_id"] for e in everything if e["type"] == "task.created"}
    assert created == {t["id"] for t in made}  # each task's event, once
    holes = seqs[-1] - len(seqs)  # numbers taken by appends that never committed
    if backend == "sqlite":
        assert holes == 0
    print(f"{backend}: {KILLS} kills, {sent} events and {sent} tasks, none lost or doubled; "
          f"{holes} sequence numbers skipped")
