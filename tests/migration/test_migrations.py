"""The migration tree reproduces tables.py exactly, on both backends, and can go down and up."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, MetaData, Table, create_engine, func, insert, select
from sqlalchemy.pool import NullPool

from agentos import agent_spec, registry
from agentos.store import open_store, schema, sync_url
from agentos.store.tables import agent_versions, metadata, unmodelled


def test_one_head() -> None:
    heads = ScriptDirectory.from_config(schema.alembic_config("")).get_heads()
    assert heads == [schema.head()]  # (read from the files without Alembic: the same)


def test_upgrade_is_idempotent_and_matches_the_tables(empty_database_url: str) -> None:
    assert schema.state(empty_database_url).current is None
    assert schema.upgrade(empty_database_url).up_to_date
    assert schema.upgrade(empty_database_url).up_to_date  # a second run changes nothing
    engine = create_engine(sync_url(empty_database_url), poolclass=NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "include_name": _modelled})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []


def _modelled(name: str | None, kind: str, parents: dict[str, str | None]) -> bool:
    return not unmodelled(name, parents.get("table_name") or name)


def test_downgrade_and_upgrade_with_data(database_url: str) -> None:
    async def add() -> None:
        store = open_store(database_url)
        await registry.create(store, agent_spec.from_object(
            {"name": "a", "version": "1.0.0", "handler": {"type": "python", "target": "m:f"}}))
        await store.close()

    asyncio.run(add())
    assert schema.downgrade(database_url, "base").current is None
    assert schema.upgrade(database_url).up_to_date
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(agent_versions)).scalar() == 0
    engine.dispose()


# rows as the tables first held them (revision 0008: agents, events, tasks, locks and
# audit exist); each later step must keep them, readable with the columns they had
OLD = "0008"
AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ROWS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "agent_versions": ("id", [{
        "id": 1, "name": "a", "version": "1.0.0", "sort_key": "1.0.0", "status": "published",
        "definition": {"name": "a", "version": "1.0.0", "note": "é ✓"}, "created_at": AT,
        "updated_at": AT, "published_at": AT}]),
    "events": ("seq", [{
        "seq": n, "id": f"00000000-0000-7000-8000-00000000000{n}", "type": "order.placed",
        "source": "test", "payload": {"n": n, "big": 2**40}, "priority": 2,
        "correlation_id": f"c{n}", "created_at": AT} for n in (1, 2)]),
    "tasks": ("id", [{
        "id": f"00000000-0000-7000-9000-00000000000{n}", "agent": "a",
        "agent_version": "1.0.0", "input": {"n": n}, "priority": 2, "status": status,
        "attempt": 1 if status != "pending" else 0, "retry_base": 0, "max_retries": 3,
        "timeout_s": 30.0, "run_at": AT, "cancel_requested": False, "correlation_id": f"t{n}",
        "output": {"ok": True} if status == "succeeded" else None, "created_at": AT,
        "updated_at": AT, "finished_at": AT if status == "succeeded" else None}
        for n, status in ((1, "pending"), (2, "succeeded"))]),
    "locks": ("resource", [{
        "resource": "db:orders", "type": "mutex", "token": 7, "owner": "w1", "priority": 0,
        "acquired_at": AT, "expires_at": AT, "metadata": {"why": "test"}, "updated_at": AT}]),
    "audit_log": ("seq", [{
        "seq": 1, "at": AT, "actor": "user:admin", "actor_role": "admin",
        "action": "agents.create", "outcome": "ok", "resource_type": "agent",
        "resource_id": "a", "details": {"version": "1.0.0"}, "prev_hash": "0" * 64,
        "hash": "f" * 64}]),
}


def _table(conn: Connection, name: str) -> Table:
    """The table as the database holds it now, its JSON and time columns read as the
    store reads them."""
    reflected = Table(name, MetaData(), autoload_with=conn)
    typed = {c.name: c for c in metadata.tables[name].columns}
    return Table(name, MetaData(), *[
        Column(c.name, typed[c.name].type if c.name in typed else c.type)
        for c in reflected.columns])


def _same_rows(conn: Connection) -> None:
    for name, (key, rows) in ROWS.items():
        table = _table(conn, name)
        got = [r._asdict() for r in conn.execute(select(table).order_by(table.c[key]))]
        assert len(got) == len(rows), name
        for old, new in zip(rows, got, strict=True):
            assert {k: new[k] for k in old} == old, name


def test_rows_survive_every_step_from_an_old_revision(empty_database_url: str) -> None:
    script = ScriptDirectory.from_config(schema.alembic_config(""))
    steps = [r.revision for r in script.walk_revisions(OLD, "head")][::-1][1:]
    assert steps and steps[-1] == schema.head()
    schema.upgrade(empty_database_url, OLD)
    engine = create_engine(sync_url(empty_database_url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for name, (_, rows) in ROWS.items():
                conn.execute(insert(_table(conn, name)), rows)
        for step in steps:  # one revision at a time: every step keeps them
            schema.upgrade(empty_database_url, step)
            with engine.connect() as conn:
                _same_rows(conn)
    finally:
        engine.dispose()
    assert schema.state(empty_database_url).up_to_date

    async def read() -> None:  # and the store at head reads them
        store = open_store(empty_database_url)
        try:
            async with store.read() as conn:
                for name, (key, rows) in ROWS.items():
                    table = metadata.tables[name]
                    got = (await conn.execute(select(table).order_by(table.c[key]))).all()
                    assert [getattr(r, key) for r in got] == [r[key] for r in rows], name
                    for old, new in zip(rows, got, strict=True):
                        assert {k: getattr(new, k) for k in old} == old, name
        finally:
            await store.close()

    asyncio.run(read())


def test_route_patterns_start_with_the_triggers_published_before(
        empty_database_url: str) -> None:
    """0027 fills route_patterns from the versions published then: an event a trigger of
    theirs names is queued for routing from the first append on, a draft's is not."""
    schema.upgrade(empty_database_url, "0026")
    engine = create_engine(sync_url(empty_database_url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            versions = _table(conn, "agent_versions")
            triggers = _table(conn, "agent_triggers")
            conn.execute(insert(versions), [
                {"id": n, "name": name, "version": "1.0.0", "sort_key": "1.0.0",
                 "status": status, "definition": {}, "created_at": AT, "updated_at": AT}
                for n, name, status in ((1, "a", "published"), (2, "b", "draft"))])
            conn.execute(insert(triggers), [
                {"agent_version_id": v, "position": p, "event_glob": glob, "priority": 5,
                 "filter": {}} for v, p, glob in ((1, 0, "alert_x.*"), (1, 1, "task.?ailed"),
                                                   (1, 2, "alert_x.*"), (2, 0, "*"))])
        schema.upgrade(empty_database_url)
        with engine.connect() as conn:
            patterns = _table(conn, "route_patterns")
            got = sorted(r[0] for r in conn.execute(select(patterns.c.type_like)))
        assert got == ["alert\\_x.%", "task._ailed"]
    finally:
        engine.dispose()
