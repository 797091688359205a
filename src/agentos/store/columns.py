"""Column types and SQL functions that mean the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    String,
    Table,
    TypeDecorator,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# JSONB on PostgreSQL (indexable, compact); JSON text on SQLite
Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only makes INTEGER PRIMARY KEY an alias of its rowid
Id = BigInteger().with_variant(Integer(), "sqlite")


class NotJson(ValueError):
    """A value JSON cannot hold: NaN or Infinity (refused alike by both backends)."""


def _refuse_constant(name: str) -> Any:
    raise NotJson(f"{name} is not JSON")


# twenty digits in a row: perhaps an integer past 64 bits, which orjson would read as
# a float (the json module reads every number exactly, more slowly)
_LONG_NUMBER, _LONG_NUMBER_BYTES = re.compile(r"\d{20}"), re.compile(rb"\d{20}")


def json_loads(data: str | bytes) -> Any:
    """A JSON column's value (orjson; the json module for what orjson misreads or
    refuses: an integer past 64 bits, which stays an integer). NaN and Infinity are
    refused (``NotJson``), as orjson does."""
    long = (_LONG_NUMBER.search(data) if isinstance(data, str)
            else _LONG_NUMBER_BYTES.search(data))
    if long is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data, parse_constant=_refuse_constant)


def json_dumps(value: Any, *, wide_integers: bool = True) -> str:
    """A JSON column's text, the one encoding both backends store (orjson; the json
    module for what orjson refuses, e.g. an integer over 64 bits or a non-string key,
    which it turns into one). NaN and Infinity are refused (``NotJson``): orjson would
    write them as null, the json module as text no JSON parser reads. With
    ``wide_integers=False`` (what the API takes: event payloads) an integer over 64 bits
    raises orjson's TypeError instead."""
    try:
        text = orjson.dumps(value)
    except TypeError:
        if not wide_integers:
            raise
        try:
            return json.dumps(value, allow_nan=False)
        except ValueError as exc:
            raise NotJson(str(exc)) from None
    # orjson writes a non-finite float as null: only then can the value hold one
    if b"null" in text and _non_finite(value):
        raise NotJson("NaN and Infinity are not JSON")
    return text.decode()


def _non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def upsert(conn: AsyncConnection | Connection, table: Table
           ) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` that takes ``on_conflict_do_nothing`` (insert-or-ignore)
    or ``on_conflict_do_update`` (upsert): both backends spell ON CONFLICT alike, but
    SQLAlchemy builds it from each dialect's own insert, chosen here by ``conn``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def binary_string(length: int) -> String:
    """A string compared byte by byte on both backends (PostgreSQL's default
    collation may ignore punctuation and spaces)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes; SQLite stores them as naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return utc_from_text(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def stamp(moment: datetime) -> str:
    """A moment as SQLite stores it: naive UTC text that sorts as time (the layout
    SQLAlchemy's SQLite DateTime writes, and ``utcnow`` on SQLite)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def iso_text(moment: datetime) -> str:
    """A moment as ISO 8601 text with its UTC offset (an event's payload, a statement's
    JSON parameter); ``utc_from_text`` reads it back."""
    return moment.astimezone(UTC).isoformat()


def utc_from_text(text: str) -> datetime:
    """A time as SQLite stores it (naive UTC text), or ISO text with an offset
    (``iso_text``), as an aware UTC datetime. Parsing it
    with its offset appended costs a sixth of parsing and then ``replace(tzinfo=UTC)``."""
    try:
        return datetime.fromisoformat(text + "+00:00")
    except ValueError:  # it had an offset of its own
        return datetime.fromisoformat(text).astimezone(UTC)


class utcnow(FunctionElement[datetime]):
    """The database's current UTC time: the only clock that decides expiry."""

    type = UTCDateTime()
    inherit_cache = True


async def database_now(conn: AsyncConnection) -> datetime:
    """The database's clock, read (the only one that decides expiry)."""
    value: datetime = (await conn.execute(select(utcnow()))).scalar_one()
    return value


# the text layout SQLAlchemy's SQLite DateTime stores, so the clock's values compare
# with stored times as text
_SQLITE_CLOCK = "strftime('%Y-%m-%d %H:%M:%f000', 'now'{shift})"


@compiles(utcnow, "postgresql")
def _pg_utcnow(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return "statement_timestamp()"


@compiles(utcnow, "sqlite")
def _sqlite_utcnow(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return _SQLITE_CLOCK.format(shift="")


class later(FunctionElement[datetime]):
    """The database's current UTC time plus ``seconds`` (a bound number)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(later, "postgresql")
def _pg_later(element: later, compiler: SQLCompiler, **kw: Any) -> str:
    (seconds,) = element.clauses
    return f"statement_timestamp() + make_interval(secs => {compiler.process(seconds, **kw)})"


@compiles(later, "sqlite")
def _sqlite_later(element: later, compiler: SQLCompiler, **kw: Any) -> str:
    (seconds,) = element.clauses
    return _SQLITE_CLOCK.format(
        shift=f", printf('%+.6f seconds', {compiler.process(seconds, **kw)})")
