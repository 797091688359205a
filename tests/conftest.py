"""Fixtures shared by every test: databases on both backends, stores, API clients.

Every storage-touching test takes ``database_url`` (or ``store``/``api``) and so
runs twice, with ids ``sqlite`` and ``postgres``. Each test gets its own
database: a copy of a migrated template file on SQLite, ``CREATE DATABASE ...
TEMPLATE`` on PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from agentos import server
from agentos.config import Settings
from agentos.store import Store, open_store, schema
from tests import pg

BACKENDS = ["sqlite", "postgres"]
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    cluster = pg.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: pg.Cluster) -> str:
    name = f"agentos_template_{os.getpid()}"
    pg_cluster.execute(f"DROP DATABASE IF EXISTS {name}")
    pg_cluster.execute(f"CREATE DATABASE {name}")
    schema.upgrade(pg_cluster.url(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "agentos.db"
    schema.upgrade(f"sqlite:///{path}")
    return path


def _new_pg_database(cluster: pg.Cluster, template: str | None) -> str:
    name = f"agentos_test_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    cluster.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return cluster.url(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database migrated to head, on each backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "agentos.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    cluster: pg.Cluster = request.getfixturevalue("pg_cluster")
    return _new_pg_database(cluster, request.getfixturevalue("pg_template"))


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database with no schema at all, on each backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return _new_pg_database(request.getfixturevalue("pg_cluster"), None)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = open_store(database_url)
    yield s
    await s.close()


ADMIN_PASSWORD = "admin-password-for-tests"  # the first admin of every test app
USER_PASSWORD = "user-password-for-tests"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # failed logins are not slowed here (tests/api/test_logins.py sets its own policy)
    return Settings(database_url=database_url, admin_password=ADMIN_PASSWORD,  # type: ignore[call-arg]
                    login_max_delay_s=0, _env_file=None)


@pytest.fixture
async def app(settings: Settings, store: Store) -> AsyncIterator[FastAPI]:
    """The app, started (its lifespan has run: the first admin exists)."""
    app = server.create(settings, store)
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    """An HTTP client talking to ``app`` in-process (httpx's ASGI transport)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://agentos.test", headers=headers)


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    r = await client.post("/api/v1/auth/login", json={"username": username,
                                                       "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as the first admin."""
    async with client_for(app) as client:
        client.headers["Authorization"] = f"Bearer {await login(client, 'admin', ADMIN_PASSWORD)}"
        yield client


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credential."""
    async with client_for(app) as client:
        yield client


@pytest.fixture
async def as_role(app: FastAPI, api: httpx.AsyncClient
                  ) -> AsyncIterator[Callable[[str], Awaitable[httpx.AsyncClient]]]:
    """``await as_role("viewer")``: a client logged in as a new user with that role."""
    async with AsyncExitStack() as stack:
        async def make(role: str) -> httpx.AsyncClient:
            name = f"{role}-{next(_counter)}"
            r = await api.post("/api/v1/users", json={"username": name, "role": role,
                                                      "password": USER_PASSWORD})
            assert r.status_code == 201, r.text
            client = await stack.enter_async_context(client_for(app))
            client.headers["Authorization"] = f"Bearer {await login(client, name, USER_PASSWORD)}"
            return client

        yield make
