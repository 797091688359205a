"""/api/v1/models: a version to register, and a registered version."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelIn(BaseModel):
    """The body of ``POST /api/v1/models`` (names and sizes are checked by the registry:
    its errors name the rule)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str
    version: str
    type: str
    framework: str | None = None
    description: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    artifact_uri: str | None = None


class Model(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: int
    name: str
    version: str
    type: str
    framework: str | None
    description: str | None
    metrics: dict[str, Any]
    config: dict[str, Any]
    artifact_uri: str | None
    status: Literal["training", "deployed", "archived"]
    created_by: str
    created_at: str
    updated_at: str
    deployed_at: str | None
    archived_at: str | None


class ModelVersions(BaseModel):
    name: str
    deployed: list[str]  # the versions deployed now (one under the default policy)
    versions: list[Model]  # newest registration first


class ModelPage(BaseModel):
    models: list[Model]
    next_after: int | None  # pass as ``after`` for the next page
