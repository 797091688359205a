"""``agentos db`` and how ``agentos serve`` treats the schema it finds."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from agentos.store import schema
from tests.acceptance.conftest import Cli, environment, free_port, start


def test_db_upgrade_is_idempotent(empty_database_url: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    head = schema.head()
    assert cli.ok("db", "upgrade") == f"upgraded from empty to {head}\n"
    assert cli.ok("db", "upgrade") == f"database at revision {head} (head)\n"
    assert schema.state(empty_database_url).up_to_date
    current = json.loads(cli.ok("db", "current", "--json"))
    assert (current["current"], current["up_to_date"]) == (head, True)


@pytest.mark.parametrize("backend", ["postgres"])
def test_serve_refuses_an_empty_postgres_database(empty_database_url: str,
                                                  tmp_path: Path) -> None:
    # Given an empty PostgreSQL database and AGENTOS_AUTO_UPGRADE unset,
    # the server stops at once, saying which command to run
    cli = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    done = cli("serve", "--port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr == (f"error: the database schema is at empty, this AgentOS needs "
                           f"{schema.head()}: run `agentos db upgrade`\n")
    assert schema.state(empty_database_url).current is None


@pytest.mark.parametrize("backend", ["sqlite"])
def test_serve_upgrades_an_empty_sqlite_database(empty_database_url: str,
                                                 tmp_path: Path) -> None:
    server = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    try:
        ready = httpx.get(f"{server.url}/ready").json()
        assert ready["schema"] == {"current": schema.head(), "head": schema.head(),
                                   "up_to_date": True}
    finally:
        server.stop()
    assert "action=schema_upgraded" in server.output()


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = "postgresql://agentos:secret@127.0.0.1:1/agentos"
    done = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=url))("serve")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: cannot use the database at postgresql://agentos:***@127.0.0.1:1/agentos: ")
    assert len(done.stderr.splitlines()) == 1
