"""Operating agents over HTTP: live config, capability switches, live state of agents
and workers, and deleting an agent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from agentos import agent_config, agent_removal, agent_state, capabilities
from agentos.api.access import PrincipalDep
from agentos.api.deps import StoreDep
from agentos.api.schemas.agent_config import (
    AgentCapabilities,
    AgentConfig,
    ConfigKey,
    ConfigValueIn,
    SwitchIn,
)
from agentos.api.schemas.agent_state import AgentDeleted, AgentState, WorkerState

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
workers_router = APIRouter(prefix="/api/v1/workers", tags=["workers"])


@router.get("/{name}/config")
async def get_config(store: StoreDep, name: str) -> AgentConfig:
    """Each declared config key: type, bounds, default, and the value handlers get now."""
    return AgentConfig.model_validate(await agent_config.view(store, name))


@router.put("/{name}/config/{key}")
async def set_config(store: StoreDep, principal: PrincipalDep, name: str, key: str,
                     body: ConfigValueIn) -> ConfigKey:
    """Override a key's value live (checked against its declared type and bounds)."""
    return ConfigKey.model_validate(await agent_config.set_value(
        store, name, key, body.value, by=principal.actor))


@router.delete("/{name}/config/{key}")
async def clear_config(store: StoreDep, principal: PrincipalDep, name: str,
                       key: str) -> ConfigKey:
    """Clear a key's override: its default applies again."""
    return ConfigKey.model_validate(await agent_config.clear(store, name, key,
                                                             by=principal.actor))


@router.get("/{name}/capabilities")
async def get_capabilities(store: StoreDep, name: str) -> AgentCapabilities:
    """Declared capabilities and whether each is enabled now."""
    return AgentCapabilities.model_validate(await capabilities.view(store, name))


@router.post("/{name}/capabilities/{capability}/disable")
async def disable(store: StoreDep, principal: PrincipalDep, name: str, capability: str,
                  body: SwitchIn) -> AgentCapabilities:
    """Switch a capability off now (a reason is required): its triggers stop firing and
    the agent's tasks that need it wait."""
    return AgentCapabilities.model_validate(await capabilities.switch(
        store, name, capability, enabled=False, reason=body.reason, by=principal.actor))


@router.post("/{name}/capabilities/{capability}/enable")
async def enable(store: StoreDep, principal: PrincipalDep, name: str, capability: str,
                 body: SwitchIn | None = None) -> AgentCapabilities:
    """Switch a capability on again."""
    return AgentCapabilities.model_validate(await capabilities.switch(
        store, name, capability, enabled=True, reason=body.reason if body else "",
        by=principal.actor))


@router.get("/{name}/state")
async def get_state(store: StoreDep, name: str) -> AgentState:
    """Status, running tasks, held locks, queue depth, holds, last heartbeat and error."""
    return AgentState.model_validate(await agent_state.of_agent(store, name))


@router.delete("/{name}")
async def delete_agent(store: StoreDep, principal: PrincipalDep, name: str,
                       force: Annotated[bool, Query()] = False) -> AgentDeleted:
    """Delete an agent: its versions, config, capability switches, holds, metrics and
    budgets (never its events or audit rows). Refused while its tasks run unless
    ``force=true``, which cancels them."""
    return AgentDeleted.model_validate(await agent_removal.delete(store, name, force=force,
                                                                  by=principal.actor))


@workers_router.get("/{worker_id}")
async def get_worker(store: StoreDep, worker_id: str) -> WorkerState:
    """One worker instance: its record, running tasks and the locks they hold."""
    return WorkerState.model_validate(await agent_state.of_worker(store, worker_id))
