"""Whole-installation backups: SQLite's online backup API, PostgreSQL's pg_dump/pg_restore.

A backup is the database's own format, so it keeps everything the schema has (the
audit chain, sequences, full-text indexes): a SQLite file copied page by page in one
read transaction (WAL: writers go on meanwhile), or a ``pg_dump`` custom-format
archive taken from an exported snapshot. Each side counts the rows of every table
in the same snapshot the copy reads, so a backup reports exactly what it holds and a
restore can be checked against it. Moving data between the two backends is another
matter (export/import); a file of the other kind is refused.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from agentos.errors import Conflict, InvalidInput, NotFound, Unavailable
from agentos.store import dialect_of, sqlite, sync_url
from agentos.store.schema import VERSION_TABLE
from agentos.store.tables import metadata

Kind = Literal["sqlite", "postgresql"]
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
RESTORE_STEP_PAGES = 2048  # pages a SQLite restore copies between progress reports
PG_TOOL_TIMEOUT = 3600.0  # seconds pg_dump or pg_restore may take
Progress = Callable[[int, int], None]  # (done, total) in whatever unit the copy counts


@dataclass(frozen=True)
class Contents:
    """What a database (or the snapshot a backup read) holds: rows by table, its schema."""

    counts: dict[str, int]
    revision: str | None

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def kind_of_url(url: str) -> Kind:
    return "sqlite" if dialect_of(url) == "sqlite" else "postgresql"


def kind_of_file(path: Path) -> Kind | None:
    """What a backup file is, from its first bytes (None: neither)."""
    with path.open("rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    return None


def contents(url: str) -> Contents:
    """Rows by table of a database (our tables only), and its schema revision."""
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _count(conn)
    finally:
        engine.dispose()


def _count(conn: Connection) -> Contents:
    present = set(inspect(conn).get_table_names())
    counts = {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
              for t in metadata.sorted_tables if t.name in present}
    revision = (conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
                if VERSION_TABLE in present else None)
    return Contents(dict(sorted(counts.items())), revision)


def has_schema(url: str) -> bool:
    """Whether the database holds any of our tables (or a schema revision)."""
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    return bool(present & ({t.name for t in metadata.sorted_tables} | {VERSION_TABLE}))


# ------------------------------------------------------------------ backup


def backup(url: str, path: Path) -> Contents:
    """Copy the database at ``url`` into ``path`` (written whole, then renamed into
    place); returns what the copy holds."""
    partial = path.with_name(path.name + ".partial")
    try:
        if kind_of_url(url) == "sqlite":
            _sqlite_backup(url, partial)
            held = contents(f"sqlite:///{partial}")
        else:
            held = _pg_dump(url, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return held


def _sqlite_backup(url: str, target: Path) -> None:
    source_file = _sqlite_file(url)
    if not Path(source_file).exists():
        raise NotFound(f"no database file at {source_file}", code="database_not_found")
    # mode=rw: never create an empty database where the file was expected
    source = sqlite3.connect(f"file:{source_file}?mode=rw", uri=True)
    copy = sqlite3.connect(target)
    try:
        # one step: the whole copy reads one snapshot (a stepped copy restarts whenever
        # another process writes, which a busy server does all the time)
        source.backup(copy)
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot back up {source_file}: {exc}", code="backup_failed") from None
    finally:
        copy.close()
        source.close()


def _pg_dump(url: str, target: Path) -> Contents:
    """pg_dump from a snapshot this connection exports, counting rows in the same one."""
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            held = _count(conn)
            _pg_tool("pg_dump", url, ["--format=custom", "--no-owner", "--no-privileges",
                                      f"--snapshot={snapshot}", f"--file={target}"])
            conn.rollback()
    finally:
        engine.dispose()
    return held


# ----------------------------------------------------------------- restore


def restore(path: Path, url: str, replace: bool, progress: Progress | None = None) -> Contents:
    """Load the backup at ``path`` into the database at ``url``; with ``replace`` its
    tables are replaced, otherwise it must hold none of ours. Returns what it holds then."""
    check_restore(path, url, replace)
    if kind_of_url(url) == "sqlite":
        _sqlite_restore(path, url, progress)
    else:
        _pg_tool("pg_restore", url, ["--no-owner", "--no-privileges", "--single-transaction",
                                     "--exit-on-error", *(["--clean", "--if-exists"]
                                                          if replace else []), str(path)])
    return contents(url)


def check_restore(path: Path, url: str, replace: bool) -> None:
    """Refuse, before anything is written, a restore that cannot be right."""
    if not path.is_file():
        raise NotFound(f"no backup file at {path}", code="backup_not_found")
    found, wanted = kind_of_file(path), kind_of_url(url)
    if found is None:
        raise InvalidInput(f"{path} is neither a SQLite database nor a pg_dump archive",
                           code="not_a_backup")
    if found != wanted:
        raise InvalidInput(
            f"{path} is a {_NAMES[found]} backup and the database is {_NAMES[wanted]}: a "
            "backup is restored into the same kind of database", code="backup_kind_mismatch",
            details={"backup": found, "database": wanted})
    if not replace and has_schema(url):
        raise Conflict("the database already holds an AgentOS schema: restore into an empty "
                       "one, or pass --force to replace its tables", code="database_not_empty")


def _sqlite_restore(path: Path, url: str, progress: Progress | None) -> None:
    target = _sqlite_file(url)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        # the backup file changes under no one: a stepped copy never restarts
        source.backup(copy, pages=RESTORE_STEP_PAGES,
                      progress=(lambda _, left, total: progress(total - left, total))
                      if progress else None)
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot restore into {target}: {exc}", code="restore_failed") from None
    finally:
        copy.close()
        source.close()


# ----------------------------------------------------------------- helpers

_NAMES: dict[Kind, str] = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _sqlite_file(url: str) -> str:
    path = sqlite.file_of(url)
    if path is None:
        raise InvalidInput("backup and restore need a SQLite database file (sqlite:///PATH)",
                           code="bad_database_url")
    return path


def _pg_tool(tool: str, url: str, arguments: list[str]) -> None:
    """Run pg_dump or pg_restore on ``url``; the password travels in the environment,
    never on a command line others can read."""
    program = shutil.which(tool)
    if program is None:
        raise Unavailable(f"{tool} is not installed: install PostgreSQL's client tools "
                          "(apt-get install postgresql-client)", code="pg_tools_missing")
    target = make_url(sync_url(url)).set(drivername="postgresql")
    env = {**os.environ}
    if target.password is not None:
        env["PGPASSWORD"] = str(target.password)
    dbname = target.set(password=None).render_as_string(hide_password=False)
    try:
        done = subprocess.run([program, *arguments, f"--dbname={dbname}"], env=env,
                              capture_output=True, text=True, timeout=PG_TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{tool} did not finish in {PG_TOOL_TIMEOUT:g} s",
                          code="backup_failed") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if "error" in line.lower()),
                      lines[0] if lines else f"exit code {done.returncode}")
        raise Unavailable(f"{tool} failed: {reason}",
                          code="backup_failed" if tool == "pg_dump" else "restore_failed")
