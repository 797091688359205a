"""Projections' JSON state (``projection_state``): values by (projection, key)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import upsert
from agentos.store.tables import projection_state

s = projection_state.c


async def load(conn: AsyncConnection, projection: str, keys: Iterable[str]) -> dict[str, Any]:
    """The values of ``keys`` that exist."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = (await conn.execute(select(s.key, s.value).where(
        s.projection == projection, s.key.in_(wanted)))).all()
    return {r.key: r.value for r in rows}


async def save(conn: AsyncConnection, projection: str, values: Mapping[str, Any]) -> None:
    """Write each key's value; a value of None deletes the key."""
    gone = [k for k, v in values.items() if v is None]
    kept = [{"projection": projection, "key": k, "value": v} for k, v in values.items()
            if v is not None]
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
