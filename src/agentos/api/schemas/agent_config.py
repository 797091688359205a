"""/api/v1/agents/{name}/config and /capabilities: live config values and switches."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ConfigValueIn(BaseModel):
    """The body of ``PUT /api/v1/agents/{name}/config/{key}``: the new value, checked
    against the key's declared type and bounds."""

    model_config = ConfigDict(extra="forbid")

    value: Any = Field(description="A JSON value of the key's type")


class Override(BaseModel):
    value: Any
    updated_by: str
    updated_at: str | None
    applies: bool  # false: it no longer fits the current version's declaration


class ConfigEntry(BaseModel):
    key: str
    type: Literal["string", "integer", "float", "boolean", "json"]
    description: str | None
    default: Any
    min: float | None
    max: float | None
    choices: list[Any] | None
    value: Any  # what ctx.config gives handlers now
    overridden: bool
    override: Override | None


class AgentConfig(BaseModel):
    agent: str
    version: str  # the version whose declaration this is (the agent's current one)
    config: list[ConfigEntry]


class ConfigKey(ConfigEntry):
    agent: str


class SwitchIn(BaseModel):
    """The body of ``POST .../capabilities/{cap}/disable|enable``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500,
                        description="Why (required to disable); kept and audited")


class Switch(BaseModel):
    enabled: bool
    reason: str
    updated_by: str
    updated_at: str | None


class CapabilityState(BaseModel):
    name: str
    version: str
    description: str | None
    declared_enabled: bool
    enabled: bool  # now: the live switch if any, else the definition
    switch: Switch | None


class AgentCapabilities(BaseModel):
    agent: str
    version: str
    capabilities: list[CapabilityState]
