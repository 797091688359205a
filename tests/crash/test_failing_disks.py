"""Failing storage under a real server: a SQLite file removed or replaced under it, a
database that takes no writes (a read-only file, a read-only PostgreSQL). Every change
gets one clear 503 naming the cause, reads go on where they can, /ready says not
writable, and nothing of the driver's text reaches a client."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from agentos.errors import AgentOSError
from agentos.store import Store, errors, open_store
from tests import pg
from tests.acceptance.conftest import ADMIN_PASSWORD, Server, admin_token, environment, start

WAIT = 15.0  # seconds for a server to notice a change of its database


def serve(url: str, cwd: Path) -> Server:
    server = start("serve", cwd, environment(AGENTOS_DATABASE_URL=url))
    server.token = admin_token(server.url)
    return server


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30.0,
                        headers={"Authorization": f"Bearer {server.token}"})


def changes(http: httpx.Client) -> list[httpx.Response]:
    """A change of each kind: an event, a lock, a task, a login."""
    return [http.post("/api/v1/events", json={"type": "disk.test", "payload": {"n": 1}}),
            http.post("/api/v1/locks/device:x/acquire", json={"owner": "me"}),
            http.post("/api/v1/subscriptions", json={"name": "s1"}),
            http.post("/api/v1/auth/login", json={"username": "admin",
                                                  "password": ADMIN_PASSWORD})]


def assert_refused(answers: list[httpx.Response], code: str) -> None:
    for r in answers:
        assert r.status_code == 503, (r.request.url, r.text)
        assert r.json()["error"]["code"] == code, r.text
        assert r.json()["error"]["details"] == {}  # no driver text, no "reason"
        for driver_text in ("attempt to write", "readonly database", "read-only transaction",
                            "sqlite", "psycopg", "sqlstate"):
            assert driver_text not in r.text.lower(), r.text


def wait_for(http: httpx.Client, code: str) -> None:
    """Until an event append is refused with ``code`` (a server may first see its pooled
    connections break: 503 database_unavailable)."""
    deadline = time.monotonic() + WAIT
    while True:
        r = http.post("/api/v1/events", json={"type": "disk.test"})
        if r.status_code == 503 and r.json()["error"]["code"] == code:
            return
        assert r.status_code in (201, 503), r.text
        assert time.monotonic() < deadline, f"still {r.status_code} {r.text}"
        time.sleep(0.1)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    shutil.copyfile(sqlite_template, tmp_path / "agentos.db")
    return f"sqlite:///{tmp_path / 'agentos.db'}"


def test_a_removed_sqlite_file_is_noticed(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "agentos.db"
    first = serve(sqlite_url, tmp_path)
    try:
        with client(first) as http:
            assert http.post("/api/v1/events", json={"type": "disk.test"}).status_code == 201
            for leftover in tmp_path.glob("agentos.db*"):
                leftover.unlink()
            # the writes that were answered 201 and lost with the file are refused now
            assert_refused(changes(http), "database_unavailable")
            assert "removed" in http.post("/api/v1/events", json={"type": "a.b"}
                                          ).json()["error"]["message"]
            ready = http.get("/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["error"]["details"]["database"]["problem"] == \
                "database_unavailable"
            assert not path.exists()  # no empty database made in its place
            # a new server makes a new database there: the first one still refuses
            second = serve(sqlite_url, tmp_path)
            try:
                with client(second) as fresh:
                    assert fresh.post("/api/v1/events",
                                      json={"type": "disk.test"}).status_code == 201
                r = http.post("/api/v1/events", json={"type": "disk.test"})
                assert r.status_code == 503 and "replaced" in r.json()["error"]["message"]
            finally:
                second.stop()
    finally:
        first.stop()
    log = first.output()
    assert "was removed under this process" in log and "action=database_file_gone" in log
    assert log.count("was removed under this process") == 1  # said once, not per request


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` refuses writes, even to root (immutable), else by its mode."""
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a file read-only for root here: {done.stderr!r}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)


def test_a_read_only_sqlite_file(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "agentos.db"
    before = serve(sqlite_url, tmp_path)
    try:
        with client(before) as http:
            assert http.post("/api/v1/events", json={"type": "disk.test"}).status_code == 201
        token = before.token
    finally:
        before.stop()
    with read_only(path):
        after = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=sqlite_url))
        after.token = token  # a login is a change: it is refused now
        try:
            with client(after) as http:
                # reads go on, changes are refused as read-only
                assert len(http.get("/api/v1/events").json()["events"]) == 1
                assert_refused(changes(http), "database_read_only")
                ready = http.get("/ready")
                assert ready.status_code == 503
                assert ready.json()["error"]["details"]["database"] == {
                    "dialect": "sqlite", "reachable": True, "writable": False,
                    "problem": "database_read_only"}
        finally:
            after.stop()


def test_a_read_only_postgres_database(pg_cluster: pg.Cluster, pg_template: str,
                                       tmp_path: Path) -> None:
    name = f"agentos_ro_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    pg_cluster.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    server = serve(pg_cluster.url(name), tmp_path)
    try:
        with client(server) as http:
            assert http.post("/api/v1/events", json={"type": "disk.test"}).status_code == 201
            # as a standby or an operator's default_transaction_read_only would
            pg_cluster.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
            pg_cluster.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                               f"WHERE datname = '{name}'")
            wait_for(http, "database_read_only")
            assert_refused(changes(http), "database_read_only")
            assert len(http.get("/api/v1/events").json()["events"]) == 1
            ready = http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["error"]["details"]["database"]["problem"] == \
                "database_read_only"
            # writable again: served again
            pg_cluster.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
            pg_cluster.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                               f"WHERE datname = '{name}'")
            deadline = time.monotonic() + WAIT
            while http.post("/api/v1/events", json={"type": "disk.test"}).status_code != 201:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            ready = http.get("/ready")
            assert ready.status_code == 200, ready.text
    finally:
        server.stop()


async def begun_now(store: Store, n: int = 3) -> None:
    """``n`` sessions opened now and given back to the store's pool."""
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(n):
            conn = await stack.enter_async_context(store.read())
            await conn.execute(text("SELECT 1"))


async def a_change(store: Store) -> str | None:
    """A change through the store's pool: None if taken, else the refusal's code."""
    try:
        async with store.write() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except AgentOSError as exc:
        return exc.code
    return None


async def test_postgres_sessions_begun_read_only_are_dropped(pg_cluster: pg.Cluster,
                                                             pg_template: str) -> None:
    """A PostgreSQL session keeps the default_transaction_read_only it began with. Once
    the database takes changes again, the pool's sessions begun while it did not are not
    used for a second change, nor believed by /ready; no one has to end them by hand."""
    name = f"agentos_ro_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    pg_cluster.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    pg_cluster.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    stores = [open_store(pg_cluster.url(name)) for _ in range(3)]
    probe, changes, ready = stores
    try:
        assert await probe.unwritable() == errors.READ_ONLY
        assert await a_change(probe) == errors.READ_ONLY
        await begun_now(changes)
        await begun_now(ready)
        pg_cluster.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
        # the first change meets a session begun read-only; it drops them all
        assert await a_change(changes) == errors.READ_ONLY
        assert await a_change(changes) is None
        assert await ready.unwritable() is None
    finally:
        for store in stores:
            await store.close()


async def session(store: Store) -> int:
    async with store.read() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_read_only_postgres_database_drops_sessions_seldom(
        pg_cluster: pg.Cluster, pg_template: str) -> None:
    """While the database stays read-only every change is refused: the pool's sessions
    are dropped at the first refusal, not again at each (the reads after it would each
    open a session)."""
    name = f"agentos_ro_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    pg_cluster.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    pg_cluster.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    store = open_store(pg_cluster.url(name))
    try:
        first = await session(store)
        assert await a_change(store) == errors.READ_ONLY  # drops the pool's sessions
        second = await session(store)
        assert second != first
        for _ in range(3):
            assert await a_change(store) == errors.READ_ONLY
            assert await store.unwritable() == errors.READ_ONLY
        assert await session(store) == second
    finally:
        await store.close()


async def test_postgres_sessions_ended_by_the_server_do_not_make_it_unreachable(
        pg_cluster: pg.Cluster, pg_template: str) -> None:
    """Sessions the server ended (a restart, pg_terminate_backend) sit in the pool until
    used: /ready's check does not count one as the database being unreachable."""
    name = f"agentos_gone_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    pg_cluster.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    store = open_store(pg_cluster.url(name))
    try:
        await begun_now(store)
        pg_cluster.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           f"WHERE datname = '{name}'")
        await store.ping()
        assert await store.unwritable() is None
    finally:
        await store.close()
