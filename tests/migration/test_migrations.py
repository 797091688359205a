"""The migration tree reproduces tables.py exactly, on both backends, and can go down and up."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, select
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
