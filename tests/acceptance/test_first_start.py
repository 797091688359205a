"""A new user's first start: nothing created on a busy port, a lost admin password
reset on the database itself, and no command but serve, demo and db upgrade making
an empty database where none was."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentos.store import schema
from agentos.tasks import DEFAULT_CONCURRENCY
from tests.acceptance.conftest import ADMIN_PASSWORD, Cli, environment, start


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        yield int(taken.getsockname()[1])


def _no_admin_password() -> dict[str, str]:
    env = environment()
    del env["AGENTOS_ADMIN_PASSWORD"]  # a first start would print a random one
    return env


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_busy_port_fails_before_anything_is_created(
        empty_database_url: str, busy_port: int, tmp_path: Path, command: str) -> None:
    env = {**_no_admin_password(), "AGENTOS_DATABASE_URL": empty_database_url,
           "AGENTOS_AUTO_UPGRADE": "true"}
    done = Cli(tmp_path, env)(command, "--port", str(busy_port))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: cannot listen on 127.0.0.1:{busy_port}: ")
    assert "password" not in done.stdout + done.stderr
    # no schema, so no admin whose password would have been printed and lost
    assert not (tmp_path / "empty.db").exists()
    if not empty_database_url.startswith("sqlite"):
        assert schema.state(empty_database_url).current is None


def test_reset_password_works_on_the_database(database_url: str, tmp_path: Path) -> None:
    server = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
    try:
        cli = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
        printed = cli.ok("users", "reset-password", "admin")
        assert printed.startswith("new password for admin: ")
        password = printed.split(": ", 1)[1].split()[0]
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            def login(secret: str) -> httpx.Response:
                return http.post("/api/v1/auth/login",
                                 json={"username": "admin", "password": secret})
            assert login(ADMIN_PASSWORD).status_code == 401
            token = login(password).json()["token"]
            audit = http.get("/api/v1/audit", params={"action": "users.reset_password"},
                             headers={"Authorization": f"Bearer {token}"}).json()["entries"]
            assert [(e["actor"], e["resource_id"]) for e in audit] == [("local", "admin")]
            before = http.get("/api/v1/audit/verify",
                              headers={"Authorization": f"Bearer {token}"}).json()
            unknown = cli("users", "reset-password", "ghost")
            assert (unknown.returncode, unknown.stderr) == (2, "error: no user named ghost\n")
            after = http.get("/api/v1/audit/verify",
                             headers={"Authorization": f"Bearer {token}"}).json()
            assert after["intact"] and after["checked"] == before["checked"]
    finally:
        server.stop()


def test_only_serve_demo_and_db_upgrade_create_a_database(tmp_path: Path) -> None:
    cli = Cli(tmp_path, environment(AGENTOS_DATABASE_URL="sqlite:///./agentos.db"))
    missing = tmp_path / "agentos.db"
    for command in (["worker", "--burst"], ["audit", "verify"], ["db", "current"],
                    ["users", "reset-password", "admin"], ["db", "backup", "copy.db"]):
        done = cli(*command)
        assert done.returncode == 2, command
        assert done.stderr.count("\n") == 1, (command, done.stderr)  # one line
        assert done.stderr.startswith(f"error: no database at {missing}: set "
                                      "AGENTOS_DATABASE_URL"), (command, done.stderr)
        assert "agentos db upgrade" in done.stderr
        assert not missing.exists(), command
    assert not (tmp_path / "copy.db").exists()
    done = json.loads(cli.ok("db", "upgrade", "--json"))
    assert done["before"] is None and done["current"] == done["head"]
    assert missing.exists()
    again = json.loads(cli.ok("db", "upgrade", "--json"))
    assert again["before"] == again["current"] == done["head"]


def test_a_worker_says_what_it_serves(database_url: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
    shown = cli.ok("worker", "--burst", "--agents", "echo,wc", "--concurrency", "3")
    redacted = database_url.split("://")[0]
    assert shown.splitlines()[0].startswith(f"worker on {redacted}://")
    assert shown.splitlines()[0].endswith(": agents echo, wc, 3 tasks at once")
    assert cli.ok("worker", "--burst").splitlines()[0].endswith(
        f": every agent, {DEFAULT_CONCURRENCY} tasks at once")
