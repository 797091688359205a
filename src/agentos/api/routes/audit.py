"""/api/v1/audit: the audit log, newest first, and its chain check (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from agentos import audit, inputs
from agentos.api.deps import StoreDep

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
async def list_audit(
    store: StoreDep,
    actor: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    outcome: audit.Outcome | None = None,
    since: inputs.Moment | None = None,  # a time zone is required: naive times are 422
    until: inputs.Moment | None = None,
    before_seq: Annotated[int | None, Query(ge=1, le=inputs.INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Rows newest first; page with ``before_seq`` = the previous ``next_before_seq``."""
    rows, next_before = await audit.query(store, audit.Query(
        actor=actor, action=action, resource_type=resource_type, resource_id=resource_id,
        outcome=outcome, since=since, until=until, before_seq=before_seq, limit=limit))
    return {"entries": rows, "next_before_seq": next_before}


@router.get("/verify")
async def verify(store: StoreDep) -> dict[str, Any]:
    """Walk the hash chain: intact, or the first broken link."""
    return (await audit.verify(store)).to_dict()
