"""/api/v1/projections: where a read model stands, and a page of its state."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class Rebuild(BaseModel):
    target_seq: int  # the log's head when the rebuild began
    progress: float  # 0..1
    started_at: str | None


class ProjectionStatus(BaseModel):
    name: str
    description: str
    types: list[str]  # the event-type globs it reads
    status: Literal["live", "catching_up", "rebuilding"]
    cursor_seq: int  # the last event it has read
    head_seq: int  # the log's settled head
    lag_events: int  # log events it has not read yet
    lag_s: float  # how old the oldest of them is
    applied: int  # events applied since its last rebuild
    updated_at: str | None
    rebuild: Rebuild | None


class ProjectionList(BaseModel):
    projections: list[ProjectionStatus]


class ProjectionState(BaseModel):
    items: dict[str, Any]  # key -> value, in key order
    next_after: str | None  # pass as ``after`` for the next page
