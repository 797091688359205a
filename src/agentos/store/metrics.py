"""Metrics' queries: series (name + tags), their rollups and histogram bucket counts."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.tables import metric_series

ms = metric_series.c


async def forget_agent(conn: AsyncConnection, agent: str) -> int:
    """Delete every series tagged with ``agent`` (their rollups cascade); how many."""
    result = await conn.execute(delete(metric_series).where(ms.agent == agent))
    return int(result.rowcount or 0)
