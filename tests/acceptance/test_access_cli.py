"""Access from the command line: ``agentos login``/``logout``, ``users``, ``audit``, and
the first admin's password shown once by ``serve`` and ``demo``."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import httpx

from tests.acceptance.conftest import ADMIN_PASSWORD, Cli, Server, environment, start
from tests.contract.test_audit import tamper


def test_login_users_and_logout(server: Server, tmp_path: Path) -> None:
    config = tmp_path / "config"
    cli = Cli(tmp_path, environment(AGENTOS_URL=server.url, XDG_CONFIG_HOME=str(config)))
    # Given no credential, a command says what is missing
    refused = cli("agents", "list")
    assert refused.returncode == 2 and "needs a credential" in refused.stderr
    # When logging in, the token is kept in a file only its owner can read
    out = cli.ok("login", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    assert out.startswith(f"logged in to {server.url} as admin (admin)")
    kept = config / "agentos" / "credentials.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    cli.ok("agents", "list")
    # users: create, list, set-role, disable
    assert cli.ok("users", "create", "ana", "--role", "operator", "--password-stdin",
                  input="ana-password\n").strip() == "created ana (operator)"
    assert cli.ok("users", "set-role", "ana", "viewer").strip() == "changed ana (viewer)"
    assert cli.ok("users", "disable", "ana").strip() == "disabled ana (viewer, disabled)"
    listed = json.loads(cli.ok("users", "list", "--json"))
    assert [(u["username"], u["role"], u["active"]) for u in listed] == [
        ("admin", "admin", True), ("ana", "viewer", False)]
    table = cli.ok("users", "list").splitlines()
    assert table[0].split() == ["USERNAME", "ROLE", "ACTIVE", "EMAIL", "LAST", "LOGIN"]
    bad = cli("users", "set-role", "ana", "root")
    assert bad.returncode == 2
    # the audit log has each change, newest first
    actions = [e["action"] for e in json.loads(cli.ok("audit", "list", "--json"))]
    assert actions[:4] == ["users.change", "users.change", "users.create", "auth.login"]
    # an API key: printed once, then it is the credential of a script
    key = cli.ok("api-keys", "create", "ci", "--role", "viewer", "--expires-in-days", "1").strip()
    as_key = Cli(tmp_path, environment(AGENTOS_URL=server.url, AGENTOS_TOKEN=key))
    as_key.ok("agents", "list")
    assert "needs the operator role" in as_key("events", "emit", "x.y").stderr
    [listed_key] = json.loads(cli.ok("api-keys", "list", "--json"))
    assert key.startswith(listed_key["prefix"]) and listed_key["last_used_at"]
    assert json.loads(cli.ok("api-keys", "revoke", listed_key["id"], "--json")) == {
        "revoked": listed_key["id"]}
    assert "revoked" in as_key("agents", "list").stderr
    # sessions: the server fixture's login and this one, both admin's; one ended
    sessions = json.loads(cli.ok("sessions", "list", "--json"))
    assert [s["username"] for s in sessions] == ["admin", "admin"]
    assert cli.ok("sessions", "list").splitlines()[0].split()[:3] == ["ID", "USER", "ROLE"]
    first = cli("sessions", "list", "--username", "admin", "--limit", "1", "--json")
    assert [s["id"] for s in json.loads(first.stdout)] == [sessions[0]["id"]]
    assert first.stderr.strip() == ("more follow: agentos sessions list --username admin "
                                    f"--limit 1 --json --before {sessions[0]['id']}")
    rest = cli(*first.stderr.strip().removeprefix("more follow: agentos ").split())
    assert [s["id"] for s in json.loads(rest.stdout)] == [sessions[1]["id"]]
    assert rest.stderr == ""
    assert json.loads(cli.ok("sessions", "end", sessions[1]["id"], "--json")) == {
        "ended": sessions[1]["id"]}
    assert len(json.loads(cli.ok("sessions", "list", "--include-ended", "--json"))) == 2
    assert cli("sessions", "end", sessions[1]["id"]).returncode == 2
    cli.ok("users", "create", "bo", "--role", "viewer", "--password-stdin",
           input="bo-password\n")  # logs in after the logout below
    # When logging out, the token is revoked and forgotten
    assert cli.ok("logout").strip() == f"logged out of {server.url}"
    assert json.loads(kept.read_text()) == {}
    assert cli("agents", "list").returncode == 2
    # --json on login and logout: the API's answer and where the token is kept, never the
    # token itself; a logout with nothing kept says so
    bo = json.loads(cli.ok("login", "--username", "bo", "--password-stdin", "--json",
                           input="bo-password\n"))
    assert (bo["url"], bo["user"]["username"], bo["user"]["role"]) == (server.url, "bo", "viewer")
    assert "token" not in bo and bo["token_file"] == str(kept) and bo["expires_at"]
    assert json.loads(cli.ok("logout", "--json")) == {"url": server.url, "logged_out": True}
    assert json.loads(cli.ok("logout", "--json")) == {"url": server.url, "logged_out": False}


def test_audit_verify_finds_the_tampered_row(server: Server, database_url: str,
                                             tmp_path: Path) -> None:
    cli = Cli(tmp_path, environment(AGENTOS_URL=server.url, AGENTOS_TOKEN=server.token,
                                    AGENTOS_DATABASE_URL=database_url))
    for n in range(3):
        cli.ok("events", "emit", f"audited.{n}")
    out = cli.ok("audit", "verify")
    assert out.startswith("intact: 4 rows, head 4 "), out  # the login and 3 emits
    assert json.loads(cli.ok("audit", "verify", "--json"))["intact"] is True
    tamper(database_url, "UPDATE audit_log SET actor = 'user:someone' WHERE seq = 3")
    broken = cli("audit", "verify")
    assert broken.returncode == 2
    assert broken.stdout.strip() == ("broken at row 3: the row's content does not match its "
                                     "hash (2 rows before it are intact)")


def test_serve_shows_a_random_admin_password_once(database_url: str, tmp_path: Path) -> None:
    env = environment(AGENTOS_DATABASE_URL=database_url)
    del env["AGENTOS_ADMIN_PASSWORD"]
    first = start("serve", tmp_path, env)
    try:
        found = re.search(r"created user admin with password (\S+)", first.stdout.read_text())
        assert found, first.output()
        r = httpx.post(first.url + "/api/v1/auth/login",
                       json={"username": "admin", "password": found.group(1)})
        assert r.status_code == 200
    finally:
        first.stop()
    again = start("serve", tmp_path, env)
    try:
        assert "password" not in again.output()
    finally:
        again.stop()


def test_demo_shows_the_dashboard_and_the_admin_login(tmp_path: Path) -> None:
    env = environment()
    del env["AGENTOS_ADMIN_PASSWORD"]
    demo = start("demo", tmp_path, env)
    try:
        banner = demo.stdout.read_text()
        found = re.search(r"login\s+admin / (\S+)\s+\(created now, shown this once\)", banner)
        assert found and f"dashboard  {demo.url}/" in banner, banner
        with httpx.Client(base_url=demo.url) as http:
            token = http.post("/api/v1/auth/login", json={
                "username": "admin", "password": found.group(1)}).json()["token"]
            page = http.get("/", headers={"Authorization": f"Bearer {token}"})
            assert page.status_code == 200 and 'data-page="overview"' in page.text
    finally:
        demo.stop()


def test_passwd_changes_ones_own_password_and_ends_ones_sessions(
        server: Server, tmp_path: Path) -> None:
    admin = Cli(tmp_path, environment(AGENTOS_URL=server.url, AGENTOS_TOKEN=server.token))
    admin.ok("users", "create", "ana", "--role", "operator", "--password-stdin",
             input="ana-password\n")
    ana = Cli(tmp_path, environment(AGENTOS_URL=server.url,
                                    XDG_CONFIG_HOME=str(tmp_path / "ana-config")))
    ana.ok("login", "--username", "ana", "--password-stdin", input="ana-password\n")
    assert json.loads(ana.ok("users", "passwd", "--password-stdin", "--json",
                             input="ana-password\nana-password-2\n")) == {
        "password_changed": True}
    assert ana("agents", "list").returncode == 2  # the old token was revoked
    wrong = ana("users", "passwd", "--password-stdin", input="ana-password\nx-password-3\n")
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: ")
    ana.ok("login", "--username", "ana", "--password-stdin", input="ana-password-2\n")
    refused = ana("users", "passwd", "--password-stdin", input="ana-password\nx-password-3\n")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert ana.ok("users", "passwd", "--password-stdin",
                  input="ana-password-2\nana-password-3\n").strip() == (
        "password changed; log in again (agentos login)")
