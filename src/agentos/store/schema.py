"""Schema migrations: Alembic, driven from code so ``agentos db upgrade`` needs no ini file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from agentos.store import sync_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # passed as an attribute, not an option: options treat "%" as interpolation
    config.attributes["database_url"] = url
    return config


def head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("")).get_heads()
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
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return SchemaState(current, head())


def upgrade(url: str, revision: str = "head") -> SchemaState:
    """Bring the database to ``revision``; a no-op when it is there already."""
    command.upgrade(alembic_config(url), revision)
    return state(url)


def downgrade(url: str, revision: str) -> SchemaState:
    command.downgrade(alembic_config(url), revision)
    return state(url)
