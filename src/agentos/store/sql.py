"""Named SQL: ``store/sql/<name>.<dialect>.sql`` (``<name>.sql`` where both backends
take the same text), loaded once, ready for a driver.

One convention for every file: parameters are ``:name``; a file may include another
one's text with ``/*include NAME*/`` (CTEs, or ``now``: the dialect's clock, so a
statement that differs only in it is one file); any other ``/*word*/`` is a blank the
caller fills (``fill``: a claim's size, a column list), and only here, so a
statement's text is decided in one place. Comment lines and indentation are dropped,
so the text sent stays short enough for psycopg to cache its parsing (it parses a
statement over 4 kB again on every execution).

    query(name, dialect, **fill)        the text, parameters as ``:name`` (SQLAlchemy's
                                        ``text()`` and sqlite3 take it as it is)
    query(..., driver=True)             for the dialect's driver: psycopg's ``%(name)s``
    qmark(statement)                    sqlite3's ``?`` and the parameters' order (a
                                        tuple binds faster than a dict in executemany)
    numbered(statement)                 PostgreSQL's own ``$1``... and the parameters'
                                        order, for psycopg's raw cursor
    send_numbered(db, numbered, params) that statement on psycopg's raw cursor
    compiled(build, dialect, *args)     a SQLAlchemy statement as a driver's text, once
    statements(name, dialect, ...)      a file of several statements, each ended by ``;``
    run(conn, statement, params)        a driver's text in a write transaction's connection
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection

_INCLUDE = re.compile(r"/\*include (\w+)\*/")
_BLANK = re.compile(r"/\*(\w+)\*/")
_PARAM = re.compile(r"(?<!:):(\w+)")
_QUOTED = re.compile(r"('(?:[^']|'')*')")  # a string literal: ':MI' in it is no parameter


def _params(statement: str, replace: str) -> str:
    """``:name`` parameters outside string literals replaced (``re.sub`` syntax)."""
    parts = _QUOTED.split(statement)
    return "".join(part if n % 2 else _PARAM.sub(replace, part) for n, part in enumerate(parts))


@cache
def _text(name: str, dialect: str) -> str:
    folder = resources.files("agentos.store").joinpath("sql")
    source = folder.joinpath(f"{name}.{dialect}.sql")
    if not source.is_file():  # one text for both backends
        source = folder.joinpath(f"{name}.sql")
    lines = source.read_text("utf-8").splitlines()
    body = "\n".join(line.strip() for line in lines
                     if line.strip() and not line.lstrip().startswith("--"))
    return _INCLUDE.sub(lambda m: _text(m.group(1), dialect), body)


def _filled(name: str, dialect: str, fill: dict[str, str]) -> str:
    def blank(match: re.Match[str]) -> str:
        if match.group(1) not in fill:
            raise KeyError(f"{name}.{dialect}.sql: nothing given for /*{match.group(1)}*/")
        return fill[match.group(1)]

    return _BLANK.sub(blank, _text(name, dialect))


@cache
def _query(name: str, dialect: str, driver: bool, fill: tuple[tuple[str, str], ...]) -> str:
    text = _filled(name, dialect, dict(fill))
    if driver and dialect == "postgresql":
        return _params(text.replace("%", "%%"), r"%(\1)s")
    return text


def query(name: str, dialect: str, *, driver: bool = False, **fill: str) -> str:
    """The statement ``name`` for ``dialect``, its blanks filled from ``fill``."""
    return _query(name, dialect, driver, tuple(sorted(fill.items())))


def statements(name: str, dialect: str, *, driver: bool = False,
               **fill: str) -> tuple[str, ...]:
    """The statements of a file of several, each ended by ``;`` at the end of a line."""
    text = query(name, dialect, driver=driver, **fill)
    return tuple(s.strip() for s in text.split(";\n") if s.strip())


def qmark(statement: str) -> tuple[str, tuple[str, ...]]:
    """A statement with ``?`` parameters instead of ``:name``, and their names in
    order (sqlite3's executemany binds a tuple faster than a dict)."""
    names = [_PARAM.findall(part) for part in _QUOTED.split(statement)[::2]]
    return _params(statement, "?"), tuple(name for found in names for name in found)


def numbered(statement: str) -> tuple[str, tuple[str, ...]]:
    """A statement with ``:name`` parameters as PostgreSQL's own ``$1``, ``$2``... (a
    name used twice is one number) and the names in that order. psycopg's raw cursor
    sends such a text as it is, where its usual cursor parses a statement over 4 kB for
    its ``%(name)s`` again on every execution (about 50 µs for ``tasks_submit``)."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    parts = _QUOTED.split(statement)
    text = "".join(part if n % 2 else _PARAM.sub(number, part) for n, part in enumerate(parts))
    return text, tuple(order)


async def send_numbered(db: Any, statement: tuple[str, tuple[str, ...]],
                        params: dict[str, Any]) -> Any:
    """A ``numbered`` statement with ``params`` on psycopg's raw cursor of ``db``,
    prepared: the cursor (in a pipeline, its rows are there once the pipeline syncs)."""
    from psycopg import AsyncRawCursor

    text, names = statement
    cursor = AsyncRawCursor(db)
    await cursor.execute(text, [params[name] for name in names], prepare=True)
    return cursor


@lru_cache(maxsize=256)
def compiled(build: Callable[..., Any], dialect: str, *args: Hashable
             ) -> tuple[str, dict[str, Any]]:
    """The SQLAlchemy statement ``build(dialect, *args)`` compiled once into the
    dialect's driver text (sqlite3's ``:name``, psycopg's ``%(name)s``: for ``run``) and
    the values of the parameters it binds itself (its literals, JSON paths, ``IN``
    lists), as bound (a dict shared by every caller: copy it to add your own, plain
    values that no type processes). For a statement SQLAlchemy writes better than a
    file would, run often: building and compiling it each time costs more than
    running it."""
    from sqlalchemy.dialects import postgresql, sqlite

    engine_dialect: Any = sqlite.pysqlite.dialect(paramstyle="named")
    if dialect == "postgresql":
        engine_dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    done = build(dialect, *args).compile(dialect=engine_dialect,
                                         compile_kwargs={"render_postcompile": True})
    # as an execution would bind them (SQLite's JSON paths: 'agent' is '$."agent"')
    processors = done._bind_processors
    return str(done), {name: processors[name](value) if name in processors else value
                       for name, value in done.params.items()}


def driver_text(statement: str) -> str:
    """A statement written here with ``:name`` parameters, for psycopg (``%(name)s``)."""
    return _params(statement.replace("%", "%%"), r"%(\1)s")


async def run(conn: AsyncConnection, statement: str,
              params: dict[str, Any] | Sequence[Any]) -> Any:
    """``statement`` (a driver's text: ``query(..., driver=True)``) in ``conn``'s
    transaction, on SQLite's own connection underneath, else through SQLAlchemy's
    driver-level execution, without building a statement; a sequence of parameter sets
    runs it for each. Its cursor (``fetchone``, ``fetchall``)."""
    many = not isinstance(params, dict)
    if conn.dialect.name == "sqlite":
        db = cast(Any, conn).driver()
        return db.executemany(statement, params) if many else db.execute(statement, params)
    return await conn.exec_driver_sql(statement, cast(Any, params))
