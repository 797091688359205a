"""Approvals' queries (``approvals``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import utcnow
from agentos.store.tables import approvals

a = approvals.c


async def insert_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(approvals), rows)


async def get(conn: AsyncConnection, approval_id: str) -> Any | None:
    return (await conn.execute(select(approvals).where(a.id == approval_id))).first()


async def by_request_key(conn: AsyncConnection, key: str) -> Any | None:
    return (await conn.execute(select(approvals).where(a.request_key == key))).first()


async def decide(conn: AsyncConnection, approval_id: str, status: str, by: str,
                 comment: str | None) -> Any | None:
    """End a pending approval whose timeout (the database's clock) has not passed; its
    row, or None when it was not pending or is past its timeout (one decision only: of
    two at once, the second finds it decided)."""
    stmt = (update(approvals)
            .where(a.id == approval_id, a.status == "pending",
                   or_(a.expires_at.is_(None), a.expires_at > utcnow()))
            .values(status=status, decided_by=by, comment=comment, decided_at=utcnow())
            .returning(*approvals.c))
    return (await conn.execute(stmt)).first()


async def standing(conn: AsyncConnection, approval_id: str) -> tuple[str, bool] | None:
    """An approval's status and whether its timeout has passed (the database's clock)."""
    lapsed = and_(a.expires_at.is_not(None), a.expires_at <= utcnow())
    row = (await conn.execute(select(a.status, case((lapsed, True), else_=False))
                              .where(a.id == approval_id))).first()
    return None if row is None else (row[0], bool(row[1]))


async def expire_lapsed(conn: AsyncConnection, limit: int) -> list[Any]:
    """Expire up to ``limit`` pending approvals whose timeout passed, in one statement;
    their rows (others' locked rows are skipped on PostgreSQL)."""
    due = (select(a.id).where(a.status == "pending", a.expires_at <= utcnow())
           .order_by(a.expires_at).limit(limit).with_for_update(skip_locked=True))
    stmt = (update(approvals).where(a.id.in_(due.scalar_subquery()), a.status == "pending")
            .values(status="expired", decided_by="timeout", decided_at=utcnow())
            .returning(*approvals.c))
    return list((await conn.execute(stmt)).all())


async def page(conn: AsyncConnection, *, status: str | None, run_id: str | None,
               before: str | None, limit: int) -> list[Any]:
    """Approvals newest first (ids are UUIDv7)."""
    stmt = select(approvals)
    if status is not None:
        stmt = stmt.where(a.status == status)
    if run_id is not None:
        stmt = stmt.where(a.run_id == run_id)
    if before is not None:
        stmt = stmt.where(a.id < before)
    return list((await conn.execute(stmt.order_by(a.id.desc()).limit(limit))).all())


async def cancel(conn: AsyncConnection, approval_ids: Sequence[str]) -> list[Any]:
    """Cancel those of ``approval_ids`` still pending; their rows."""
    if not approval_ids:
        return []
    stmt = (update(approvals).where(a.id.in_(approval_ids), a.status == "pending")
            .values(status="cancelled", decided_at=utcnow(), decided_by="workflow")
            .returning(*approvals.c))
    return list((await conn.execute(stmt)).all())


async def of_ids(conn: AsyncConnection, approval_ids: Sequence[str]) -> list[Any]:
    if not approval_ids:
        return []
    return list((await conn.execute(select(approvals).where(a.id.in_(approval_ids)))).all())
