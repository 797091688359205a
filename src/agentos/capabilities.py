"""Capabilities switched live (SPEC §2.9): a definition declares its capabilities (each
``enabled`` or not); an operator disables or enables one at once, with a reason, for
every version of the agent, without publishing anything.

A trigger that names a disabled capability does not fire (the router reads the
switches in each batch's transaction, and ``router.mismatch`` says why); the agent's
tasks that need it (a task's ``capability``: given at submit, or its trigger's) wait,
held (``held_agents``: the claim leaves them out), until it is enabled again. Every switch appends
``agent.capability_disabled`` or ``agent.capability_enabled``, and its request's audit
row carries the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import audit, cache, events, registry
from agentos.errors import InvalidInput, NotFound
from agentos.store import Store
from agentos.store import agent_config as store_config

CACHE_KIND = "capability_switches"
HOLD = "capability"  # the held_agents reason of a disabled capability
MAX_REASON = 500  # characters


async def switched(store: Store) -> dict[str, dict[str, bool]]:
    """Every live switch, ``{agent: {capability: enabled}}`` (from the process's cache)."""
    return await cache.of(store).get(CACHE_KIND, "*", lambda: _switched(store))


async def _switched(store: Store) -> dict[str, dict[str, bool]]:
    async with store.read() as conn:
        return await switched_in(conn)


async def switched_in(conn: AsyncConnection) -> dict[str, dict[str, bool]]:
    """Every live switch as the caller's transaction sees it."""
    found: dict[str, dict[str, bool]] = {}
    for row in await store_config.switches(conn):
        found.setdefault(row["agent"], {})[row["capability"]] = row["enabled"]
    return found


def overlay(declared: list[dict[str, Any]], switches: dict[str, bool]) -> dict[str, bool]:
    """Whether each declared capability is enabled now: its switch, else its definition."""
    return {c["name"]: switches.get(c["name"], c.get("enabled", True)) for c in declared}


async def effective(store: Store, agent: str) -> dict[str, bool]:
    """The agent's capabilities (its current version's) and whether each is enabled now."""
    version = await registry.get(store, agent)
    return overlay(version.definition.get("capabilities", []),
                   (await switched(store)).get(agent, {}))


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


async def view(store: Store, agent: str) -> dict[str, Any]:
    """The agent's capabilities: declared, enabled now, and the last live switch."""
    version = await registry.get(store, agent)
    async with store.read() as conn:
        rows = {r["capability"]: r for r in await store_config.switches(conn, agent)}
    out = []
    for declared in version.definition.get("capabilities", []):
        row = rows.get(declared["name"])
        out.append({
            "name": declared["name"], "version": str(declared.get("version", 1)),
            "description": declared.get("description"),
            "declared_enabled": declared.get("enabled", True),
            "enabled": row["enabled"] if row else declared.get("enabled", True),
            "switch": None if row is None else {
                "enabled": row["enabled"], "reason": row["reason"],
                "updated_by": row["updated_by"], "updated_at": _iso(row["updated_at"])}})
    return {"agent": agent, "version": version.version, "capabilities": out}


async def switch(store: Store, agent: str, capability: str, *, enabled: bool, reason: str,
                 by: str) -> dict[str, Any]:
    """Enable or disable ``capability`` of ``agent`` now; a disable needs a reason."""
    reason = reason.strip()
    if not enabled and not reason:
        raise InvalidInput("say why the capability is disabled: a reason is required",
                           code="reason_required")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"a reason is at most {MAX_REASON} characters", code="bad_reason")
    version = await registry.get(store, agent)
    names = [c["name"] for c in version.definition.get("capabilities", [])]
    if capability not in names:
        raise NotFound(f"agent {agent} {version.version} declares no capability "
                       f"{capability!r}", code="capability_not_found",
                       details={"agent": agent, "capability": capability, "declared": names})
    async with store.write() as conn:
        await store_config.put_switch(conn, agent, capability, enabled, reason, by)
        if enabled:
            await store_config.release(conn, reason=HOLD, ref=capability, agent=agent)
        else:
            await store_config.hold(conn, agent, HOLD, capability, None,
                                    {"capability": capability, "reason": reason, "by": by})
        await cache.changed(store, conn)
        if (entry := audit.pending()) is not None:
            entry.details["change"] = {"capability": capability, "enabled": enabled,
                                       "reason": reason}
        verb = "enabled" if enabled else "disabled"
        await events.append_in(store, conn, [events.Draft(
            type=f"agent.capability_{verb}", source=by, subject=agent,
            payload={"agent": agent, "capability": capability, "reason": reason})])
    return await view(store, agent)


async def check_needed(store: Store, items: Sequence[Any]) -> None:
    """Refuse (400 ``unknown_capability``) a task that needs a capability its agent's
    version does not declare (the named version, else the latest published one, from
    the cache). An agent with no such version is the queue's to refuse."""
    for n, item in enumerate(items):
        if item.capability is None:
            continue
        try:
            version = await registry.get(store, item.agent, item.version) if item.version \
                else await registry.latest_published(store, item.agent)
        except NotFound:
            continue
        if version is None:
            continue
        names = [c["name"] for c in version.definition.get("capabilities", [])]
        if item.capability not in names:
            raise InvalidInput(
                f"agent {item.agent} {version.version} declares no capability "
                f"{item.capability!r}", code="unknown_capability",
                details={"agent": item.agent, "capability": item.capability,
                         "declared": names, **({"index": n} if len(items) > 1 else {})})
