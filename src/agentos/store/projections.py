"""Projections' JSON state (``projection_state``): values by (projection, key).

A read model loads and saves the keys of each batch it folds; on SQLite, where
statements run on the event loop, those two go to SQLite's own connection as named
SQL (SQLAlchemy's expanding ``IN`` rendered the statement again each batch: most of
a batch's cost)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import json_dumps, json_loads, upsert
from agentos.store.tables import projection_state

s = projection_state.c


async def load(conn: AsyncConnection, projection: str, keys: Iterable[str]) -> dict[str, Any]:
    """The values of ``keys`` that exist."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    if conn.dialect.name == "sqlite":
        found = cast(Any, conn).driver().execute(_SQLITE_LOAD, {
            "projection": projection, "keys": json_dumps(wanted)}).fetchall()
        return {key: json_loads(value) for key, value in found}
    rows = (await conn.execute(select(s.key, s.value).where(
        s.projection == projection, s.key.in_(wanted)))).all()
    return {r.key: r.value for r in rows}


async def save(conn: AsyncConnection, projection: str, values: Mapping[str, Any]) -> None:
    """Write each key's value; a value of None deletes the key."""
    gone = [k for k, v in values.items() if v is None]
    kept = [{"projection": projection, "key": k, "value": v} for k, v in values.items()
            if v is not None]
    if conn.dialect.name == "sqlite":
        db = cast(Any, conn).driver()
        if gone:
            db.execute(_SQLITE_DELETE, {"projection": projection, "keys": json_dumps(gone)})
        db.executemany(_SQLITE_SAVE, [(projection, k["key"], json_dumps(k["value"]))
                                      for k in kept])
        return
    if gone:
        await conn.execute(delete(projection_state).where(
            s.projection == projection, s.key.in_(gone)))
    if kept:
        stmt = upsert(conn, projection_state)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=[s.projection, s.key], set_={"value": stmt.excluded.value}), kept)


async def clear(conn: AsyncConnection, projection: str) -> None:
    await conn.execute(delete(projection_state).where(s.projection == projection))


async def items(conn: AsyncConnection, projection: str, *, key: str | None = None,
                prefix: str | None = None, after: str | None = None, limit: int = 100
                ) -> list[tuple[str, Any]]:
    """(key, value) pairs in key order: one ``key``, or those starting with ``prefix``,
    after the key ``after``."""
    stmt = select(s.key, s.value).where(s.projection == projection)
    if key is not None:
        stmt = stmt.where(s.key == key)
    if prefix:
        stmt = stmt.where(s.key.startswith(prefix, autoescape=True))
    if after is not None:
        stmt = stmt.where(s.key > after)
    rows = (await conn.execute(stmt.order_by(s.key).limit(limit))).all()
    return [(r.key, r.value) for r in rows]


_SQLITE_LOAD = ("SELECT key, value FROM projection_state WHERE projection = :projection "
                "AND key IN (SELECT value FROM json_each(:keys))")
_SQLITE_DELETE = ("DELETE FROM projection_state WHERE projection = :projection "
                  "AND key IN (SELECT value FROM json_each(:keys))")
_SQLITE_SAVE = ("INSERT INTO projection_state (projection, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (projection, key) DO UPDATE SET value = excluded.value")
