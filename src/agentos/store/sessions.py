"""Login sessions' statements: the ``session`` rows of ``credentials``, with their user."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import utcnow
from agentos.store.tables import credentials, users

c = credentials.c


async def page(conn: AsyncConnection, include_ended: bool, username: str | None,
               before: str | None, limit: int | None) -> list[Any]:
    """Sessions newest first (ids are UUIDv7: time-ordered), below ``before``, each with
    its user's name; live ones only (neither revoked nor expired, by the database's
    clock) unless ``include_ended``."""
    stmt = (select(c.id, users.c.username, users.c.role, c.created_at, c.expires_at,
                   c.last_used_at, c.revoked_at, (c.expires_at < utcnow()).label("expired"))
            .join(users, users.c.id == c.user_id).where(c.kind == "session"))
    if not include_ended:
        stmt = stmt.where(c.revoked_at.is_(None), or_(c.expires_at.is_(None),
                                                      c.expires_at >= utcnow()))
    if username is not None:
        stmt = stmt.where(users.c.username == username)
    if before is not None:
        stmt = stmt.where(c.id < before)
    return list((await conn.execute(stmt.order_by(c.id.desc()).limit(limit))).all())


async def end(conn: AsyncConnection, session_id: str) -> str | None:
    """Revoke a live session; the user it was of, or None (no such live session)."""
    row = (await conn.execute(update(credentials).where(
        c.id == session_id, c.kind == "session", c.revoked_at.is_(None))
        .values(revoked_at=utcnow()).returning(c.user_id))).first()
    if row is None:
        return None
    name: str | None = (await conn.execute(select(users.c.username).where(
        users.c.id == row.user_id))).scalar()
    return name
