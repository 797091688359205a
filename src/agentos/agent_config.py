"""Live typed config of an agent (SPEC §2.9): the definition declares each key's type,
default and bounds; an operator overrides a key's value live, for every version of the
agent, until the override is cleared.

    declared (current version's ``config``)  +  overrides (agent_config)  =  ctx.config

A value is checked against the declaration of the agent's current version when it is
set (type, then ``min``/``max``/``choices``); a handler's ``ctx.config`` gives each key
its declaration in the running version: the override when it still fits that
declaration, else the default. Handlers read it per attempt through ``overrides``,
served from the process's cache, which every change empties (NOTIFY tells other
processes on PostgreSQL at once, else within the cache's one-second TTL). Every
change appends ``agent.config_changed`` and amends its request's audit row with the
old and new value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentos import agent_spec, audit, cache, events, registry
from agentos.errors import NotFound, ValidationFailed
from agentos.store import Store
from agentos.store import agent_config as store_config

CACHE_KIND = "agent_config"


def effective(declared: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Each declared key's value: its override if it fits the declaration, else its
    default (a version declaring a key another way ignores an override made for another)."""
    values = {}
    for key, item in declared.items():
        value = item.get("value")
        if key in overrides and agent_spec.config_problem(item, overrides[key]) is None:
            value = overrides[key]
        values[key] = value
    return values


async def overrides(store: Store, agent: str) -> dict[str, Any]:
    """An agent's live overrides, ``{key: value}``: the one read path of handlers'
    config (from the process's cache; a change empties it everywhere)."""
    return await cache.of(store).get(CACHE_KIND, agent, lambda: _overrides(store, agent))


async def _overrides(store: Store, agent: str) -> dict[str, Any]:
    async with store.read() as conn:
        return {r["key"]: r["value"] for r in await store_config.overrides(conn, agent)}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _entry(key: str, item: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
    fits = row is not None and agent_spec.config_problem(item, row["value"]) is None
    return {"key": key, "type": item["type"], "description": item.get("description"),
            "default": item.get("value"), "min": item.get("min"), "max": item.get("max"),
            "choices": item.get("choices"),
            "value": row["value"] if row is not None and fits else item.get("value"),
            "overridden": fits,
            "override": None if row is None else {
                "value": row["value"], "updated_by": row["updated_by"],
                "updated_at": _iso(row["updated_at"]), "applies": fits}}


async def view(store: Store, agent: str) -> dict[str, Any]:
    """The agent's config as its current version declares it, with live values."""
    version = await registry.get(store, agent)
    declared = version.definition.get("config", {})
    async with store.read() as conn:
        rows = {r["key"]: r for r in await store_config.overrides(conn, agent)}
    return {"agent": agent, "version": version.version,
            "config": [_entry(k, item, rows.get(k)) for k, item in sorted(declared.items())]}


async def _declaration(store: Store, agent: str, key: str) -> tuple[str, dict[str, Any]]:
    version = await registry.get(store, agent)
    item = version.definition.get("config", {}).get(key)
    if item is None:
        raise NotFound(f"agent {agent} {version.version} declares no config key {key!r}",
                       code="config_key_not_found",
                       details={"agent": agent, "key": key,
                                "declared": sorted(version.definition.get("config", {}))})
    return version.version, item


async def set_value(store: Store, agent: str, key: str, value: Any, *, by: str
                    ) -> dict[str, Any]:
    """Override ``key`` with ``value`` (checked against the current version's
    declaration: 422 naming the problem, nothing written)."""
    _, item = await _declaration(store, agent, key)
    if problem := agent_spec.config_problem(item, value):
        raise ValidationFailed(f"invalid value for {agent} config {key!r}: {problem}",
                               code="bad_config_value",
                               details={"errors": [{"path": "value", "message": problem}],
                                        "key": key, "type": item["type"]})
    await _change(store, agent, key, item, value, by)
    return await _one(store, agent, key, item)


async def clear(store: Store, agent: str, key: str, *, by: str) -> dict[str, Any]:
    """Drop the override of ``key``: the default applies again."""
    _, item = await _declaration(store, agent, key)
    await _change(store, agent, key, item, None, by, clear=True)
    return await _one(store, agent, key, item)


async def _change(store: Store, agent: str, key: str, item: dict[str, Any], value: Any,
                  by: str, *, clear: bool = False) -> None:
    async with store.write() as conn:
        before = await store_config.override(conn, agent, key, lock=True)
        old = before["value"] if before is not None else item.get("value")
        if clear:
            await store_config.clear_override(conn, agent, key)
            new = item.get("value")
        else:
            await store_config.put_override(conn, agent, key, value, by)
            new = value
        await cache.changed(store, conn)
        change = {"key": key, "old": old, "new": new, "overridden_before": before is not None,
                  "overridden": not clear}
        if (entry := audit.pending()) is not None:
            entry.details["change"] = change
        await events.append_in(store, conn, [events.Draft(
            type="agent.config_changed", source=by, subject=agent,
            payload={"agent": agent, **change})])


async def _one(store: Store, agent: str, key: str, item: dict[str, Any]) -> dict[str, Any]:
    async with store.read() as conn:
        row = await store_config.override(conn, agent, key)
    return {"agent": agent, **_entry(key, item, row)}
