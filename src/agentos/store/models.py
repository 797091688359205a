"""The model registry's queries (``models``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import upsert, utcnow
from agentos.store.tables import models

m = models.c


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> dict[str, Any] | None:
    """Register a version; None when (name, version) is taken."""
    stmt = upsert(conn, models).values(**values).on_conflict_do_nothing(
        index_elements=[m.name, m.version]).returning(*models.c)
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None


async def fetch(conn: AsyncConnection, name: str, version: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(models).where(m.name == name, m.version == version))
           ).first()
    return dict(row._mapping) if row else None


async def versions_of(conn: AsyncConnection, name: str, *, lock: bool = False
                      ) -> list[dict[str, Any]]:
    """Every version of a model, newest registration first. ``lock``: hold their rows
    to the end of the transaction (PostgreSQL), so status changes of one model take
    turns; SQLite's writer holds the whole database already."""
    stmt = select(models).where(m.name == name).order_by(m.id.desc())
    if lock:
        stmt = stmt.with_for_update()
    return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]


async def deployed(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    """The version of ``name`` deployed last, or None."""
    row = (await conn.execute(select(models).where(m.name == name, m.status == "deployed")
                              .order_by(m.deployed_at.desc(), m.id.desc()).limit(1))).first()
    return dict(row._mapping) if row else None


async def set_status(conn: AsyncConnection, ids: list[int], status: str) -> None:
    """Move versions to ``status``, stamping when it happened."""
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if status == "deployed":
        values["deployed_at"] = utcnow()
    elif status == "archived":
        values["archived_at"] = utcnow()
    await conn.execute(update(models).where(m.id.in_(ids)).values(**values))


async def listing(conn: AsyncConnection, *, name: str | None, status: str | None,
                  type: str | None, after: int | None, limit: int) -> list[dict[str, Any]]:
    """Versions in registration order (by id), after the id ``after``."""
    stmt = select(models)
    if name is not None:
        stmt = stmt.where(m.name == name)
    if status is not None:
        stmt = stmt.where(m.status == status)
    if type is not None:
        stmt = stmt.where(m.type == type)
    if after is not None:
        stmt = stmt.where(m.id > after)
    rows = (await conn.execute(stmt.order_by(m.id).limit(limit))).all()
    return [dict(r._mapping) for r in rows]
