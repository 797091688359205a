"""``agentos db``: the database schema, and the checks ``serve`` and ``demo`` run first.

The store and Alembic are imported inside the functions: they take about a
second to import, which every ``agentos agents ...`` call would pay otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentos.cli import options, output
from agentos.config import Settings
from agentos.errors import NotFound, Unavailable

if TYPE_CHECKING:
    from agentos.store.schema import SchemaState

log = logging.getLogger("agentos.cli")

app = typer.Typer(help="Manage the database schema (AGENTOS_DATABASE_URL).",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)


@app.command("upgrade")
def upgrade_command(json: options.Json = False) -> None:
    """Bring the database schema to the version this AgentOS needs; safe to run again."""
    url = options.settings().database_url
    before, after = upgrade(url)
    if json:
        output.emit_json({"database": redact(url), "before": before.current,
                          "current": after.current, "head": after.head})
        return
    if before.current == after.current:
        typer.echo(f"database at revision {after.current} (head)")
    else:
        typer.echo(f"upgraded from {before.current or 'empty'} to {after.current}")


@app.command("current")
def current_command(json: options.Json = False) -> None:
    """Show the database's schema revision and the one this AgentOS needs."""
    url = options.settings().database_url
    require_database(url)
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


Force = Annotated[bool, typer.Option("--force", help="Replace what is there already.")]


@app.command("backup")
def backup_command(file: Annotated[Path, typer.Argument(help="The backup file to write.")],
                   force: Force = False, json: options.Json = False) -> None:
    """Back up the whole installation into FILE while it keeps running.

    SQLite: the online backup API, a consistent copy of the database file.
    PostgreSQL: pg_dump's custom format (needs PostgreSQL's client tools).
    """
    from agentos import backup

    url = options.settings().database_url
    require_database(url)  # copying a file that is not there would make an empty one
    backup.check_backup(file, overwrite=force)
    if not json:
        typer.echo(f"backing up {redact(url)} to {file} ...", err=True)
    with reaching(url):
        report = backup.backup(url, file, overwrite=force)
    _report("backed up", redact(url), f"to {file}", report, json)


@app.command("restore")
def restore_command(file: Annotated[Path, typer.Argument(help="A file `db backup` wrote.")],
                    force: Annotated[bool, typer.Option(
                        "--force", help="Replace the tables of a database that has some.")
                    ] = False, json: options.Json = False) -> None:
    """Restore a backup into AGENTOS_DATABASE_URL: an empty database (or, with --force,
    one whose tables are replaced). Stop its servers and workers first."""
    from agentos import backup

    url = options.settings().database_url
    with reaching(url):
        backup.check_restore(file, url, replace=force)
    with reaching(url), _progress(f"restoring {file}", quiet=json) as advance:
        report = backup.restore(file, url, replace=force, progress=advance)
    _report("restored", str(file), "into " + redact(url), report, json)
    now = state(url)
    if not json and not now.up_to_date:
        typer.echo(f"the schema is at {now.current}, this AgentOS needs {now.head}: run "
                   "`agentos db upgrade`", err=True)


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Any]:
    """A line saying the work began, then a progress bar on stderr once the copy reports
    (done, total) pages (a SQLite restore does; pg_restore reports nothing)."""
    if quiet:
        yield None
        return
    typer.echo(f"{label} ...", err=True)
    with ExitStack() as stack:
        bars: list[Any] = []

        def advance(done: int, total: int) -> None:
            if not bars:
                bars.append(stack.enter_context(typer.progressbar(
                    length=max(total, 1), label="pages copied", file=sys.stderr)))
            bars[0].update(done - bars[0].pos)

        yield advance


def _report(verb: str, source: str, target: str, report: Any, json: bool) -> None:
    if json:
        output.emit_json(report.to_dict())
        return
    typer.echo(f"{verb} {source} {target} (schema {report.revision or 'empty'}): "
               f"{report.rows:,} rows in {len(report.counts)} tables, "
               f"{_size(report.bytes)}, {report.seconds:.1f} s")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


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


def ensure_current(settings: Settings, *, create: bool = False) -> None:
    """Stop unless the schema is current, upgrading it first where the settings allow.
    Only ``create`` (serve, demo) may make a SQLite file that is not there yet."""
    if not create:
        require_database(settings.database_url)
    now = state(settings.database_url)
    if now.up_to_date:
        return
    if not settings.should_auto_upgrade():
        raise Unavailable(
            f"the database schema is at {now.current or 'empty'}, this AgentOS needs "
            f"{now.head}: run `agentos db upgrade`",
            code="schema_out_of_date", details={"current": now.current, "head": now.head})
    upgrade(settings.database_url)


def require_database(url: str) -> None:
    """Stop when ``url`` names a SQLite file that does not exist: opening it would make
    an empty database that serves nothing. Only ``serve``, ``demo`` and ``db upgrade``
    create one."""
    from agentos import store

    path = store.missing_file(url)
    if path is not None:
        raise NotFound(
            f"no database at {path}: set AGENTOS_DATABASE_URL to the database your server "
            f"uses (e.g. sqlite:///{path}), or create one here with `agentos db upgrade`",
            code="database_not_found", details={"path": path})


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
