"""Liveness and readiness, outside /api/v1 and without credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from agentos import __version__
from agentos.api.deps import StoreDep
from agentos.api.errors import error_response
from agentos.errors import AgentOSError
from agentos.store import schema

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, Any]:
    """The process is alive and serving."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", response_model=None)
async def ready(store: StoreDep) -> dict[str, Any] | JSONResponse:
    """The database answers and its schema is the one this code needs."""
    head = schema.head()
    report: dict[str, Any] = {"database": {"dialect": store.dialect, "reachable": False},
                              "schema": {"current": None, "head": head, "up_to_date": False},
                              "pool": store.pool_status()}
    try:
        await store.ping()
        report["database"]["reachable"] = True
        async with store.read() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version")
                                          )).scalar()
        report["schema"].update(current=current, up_to_date=current == head)
    except AgentOSError as exc:
        report["database"]["reason"] = exc.message
    if not report["schema"]["up_to_date"]:
        why = ("the database is unreachable" if not report["database"]["reachable"]
               else "the database schema is not current; run: agentos db upgrade")
        return error_response(503, "not_ready", why, report)
    return {"status": "ready", **report}
