"""Budgets' queries: definitions (``budgets``) and what each period spent (``budget_usage``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import upsert, utcnow
from agentos.store.tables import budget_usage, budgets

b = budgets.c
u = budget_usage.c


async def all_budgets(conn: AsyncConnection, after: int | None = None,
                      limit: int | None = None) -> list[dict[str, Any]]:
    """Budgets by id, those after ``after``, at most ``limit`` (None: all)."""
    stmt = select(budgets).order_by(b.id).limit(limit)
    if after is not None:
        stmt = stmt.where(b.id > after)
    return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]


async def get(conn: AsyncConnection, budget_id: int, *, lock: bool = False
              ) -> dict[str, Any] | None:
    stmt = select(budgets).where(b.id == budget_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> dict[str, Any] | None:
    """A new budget; None when one of that scope, target, metric and period exists."""
    row = (await conn.execute(upsert(conn, budgets).values(**values).on_conflict_do_nothing(
        index_elements=[b.scope, b.target, b.metric, b.period]).returning(*budgets.c))).first()
    return dict(row._mapping) if row else None


async def change(conn: AsyncConnection, budget_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(budgets).where(b.id == budget_id)
                       .values(**values, updated_at=utcnow()))


async def remove(conn: AsyncConnection, budget_id: int) -> bool:
    return bool((await conn.execute(delete(budgets).where(b.id == budget_id))).rowcount)


async def forget_agent(conn: AsyncConnection, agent: str) -> int:
    """Delete the budgets of ``agent`` (their usage cascades); how many."""
    result = await conn.execute(delete(budgets).where(b.scope == "agent", b.target == agent))
    return int(result.rowcount or 0)


async def charge(conn: AsyncConnection, budget_id: int, period_start: datetime,
                 amount: float) -> dict[str, Any]:
    """Add ``amount`` to a budget's period (one upsert); the period's row after it."""
    stmt = upsert(conn, budget_usage).values(budget_id=budget_id, period_start=period_start,
                                             used=amount, warned=False, exceeded=False)
    stmt = stmt.on_conflict_do_update(index_elements=[u.budget_id, u.period_start],
                                      set_={"used": u.used + stmt.excluded.used})
    row = (await conn.execute(stmt.returning(*budget_usage.c))).one()
    return dict(row._mapping)


async def usage(conn: AsyncConnection, keys: list[tuple[int, datetime]]
                ) -> dict[int, dict[str, Any]]:
    """The periods' rows (budget id -> row) of (budget id, period start) pairs."""
    if not keys:
        return {}
    rows = (await conn.execute(select(budget_usage).where(
        u.budget_id.in_([k[0] for k in keys]),
        u.period_start.in_(sorted({k[1] for k in keys}))))).all()
    wanted = set(keys)
    return {r.budget_id: dict(r._mapping) for r in rows
            if (r.budget_id, r.period_start) in wanted}


async def set_flags(conn: AsyncConnection, budget_id: int, period_start: datetime,
                    **flags: bool) -> None:
    await conn.execute(update(budget_usage).where(and_(
        u.budget_id == budget_id, u.period_start == period_start)).values(**flags))
