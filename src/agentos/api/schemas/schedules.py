"""Schedules: when they fire and what (an event, a task, or both)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from agentos.api.schemas.common import Model, Page, Timestamp


class ScheduledEvent(Model):
    type: str
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: str = "normal"


class ScheduledTask(Model):
    """The task each tick submits, with the fields its schedule set (no nulls)."""

    agent: str
    version: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    priority: int = 5
    max_retries: int | None = None
    timeout_s: float | None = None

    @model_serializer(mode="wrap")
    def _given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        return {k: v for k, v in out.items() if v is not None}


class Schedule(Model):
    name: str
    kind: str  # cron, interval, once
    cron: str | None
    timezone: str | None
    interval_s: float | None
    at: Timestamp | None
    event: ScheduledEvent | None
    task: ScheduledTask | None
    misfire: str  # once, skip
    paused: bool
    next_run_at: Timestamp | None
    last_run_at: Timestamp | None
    last_event_id: str | None
    last_task_id: str | None
    last_error: dict[str, Any] | None  # why the last tick could not submit its task
    fire_count: int
    created_at: Timestamp
    updated_at: Timestamp


class SchedulePage(Page[Schedule]):
    """Schedules by name."""

    ITEMS = "schedules"
    CURSOR = ("next_after", "after")
    schedules: list[Schedule]
    next_after: str | None = None


class ScheduleFire(Model):
    """One tick a schedule fired, and what it made."""

    id: str
    schedule: str
    scheduled_for: Timestamp  # the tick
    fired_at: Timestamp
    catch_up: bool  # fired late, for a tick missed while no scheduler ran
    missed: int  # ticks passed over without a fire before this one
    event_id: str | None
    task_id: str | None
    error: dict[str, Any] | None  # why its task could not be submitted


class ScheduleFirePage(Page[ScheduleFire]):
    """A schedule's fires, newest first."""

    ITEMS = "fires"
    CURSOR = ("next_before", "before")
    fires: list[ScheduleFire]
    next_before: str | None = None  # pass as ``before`` for the next (older) page
