"""Live agent settings' queries: config overrides (``agent_config``), capability switches
(``capability_switches``) and the set of held agents (``held_agents``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.store.columns import upsert, utcnow
from agentos.store.tables import agent_config, capability_switches, held_agents

cfg = agent_config.c
sw = capability_switches.c
held = held_agents.c


# ------------------------------------------------------------------ config


async def overrides(conn: AsyncConnection, agent: str) -> list[dict[str, Any]]:
    """An agent's live config values, by key."""
    rows = (await conn.execute(select(agent_config).where(cfg.agent == agent)
                               .order_by(cfg.key))).all()
    return [dict(r._mapping) for r in rows]


async def override(conn: AsyncConnection, agent: str, key: str, *, lock: bool = False
                   ) -> dict[str, Any] | None:
    stmt = select(agent_config).where(cfg.agent == agent, cfg.key == key)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None


async def put_override(conn: AsyncConnection, agent: str, key: str, value: Any, by: str
                       ) -> None:
    stmt = upsert(conn, agent_config).values(agent=agent, key=key, value=value,
                                              updated_by=by, updated_at=utcnow())
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[cfg.agent, cfg.key],
        set_={"value": stmt.excluded.value, "updated_by": by, "updated_at": utcnow()}))


async def clear_override(conn: AsyncConnection, agent: str, key: str) -> bool:
    result = await conn.execute(delete(agent_config).where(cfg.agent == agent, cfg.key == key))
    return bool(result.rowcount)


# ------------------------------------------------------------ capabilities


async def switches(conn: AsyncConnection, agent: str | None = None) -> list[dict[str, Any]]:
    """Capability switches, of one agent or of all."""
    stmt = select(capability_switches).order_by(sw.agent, sw.capability)
    if agent is not None:
        stmt = stmt.where(sw.agent == agent)
    return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]


async def put_switch(conn: AsyncConnection, agent: str, capability: str, enabled: bool,
                     reason: str, by: str) -> None:
    values = {"enabled": enabled, "reason": reason, "updated_by": by, "updated_at": utcnow()}
    stmt = upsert(conn, capability_switches).values(agent=agent, capability=capability,
                                                     **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[sw.agent, sw.capability],
                                                  set_=values))


# ------------------------------------------------------------------ holds


async def hold(conn: AsyncConnection, agent: str, reason: str, ref: str,
               until: datetime | None, detail: dict[str, Any]) -> None:
    """Hold ``agent``'s tasks for (reason, ref) until ``until`` (None: until released)."""
    stmt = upsert(conn, held_agents).values(agent=agent, reason=reason, ref=ref, until=until,
                                             detail=detail, since=utcnow())
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[held.agent, held.reason, held.ref],
        set_={"until": until, "detail": detail}))


async def release(conn: AsyncConnection, *, reason: str, ref: str,
                  agent: str | None = None) -> int:
    stmt = delete(held_agents).where(held.reason == reason, held.ref == ref)
    if agent is not None:
        stmt = stmt.where(held.agent == agent)
    return int((await conn.execute(stmt)).rowcount or 0)


async def holds(conn: AsyncConnection, agent: str | None = None) -> list[dict[str, Any]]:
    """The holds in force now (the database's clock: a lapsed one no longer counts)."""
    stmt = select(held_agents).where(or_(held.until.is_(None), held.until > utcnow()))
    if agent is not None:
        stmt = stmt.where(held.agent == agent)
    return [dict(r._mapping) for r in (await conn.execute(stmt.order_by(held.agent))).all()]


async def forget_agent(conn: AsyncConnection, agent: str) -> dict[str, int]:
    """Delete an agent's overrides, switches and holds; how many of each."""
    counts = {}
    for label, table in (("config", agent_config), ("capabilities", capability_switches),
                         ("holds", held_agents)):
        result = await conn.execute(delete(table).where(table.c.agent == agent))
        counts[label] = int(result.rowcount or 0)
    return counts
