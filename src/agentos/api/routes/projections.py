"""/api/v1/projections: read models' status, rebuilds, and their state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from agentos import projections
from agentos.api.deps import ProjectionsDep, StoreDep
from agentos.api.schemas.projections import ProjectionList, ProjectionState, ProjectionStatus

router = APIRouter(prefix="/api/v1/projections", tags=["projections"])


@router.get("")
async def list_projections(store: StoreDep, registry: ProjectionsDep) -> ProjectionList:
    """Every projection: cursor, lag and status."""
    return ProjectionList.model_validate(
        {"projections": await projections.status(store, registry)})


@router.get("/{name}")
async def get_projection(store: StoreDep, registry: ProjectionsDep,
                         name: str) -> ProjectionStatus:
    [found] = await projections.status(store, registry, [name])
    return ProjectionStatus.model_validate(found)


@router.post("/{name}/rebuild", status_code=status.HTTP_202_ACCEPTED)
async def rebuild(store: StoreDep, registry: ProjectionsDep, name: str) -> ProjectionStatus:
    """Clear the projection and fold the log again from the start (the servers'
    projection loops do it; follow ``rebuild.progress``). 409 while one runs."""
    return ProjectionStatus.model_validate(await projections.rebuild(store, registry, name))


@router.get("/{name}/state")
async def state(store: StoreDep, registry: ProjectionsDep, name: str,
                request: Request) -> ProjectionState:
    """The projection's state: ``key`` (one), ``prefix``, ``after`` (paging), ``limit``."""
    params: dict[str, Any] = dict(request.query_params)
    found = await projections.find(registry, name).query(store, params)
    return ProjectionState.model_validate(found)
