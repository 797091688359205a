"""/api/v1/approvals: what waits for a person's decision, and the decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from agentos import approvals
from agentos.api.access import PrincipalDep
from agentos.api.deps import StoreDep
from agentos.api.schemas.workflows import Approval, ApprovalPage, DecisionIn

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])


@router.get("")
async def list_approvals(
    store: StoreDep,
    status_: Annotated[approvals.Status | None, Query(alias="status")] = None,
    run_id: Annotated[str | None, Query(max_length=36)] = None,
    before: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=approvals.MAX_PAGE)] = 100,
) -> ApprovalPage:
    """Approvals newest first (``status=pending``: what waits for a decision)."""
    found, next_before = await approvals.page(store, status=status_, run_id=run_id,
                                              before=before, limit=limit)
    return ApprovalPage(approvals=[Approval.model_validate(a.to_dict()) for a in found],
                        next_before=next_before)


@router.get("/{approval_id}")
async def get_approval(store: StoreDep, approval_id: str) -> Approval:
    return Approval.model_validate((await approvals.get(store, approval_id)).to_dict())


@router.post("/{approval_id}/approve")
async def approve(store: StoreDep, principal: PrincipalDep, approval_id: str,
                  body: DecisionIn | None = None) -> Approval:
    """Approve; needs the approval's role or higher (403), once (409)."""
    decided = await approvals.decide(store, approval_id, True, body.comment if body else None,
                                     actor=principal.actor, role=principal.role)
    return Approval.model_validate(decided.to_dict())


@router.post("/{approval_id}/reject")
async def reject(store: StoreDep, principal: PrincipalDep, approval_id: str,
                 body: DecisionIn | None = None) -> Approval:
    """Reject; needs the approval's role or higher (403), once (409)."""
    decided = await approvals.decide(store, approval_id, False,
                                     body.comment if body else None,
                                     actor=principal.actor, role=principal.role)
    return Approval.model_validate(decided.to_dict())
