"""LLM call records' queries (``llm_calls``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.tables import llm_calls

c = llm_calls.c
GROUPS = ("model", "agent", "day")


async def insert_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Store the calls; their ids, in order."""
    ids = []
    for row in rows:  # a handful at most: one per call a handler made
        ids.append(int((await conn.execute(insert(llm_calls).values(**row)
                                           .returning(c.id))).scalar_one()))
    return ids


def _filtered(stmt: Select[Any], filters: dict[str, Any]) -> Select[Any]:
    for name in ("agent", "model", "provider", "task_id", "correlation_id", "outcome"):
        if filters.get(name) is not None:
            stmt = stmt.where(getattr(c, name) == filters[name])
    if filters.get("since") is not None:
        stmt = stmt.where(c.at >= filters["since"])
    if filters.get("until") is not None:
        stmt = stmt.where(c.at < filters["until"])
    return stmt


async def listing(conn: AsyncConnection, filters: dict[str, Any], before_id: int | None,
                  limit: int) -> list[dict[str, Any]]:
    """Calls newest first (by id), before the id ``before_id``."""
    stmt = _filtered(select(llm_calls), filters)
    if before_id is not None:
        stmt = stmt.where(c.id < before_id)
    rows = (await conn.execute(stmt.order_by(c.id.desc()).limit(limit))).all()
    return [dict(r._mapping) for r in rows]


def _day(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", c.at), literal("YYYY-MM-DD"))
    return func.substr(c.at, 1, 10)  # SQLite keeps UTC text: 2026-12-06 10:00:00


async def summary(conn: AsyncConnection, by: str, filters: dict[str, Any]
                  ) -> list[dict[str, Any]]:
    """Calls, tokens, cost (and calls without a price), latency and failures per group."""
    key = _day(conn) if by == "day" else getattr(c, by)
    stmt = _filtered(select(
        key.label("key"), func.count().label("calls"),
        func.coalesce(func.sum(c.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(c.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(c.cost), 0.0).label("cost"),
        func.count().filter(c.cost.is_(None)).label("unpriced"),
        func.avg(c.latency_ms).label("avg_latency_ms"),
        func.count().filter(c.outcome != "ok").label("failed"),
    ), filters).group_by(key).order_by(key)
    return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]


async def spent(conn: AsyncConnection, *, since: datetime, agent: str | None = None,
                model: str | None = None) -> tuple[int, float]:
    """Tokens and cost of the calls since ``since`` (of an agent, a model, or all)."""
    stmt = select(func.coalesce(func.sum(c.prompt_tokens + c.completion_tokens), 0),
                  func.coalesce(func.sum(c.cost), 0.0)).where(c.at >= since)
    if agent is not None:
        stmt = stmt.where(c.agent == agent)
    if model is not None:
        stmt = stmt.where(c.model == model)
    tokens, cost = (await conn.execute(stmt)).one()
    return int(tokens), float(cost)
