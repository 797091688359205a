"""Projections' JSON state (``projection_state``): values by (projection, key).

A read model loads and saves the keys of each batch it folds: those go to the driver
as they are (``sql.run``; SQLAlchemy's expanding ``IN`` rendered the statement again
each batch, most of a batch's cost on SQLite)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store import sql
from agentos.store.columns import json_dumps, json_loads
from agentos.store.tables import projection_state

s = projection_state.c


async def load(conn: AsyncConnection, projection: str, keys: Iterable[str]) -> dict[str, Any]:
    """The values of ``keys`` that exist."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = await sql.run(conn, _SQL[conn.dialect.name]["load"],
                          {"projection": projection, "keys": json_dumps(wanted)})
    return {key: json_loads(value) for key, value in found.fetchall()}


async def save(conn: AsyncConnection, projection: str, values: Mapping[str, Any]) -> None:
    """Write each key's value; a value of None deletes the key."""
    statements = _SQL[conn.dialect.name]
    gone = [k for k, v in values.items() if v is None]
    if gone:
        await sql.run(conn, statements["delete"],
                      {"projection": projection, "keys": json_dumps(gone)})
    kept = [{"projection": projection, "key": k, "value": json_dumps(v)}
            for k, v in values.items() if v is not None]
    if kept:
        await sql.run(conn, statements["save"], kept)


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


# a batch's keys go as one JSON array; values as JSON text, which PostgreSQL gives back
_SQL = {
    "sqlite": {
        "load": "SELECT key, value FROM projection_state WHERE projection = :projection "
                "AND key IN (SELECT value FROM json_each(:keys))",
        "delete": "DELETE FROM projection_state WHERE projection = :projection "
                  "AND key IN (SELECT value FROM json_each(:keys))",
        "save": "INSERT INTO projection_state (projection, key, value) "
                "VALUES (:projection, :key, :value) "
                "ON CONFLICT (projection, key) DO UPDATE SET value = excluded.value"},
    "postgresql": {name: sql.driver_text(text) for name, text in {
        "load": "SELECT key, value::text FROM projection_state WHERE projection = "
                ":projection AND key IN (SELECT jsonb_array_elements_text(CAST(:keys AS "
                "jsonb)))",
        "delete": "DELETE FROM projection_state WHERE projection = :projection AND key IN "
                  "(SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))",
        "save": "INSERT INTO projection_state (projection, key, value) "
                "VALUES (:projection, :key, CAST(:value AS jsonb)) "
                "ON CONFLICT (projection, key) DO UPDATE SET value = excluded.value"}.items()},
}
