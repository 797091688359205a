"""Schema migrations: Alembic, driven from code so ``agentos db upgrade`` needs no ini file.

Reading where a database stands (``state``, ``head``) does not import Alembic, which
costs a starting process about 0.4 s: every server and worker checks the schema as
it starts, and only an upgrade needs Alembic itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from agentos.errors import AgentOSError
from agentos.store import sync_url

if TYPE_CHECKING:
    from alembic.config import Config

    from agentos.store.base import Store

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r"^revision = \"([^\"]+)\"", re.MULTILINE)
_DOWN = re.compile(r"^down_revision = (?:\"([^\"]+)\"|None)", re.MULTILINE)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # passed as an attribute, not an option: options treat "%" as interpolation
    config.attributes["database_url"] = url
    return config


@cache
def head() -> str:
    """The newest revision: the one no migration file names as its down revision."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text("utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        assert revision and down, f"{path.name} names no revision or down_revision"
        revisions.add(revision.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = sorted(revisions - parents)
    assert len(heads) == 1, f"the migration tree must have one head, has {heads}"
    return heads[0]


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def state(url: str) -> SchemaState:
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            current = (conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
                       if inspect(conn).has_table(VERSION_TABLE) else None)
    finally:
        engine.dispose()
    return SchemaState(current, head())


def upgrade(url: str, revision: str = "head") -> SchemaState:
    """Bring the database to ``revision``; a no-op when it is there already."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
    return state(url)


def downgrade(url: str, revision: str) -> SchemaState:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
    return state(url)


async def readiness(store: Store) -> dict[str, Any]:
    """The database as /ready shows it: which kind, whether it answers and takes
    changes (else ``problem``: a ``store.errors`` code), its schema against this code's
    head, and the connection pool. Writability is asked only of a current schema."""
    database: dict[str, Any] = {"dialect": store.dialect, "reachable": False,
                                "writable": False}
    schema: dict[str, Any] = {"current": None, "head": head(), "up_to_date": False}
    try:
        await store.ping()
        database["reachable"] = True
        async with store.read() as conn:
            current = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")
                                          )).scalar()
        schema.update(current=current, up_to_date=current == schema["head"])
        if schema["up_to_date"]:
            problem = await store.unwritable()
            database["writable"] = problem is None
            if problem:
                database["problem"] = problem
    except AgentOSError as exc:
        database["problem"] = exc.code
    return {"database": database, "schema": schema, "pool": store.pool_status()}
