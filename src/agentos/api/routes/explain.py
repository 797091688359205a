"""Explaining itself: GET /api/v1/tasks/{id}/explain (why is this task not running)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agentos.api.deps import StoreDep
from agentos.api.schemas import explain as schemas
from agentos.explain import task as task_explain

router = APIRouter(tags=["explain"])


@router.get("/api/v1/tasks/{task_id}/explain", response_model=schemas.TaskExplanation)
async def explain_task(store: StoreDep, task_id: str) -> dict[str, Any]:
    """The gate that holds the task now (not due, its agent's concurrency, a resource, no
    worker, a budget, ...) with every gate's finding; for an ended task, why it ended."""
    return await task_explain.explain(store, task_id)
