"""Liveness and readiness, outside /api/v1 and without credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from agentos import __version__, readiness
from agentos.api.deps import StoreDep
from agentos.api.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, Any]:
    """The process is alive and serving."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", response_model=None)
async def ready(store: StoreDep) -> dict[str, Any] | JSONResponse:
    """The database answers, takes changes, and its schema is the one this code needs.
    ``database.problem`` names what is wrong: ``database_unavailable`` (unreachable, or
    its file removed or replaced), ``database_read_only``, ``disk_full``."""
    found = await readiness.check(store)
    if found.why_not is not None:
        return error_response(503, "not_ready", found.why_not, found.report)
    return {"status": "ready", **found.report}
