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
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from agentos.api.app import create_app
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


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process (httpx's ASGI transport)."""
    app = create_app(settings, store)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://agentos.test") as client:
        yield client
