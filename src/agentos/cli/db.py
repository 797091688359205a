"""``agentos db``: the database schema, and the checks ``serve`` and ``demo`` run first.

The store and Alembic are imported inside the functions: they take about a
second to import, which every ``agentos agents ...`` call would pay otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from agentos.cli import options, output
from agentos.config import Settings
from agentos.errors import Unavailable

if TYPE_CHECKING:
    from agentos.store.schema import SchemaState

log = logging.getLogger("agentos.cli")

app = typer.Typer(help="Manage the database schema (AGENTOS_DATABASE_URL).",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)


@app.command("upgrade")
def upgrade_command() -> None:
    """Bring the database schema to the version this AgentOS needs; safe to run again."""
    url = options.settings().database_url
    before, after = upgrade(url)
    if before.current == after.current:
        typer.echo(f"database at revision {after.current} (head)")
    else:
        typer.echo(f"upgraded from {before.current or 'empty'} to {after.current}")


@app.command("current")
def current_command(json: options.Json = False) -> None:
    """Show the database's schema revision and the one this AgentOS needs."""
    url = options.settings().database_url
    now = state(url)
    if json:
        output.emit_json({"database": redact(url), "current": now.current, "head": now.head,
                          "up_to_date": now.up_to_date})
        return
    output.fields([
        ("database", redact(url)),
        ("current", now.current or "empty"),
        ("head", now.head),
        ("status", "up to date" if now.up_to_date else "behind: run `agentos db upgrade`"),
    ])


def state(url: str) -> SchemaState:
    from agentos.store import schema

    with reaching(url):
        return schema.state(url)


def upgrade(url: str) -> tuple[SchemaState, SchemaState]:
    """Upgrade to head; the states before and after."""
    from agentos.store import schema

    before = state(url)
    if before.up_to_date:
        return before, before
    with reaching(url):
        after = schema.upgrade(url)
    log.info("upgraded the database schema from %s to %s", before.current or "empty",
             after.current, extra={"action": "schema_upgraded"})
    return before, after


def ensure_current(settings: Settings) -> None:
    """Stop unless the schema is current, upgrading it first where the settings allow."""
    now = state(settings.database_url)
    if now.up_to_date:
        return
    if not settings.should_auto_upgrade():
        raise Unavailable(
            f"the database schema is at {now.current or 'empty'}, this AgentOS needs "
            f"{now.head}: run `agentos db upgrade`",
            code="schema_out_of_date", details={"current": now.current, "head": now.head})
    upgrade(settings.database_url)


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Driver and migration failures as one-line errors that name the database."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise Unavailable(f"cannot use the database at {redact(url)}: {reason}",
                          code="database_unavailable") from None
    except Exception as exc:
        # e.g. a revision from a newer AgentOS that this one does not know (Alembic is
        # imported only by an upgrade: importing it to check costs a start 0.4 s)
        command_error = getattr(sys.modules.get("alembic.util"), "CommandError", None)
        if command_error is not None and isinstance(exc, command_error):
            raise Unavailable(f"cannot migrate the database at {redact(url)}: {exc}",
                              code="migration_failed") from None
        raise


def redact(url: str) -> str:
    """The URL without its password, fit for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
