"""/api/v1/models: the model registry over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from agentos import model_registry
from agentos.api.access import PrincipalDep
from agentos.api.deps import SettingsDep, StoreDep
from agentos.api.schemas.models import Model, ModelIn, ModelPage, ModelVersions
from agentos.model_registry import Status

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def register(store: StoreDep, principal: PrincipalDep, body: ModelIn) -> Model:
    """Register a model version (status ``training``)."""
    return Model.model_validate(await model_registry.register(
        store, model_registry.ModelIn(**body.model_dump()), by=principal.actor))


@router.get("")
async def list_models(
    store: StoreDep,
    name: str | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    type: str | None = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=model_registry.MAX_PAGE)] = 100,
) -> ModelPage:
    """Model versions in registration order, filtered."""
    found, next_after = await model_registry.search(store, model_registry.Query(
        name=name, status=status_, type=type, after=after, limit=limit))
    return ModelPage.model_validate({"models": found, "next_after": next_after})


@router.get("/{name}")
async def get_model(store: StoreDep, name: str) -> ModelVersions:
    """A model's versions, newest first, and which are deployed."""
    return ModelVersions.model_validate(await model_registry.versions(store, name))


@router.get("/{name}/versions/{version}")
async def get_version(store: StoreDep, name: str, version: str) -> Model:
    return Model.model_validate(await model_registry.get(store, name, version))


@router.post("/{name}/versions/{version}/deploy")
async def deploy(store: StoreDep, settings: SettingsDep, principal: PrincipalDep, name: str,
                 version: str) -> Model:
    """Deploy a version (the one deployed before is archived, unless the policy is
    ``many``); an archived version cannot be deployed (409)."""
    return Model.model_validate(await model_registry.change(
        store, name, version, "deploy", by=principal.actor,
        policy=settings.model_deploy_policy))


@router.post("/{name}/versions/{version}/archive")
async def archive(store: StoreDep, principal: PrincipalDep, name: str, version: str) -> Model:
    """Retire a version for good."""
    return Model.model_validate(await model_registry.change(
        store, name, version, "archive", by=principal.actor))
