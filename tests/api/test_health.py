import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from agentos import server
from agentos.config import Settings
from agentos.store import open_store, schema


async def test_health(api: httpx.AsyncClient) -> None:
    r = await api.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


async def test_ready_reports_database_schema_and_pool(api: httpx.AsyncClient,
                                                      backend: str) -> None:
    r = await api.get("/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["database"] == {"dialect": "sqlite" if backend == "sqlite" else "postgresql",
                                "reachable": True, "writable": True}
    assert body["schema"]["up_to_date"] and body["schema"]["current"] == schema.head()
    assert {"size", "checked_out"} <= set(body["pool"])


async def test_ready_fails_on_an_unmigrated_database(empty_database_url: str) -> None:
    store = open_store(empty_database_url)
    app = server.create(Settings(database_url=empty_database_url, _env_file=None),  # type: ignore[call-arg]
                     store)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            r = await client.get("/ready")
    finally:
        await store.close()
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "not_ready"
    assert "agentos db upgrade" in r.json()["error"]["message"]


async def test_ready_fails_when_the_database_is_unreachable(tmp_path: object) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    store = open_store(url)
    app = server.create(Settings(database_url=url, _env_file=None), store)  # type: ignore[call-arg]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            r = await client.get("/ready")
    finally:
        await store.close()
    assert r.status_code == 503
    assert r.json()["error"]["details"]["database"]["reachable"] is False


async def test_every_request_is_logged_with_method_path_status_and_duration(
        api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="agentos.http"):
        await api.get("/health")
        await api.get("/api/v1/events/nope")
    lines = [r for r in caplog.records if r.name == "agentos.http"]
    assert [(r.getMessage().split()[:3], r.status) for r in lines] == [  # type: ignore[attr-defined]
        (["GET", "/health", "200"], 200), (["GET", "/api/v1/events/nope", "404"], 404)]
    assert all(r.getMessage().endswith("ms") for r in lines)


def test_settings_come_from_the_environment_and_dotenv(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("AGENTOS_PORT=9123\nAGENTOS_LOG_LEVEL=debug\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTOS_PORT", raising=False)
    monkeypatch.setenv("AGENTOS_LOG_LEVEL", "warning")  # the environment wins over .env
    settings = Settings()
    assert settings.port == 9123 and settings.log_level == "warning"


def test_only_a_server_process_freezes_what_its_start_up_made(tmp_path: Path) -> None:
    """``gc.freeze()`` once the app is up, for ``agentos serve`` and uvicorn's factory
    only: an app made inside another process (a test, an embedding) leaves its
    collector alone."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    schema.upgrade(url)
    code = textwrap.dedent("""
        import asyncio, gc, sys
        from agentos import server
        from agentos.config import Settings

        async def frozen_while_up(own_process):
            app = server.create(Settings(database_url=sys.argv[1], _env_file=None),
                                own_process=own_process)
            async with app.router.lifespan_context(app):
                return gc.get_freeze_count()

        print(asyncio.run(frozen_while_up(False)), asyncio.run(frozen_while_up(True)))
    """)
    done = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    embedded, own = map(int, done.stdout.split()[-2:])
    assert embedded == 0 and own > 10_000, done.stdout
