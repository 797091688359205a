"""GET /api/v1/tasks/{id}/logs: the lines a task's handler wrote, per attempt."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from agentos import inputs, task_logs
from agentos.api.deps import StoreDep
from agentos.api.schemas import task_logs as schemas

router = APIRouter(tags=["tasks"])


@router.get("/api/v1/tasks/{task_id}/logs", response_model=schemas.TaskLogs)
async def logs(
    store: StoreDep, task_id: str,
    attempt: Annotated[inputs.Attempt | None, Query()] = None,
    after: Annotated[str | None, Query(max_length=32,
                                       description="ATTEMPT:LINE, a page's next_after")] = None,
    limit: Annotated[int, Query(ge=1, le=task_logs.MAX_PAGE)] = task_logs.DEFAULT_PAGE,
) -> dict[str, Any]:
    """The task's log lines oldest first (attempt, then line), ``attempt``: one
    attempt's. A running attempt's lines arrive with its worker's heartbeats (every
    third of a lease); the rest with its end. A line of level ``truncated`` says the
    attempt's log reached its bound and what came after was dropped."""
    return await task_logs.page(store, task_id, attempt=attempt, after=after, limit=limit)
