"""Explaining itself: GET /api/v1/tasks/{id}/explain (why is this task not running) and
POST /api/v1/router/explain (where would this event go)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agentos.api.deps import StoreDep
from agentos.api.schemas import explain as schemas
from agentos.events import EventIn
from agentos.explain import event as event_explain
from agentos.explain import task as task_explain

router = APIRouter(tags=["explain"])


@router.get("/api/v1/tasks/{task_id}/explain", response_model=schemas.TaskExplanation)
async def explain_task(store: StoreDep, task_id: str) -> dict[str, Any]:
    """The gate that holds the task now (not due, its agent's concurrency, a resource, no
    worker, a budget, ...) with every gate's finding; for an ended task, why it ended."""
    return await task_explain.explain(store, task_id)


@router.post("/api/v1/router/explain", response_model=schemas.RouteExplanation)
async def explain_event(store: StoreDep, event: EventIn) -> dict[str, Any]:
    """Which published agents' triggers an event would fire (and the task each would
    submit) and, for the others, the first condition that failed, with capability
    switches as they are now. The event is not appended: nothing is written."""
    return await event_explain.explain(store, event)
