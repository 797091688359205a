"""``agentos db backup|restore``: a whole installation into a file and back into a fresh
database, on both backends, checked by counting every table's rows."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from agentos.sdk import Client
from agentos.store import backup as store_backup
from tests.acceptance.conftest import Cli, Server, environment, start

EVENTS = 60


def _populate(server: Server) -> None:
    with Client(server.url, token=server.token) as api:
        api.emit_batch([{"type": "backup.probe", "source": "test", "payload": {"n": n}}
                        for n in range(EVENTS)])
        api.create_user("ana", "ana-password-1234", role="operator")
        api.put_document("runbooks", "disk-full", "rotate the logs", title="Disk full")
        api.import_yaml((Path(__file__).parent / "data" / "qa-manager.yaml").read_text(),
                        publish=True)


def test_backup_restores_into_a_fresh_database_with_the_same_rows(
        server: Server, cli: Cli, empty_database_url: str, database_url: str,
        tmp_path: Path) -> None:
    # Given an installation with events, a user, a document, an agent and their audit rows
    _populate(server)
    backup = tmp_path / "agentos.backup"
    source = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
    # When it is backed up while its server runs, then restored into an empty database
    written = json.loads(source.ok("db", "backup", str(backup), "--json"))
    server.stop()
    after_stop = store_backup.contents(database_url)
    target = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    restored = json.loads(target.ok("db", "restore", str(backup), "--json"))
    # Then every table holds as many rows as the backup said it held
    assert restored["tables"] == written["tables"]
    assert store_backup.contents(empty_database_url).counts == written["tables"]
    assert restored["schema"] == written["schema"] == after_stop.revision
    counts = written["tables"]
    assert counts["events"] >= EVENTS and counts["users"] == 2
    assert counts["knowledge_documents"] == 1 and counts["agent_versions"] == 1
    # the tables only requests write are as the stopped source has them
    for table in ("events", "users", "knowledge_documents", "agent_versions", "credentials"):
        assert counts[table] == after_stop.counts[table], table
    # and the restored installation serves: its audit chain is intact, its users log in
    assert target.ok("audit", "verify").startswith("intact: ")
    copy = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    try:
        with Client(copy.url) as api:
            api.login("ana", "ana-password-1234")
            probes = api.list_events(type="backup.probe", limit=EVENTS + 1).events
            assert [e.payload["n"] for e in probes] == list(range(EVENTS))
            assert api.search_knowledge("logs")["documents"][0]["key"] == "disk-full"
    finally:
        copy.stop()


def test_a_backup_taken_under_writes_is_one_consistent_snapshot(
        server: Server, database_url: str, empty_database_url: str, tmp_path: Path) -> None:
    # Given a client appending events one by one while the backup runs
    stop = threading.Event()

    def append() -> None:
        with Client(server.url, token=server.token) as api:
            n = 0
            while not stop.is_set():
                api.emit("backup.burst", {"n": n})
                n += 1

    writer = threading.Thread(target=append)
    writer.start()
    try:
        source = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
        for _ in range(3):  # the writer is well under way by the last copy
            source.ok("db", "backup", str(tmp_path / "hot.backup"), "--force")
    finally:
        stop.set()
        writer.join(30)
    target = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    restored = json.loads(target.ok("db", "restore", str(tmp_path / "hot.backup"), "--json"))
    # Then the copy holds a prefix of the burst with no hole, and its audit chain holds
    server.stop()
    assert restored["tables"]["events"] > 0
    copy = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    try:
        with Client(copy.url) as api:
            api.login("admin", "admin-password-for-tests")
            burst = [e.payload["n"] for e in api.iterate(api.list_events, type="backup.burst")]
    finally:
        copy.stop()
    assert burst == list(range(len(burst)))
    assert target.ok("audit", "verify").startswith("intact: ")


def test_bad_backups_and_targets_are_refused_and_write_nothing(
        database_url: str, empty_database_url: str, backend: str, tmp_path: Path) -> None:
    source = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
    target = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    backup = tmp_path / "one.backup"
    source.ok("db", "backup", str(backup))
    before = backup.read_bytes()
    # an existing file is kept unless --force
    done = source("db", "backup", str(backup))
    assert (done.returncode, done.stderr) == (2, f"error: {backup} exists: pass --force to "
                                                 "replace it\n")
    assert backup.read_bytes() == before
    # a database that has a schema is not restored into unless --force
    done = source("db", "restore", str(backup))
    assert done.returncode == 2 and "already holds an AgentOS schema" in done.stderr
    source.ok("db", "restore", str(backup), "--force")
    # a missing file, a file that is no backup, a backup of the other kind
    for file, message in (
            (tmp_path / "missing", f"error: no backup file at {tmp_path / 'missing'}"),
            (tmp_path / "junk", f"error: {tmp_path / 'junk'} is neither a SQLite database nor "
                                "a pg_dump archive"),
            (tmp_path / "other", "backup and the database is")):
        if file.name == "junk":
            file.write_text("not a backup")
        if file.name == "other":
            file.write_bytes(b"PGDMP" if backend == "sqlite" else b"SQLite format 3\x00")
        done = target("db", "restore", str(file))
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert not store_backup.has_schema(empty_database_url)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_missing_pg_dump_is_one_line(database_url: str, tmp_path: Path) -> None:
    env = environment(AGENTOS_DATABASE_URL=database_url, PATH=str(tmp_path))
    done = Cli(tmp_path, env)("db", "backup", str(tmp_path / "x.backup"))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "error: pg_dump is not installed: install PostgreSQL's client tools (apt-get install "
        "postgresql-client)")
    assert not (tmp_path / "x.backup").exists()
