"""Locks with real processes: 8 contenders never overlap and see growing tokens; a
SIGKILLed holder's lease lapses to the next waiter; a server restart keeps the holder,
its token and the queue; waiters are served by priority."""

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentos.errors import Conflict
from agentos.sdk import Client
from tests.acceptance.conftest import Server, admin_token, environment, start
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 8
EACH = 200


@pytest.fixture
def server(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    running = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=database_url,
                                                   AGENTOS_LOG_LEVEL="warning"))
    try:
        # the SDK here and in spawned contenders sends an admin's token
        monkeypatch.setenv("AGENTOS_TOKEN", admin_token(running.url))
        yield running
    finally:
        running.stop()


def spawn(*args: str, output: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT,
                            env={**environment(), "PYTHONPATH": str(ROOT),
                                 "AGENTOS_TOKEN": os.environ.get("AGENTOS_TOKEN", "")},
                            stdout=subprocess.PIPE if output else None)


@pytest.mark.timeout(900)  # 1,600 hand-overs between processes on a shared, busy machine
def test_eight_processes_never_hold_at_once(server: Server, database_url: str,
                                            tmp_path: Path) -> None:
    # half through the server (SDK), half straight on the database
    procs = [spawn("-m", "tests.crash.lock_client", "http" if n % 2 else "db",
                   server.url if n % 2 else database_url, f"p{n}", str(EACH),
                   str(tmp_path / f"holds-{n}.log")) for n in range(PROCESSES)]
    for p in procs:
        assert p.wait(timeout=850) == 0
    holds = sorted((float(start), float(end), int(token))
                   for n in range(PROCESSES)
                   for token, start, end in (line.split() for line in
                                             (tmp_path / f"holds-{n}.log").read_text()
                                             .splitlines()))
    assert len(holds) == PROCESSES * EACH
    for (_, end, token), (begin, _, next_token) in itertools.pairwise(holds):
        assert end <= begin, "two holders at once"
        assert next_token > token, "tokens must grow with every grant"


def _acquire_in_thread(url: str, owner: str, priority: int, results: list[tuple[str, Any]],
                       release: bool = True) -> threading.Thread:
    def run() -> None:
        with Client(url) as client:
            got = client.acquire_lock("device:x", owner, priority=priority, ttl_s=60,
                                      wait_s=60)
            results.append((owner, got))
            if release and got.granted:
                time.sleep(0.05)
                client.release_lock("device:x", owner, got.token)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _queued(client: Client, n: int) -> list[str]:
    def queued() -> list[str]:
        owners = [w.owner for w in client.get_lock("device:x").queue]
        return owners if len(owners) >= n else []

    return eventually(queued, 20, "the waiters to queue", interval=0.02)


def test_waiters_are_granted_by_priority(server: Server) -> None:
    results: list[tuple[str, Any]] = []
    with Client(server.url) as client:
        held = client.acquire_lock("device:x", "holder", ttl_s=60)
        threads = []
        for n, priority in enumerate((2, 9, 5)):
            threads.append(_acquire_in_thread(server.url, f"p{priority}", priority, results))
            _queued(client, n + 1)
        assert _queued(client, 3) == ["p9", "p5", "p2"]
        client.release_lock("device:x", "holder", held.token)
    for t in threads:
        t.join(60)
    assert [owner for owner, _ in results] == ["p9", "p5", "p2"]
    assert [got.token for _, got in results] == [2, 3, 4]


def test_a_killed_holders_lease_lapses_to_the_next_waiter(server: Server) -> None:
    ttl = 2.0
    holder = spawn("-m", "tests.crash.lock_holder", server.url, "device:x", "doomed", str(ttl),
                   output=True)
    assert holder.stdout is not None
    token = int(holder.stdout.readline())
    holder.stdout.close()
    results: list[tuple[str, Any]] = []
    waiter = _acquire_in_thread(server.url, "next", 5, results, release=False)
    with Client(server.url) as client:
        _queued(client, 1)
        killed = time.monotonic()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        waiter.join(30)
        granted = time.monotonic()
        [(_, got)] = results
        assert got.granted and got.token == token + 1
        assert granted - killed <= ttl + 1.0
        with pytest.raises(Conflict):  # the dead holder's late release
            client.release_lock("device:x", "doomed", token)
        assert client.get_lock("device:x").holder.owner == "next"
        types = [e.type for e in client.list_events(type="lock.*").events]
        assert types == ["lock.acquired", "lock.queued", "lock.expired", "lock.acquired"]


def test_holder_token_and_queue_survive_a_server_restart(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = environment(AGENTOS_DATABASE_URL=database_url, AGENTOS_LOG_LEVEL="warning")
    first = start("serve", tmp_path, env)
    monkeypatch.setenv("AGENTOS_TOKEN", admin_token(first.url))  # kept across the restart
    results: list[tuple[str, Any]] = []
    try:
        with Client(first.url) as client:
            held = client.acquire_lock("device:x", "holder", ttl_s=120)
            waiters = [_acquire_in_thread(first.url, "low", 3, results)]
            _queued(client, 1)
            waiters.append(_acquire_in_thread(first.url, "high", 8, results))
            assert _queued(client, 2) == ["high", "low"]
        first.process.kill()  # SIGKILL: the long-polls break; the SDK asks again
        first.process.wait()
        port = first.url.rsplit(":", 1)[1]
        second = subprocess.Popen([sys.executable, "-m", "agentos.cli.main", "serve", "--port",
                                   port], cwd=tmp_path, env=env)
        try:
            with Client(first.url) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        client.health()
                        break
                    except Exception:
                        assert time.monotonic() < deadline
                        time.sleep(0.05)
                shown = client.get_lock("device:x")
                assert shown.holder.owner == "holder"
                assert shown.holder.token == held.token
                assert [w.owner for w in shown.queue] == ["high", "low"]
                assert results == []
                client.release_lock("device:x", "holder", held.token)
                for w in waiters:
                    w.join(60)
        finally:
            second.terminate()
            second.wait(15)
    finally:
        first.stop()
    assert [(owner, got.token) for owner, got in results] == [("high", 2), ("low", 3)]
