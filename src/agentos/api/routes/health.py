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
    """The database answers, takes changes, and its schema is the one this code needs.
    ``database.problem`` names what is wrong: ``database_unavailable`` (unreachable, or
    its file removed or replaced), ``database_read_only``, ``disk_full``."""
    head = schema.head()
    report: dict[str, Any] = {"database": {"dialect": store.dialect, "reachable": False,
                                           "writable": False},
                              "schema": {"current": None, "head": head, "up_to_date": False},
                              "pool": store.pool_status()}
    database = report["database"]
    try:
        await store.ping()
        database["reachable"] = True
        async with store.read() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version")
                                          )).scalar()
        report["schema"].update(current=current, up_to_date=current == head)
        if current == head:
            problem = await store.unwritable()
            database["writable"] = problem is None
            if problem:
                database["problem"] = problem
    except AgentOSError as exc:
        database["problem"] = exc.code
    if database["reachable"] and not report["schema"]["up_to_date"]:
        return error_response(503, "not_ready",
                              "the database schema is not current; run: agentos db upgrade",
                              report)
    if not database["writable"]:
        why = {"database_read_only": "the database is read-only",
               "disk_full": "the database's disk is full"}.get(
            database.get("problem", ""), "the database is unavailable")
        return error_response(503, "not_ready", why, report)
    return {"status": "ready", **report}
