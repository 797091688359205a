"""/api/v1/schedules: cron, interval and one-shot schedules that fire events and
submit tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from agentos import paging, schedules
from agentos.api.deps import Limit, SettingsDep, StoreDep
from agentos.api.schemas.schedules import Schedule, ScheduleFirePage, SchedulePage

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Schedule)
async def create(store: StoreDep, settings: SettingsDep, body: schedules.ScheduleIn
                 ) -> dict[str, Any]:
    """A schedule that fires ``event``, submits ``task`` (to a published agent), or both."""
    return (await schedules.create(store, body, settings.event_max_payload_bytes)).to_dict()


@router.get("", response_model=SchedulePage)
async def list_schedules(store: StoreDep, after: str | None = None,
                         limit: Limit = paging.DEFAULT_LIMIT) -> dict[str, Any]:
    """Schedules by name; page with ``after`` = the previous ``next_after``."""
    found, next_after = await schedules.page(store, after, limit)
    return {"schedules": [s.to_dict() for s in found], "next_after": next_after}


@router.get("/{name}", response_model=Schedule)
async def get(store: StoreDep, name: str) -> dict[str, Any]:
    return (await schedules.get(store, name)).to_dict()


@router.get("/{name}/fires", response_model=ScheduleFirePage)
async def fires(store: StoreDep, name: str,
                before: Annotated[str | None, Query(max_length=36)] = None,
                limit: Limit = paging.DEFAULT_LIMIT) -> dict[str, Any]:
    """The ticks it fired, newest first (its latest ``schedules.KEEP_FIRES``), each with
    the event and task it made; page with ``before`` = the previous ``next_before``."""
    found, next_before = await schedules.fires(store, name, before, limit)
    return {"fires": [f.to_dict() for f in found], "next_before": next_before}


@router.patch("/{name}", response_model=Schedule)
async def patch(store: StoreDep, settings: SettingsDep, name: str,
                body: schedules.SchedulePatch) -> dict[str, Any]:
    """Change what is given; ``"event": null`` or ``"task": null`` stops firing it."""
    return (await schedules.change(store, name, body, settings.event_max_payload_bytes)
            ).to_dict()


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(store: StoreDep, name: str) -> None:
    await schedules.remove(store, name)


@router.post("/{name}/pause", response_model=Schedule)
async def pause(store: StoreDep, name: str) -> dict[str, Any]:
    return (await schedules.change(store, name, schedules.SchedulePatch(paused=True))).to_dict()


@router.post("/{name}/resume", response_model=Schedule)
async def resume(store: StoreDep, name: str) -> dict[str, Any]:
    return (await schedules.change(store, name, schedules.SchedulePatch(paused=False))
            ).to_dict()
