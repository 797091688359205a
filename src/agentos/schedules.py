"""Schedules (SPEC §2.7): cron with a time zone, fixed interval, or one shot.

Each due tick fires an event, submits a task, or both (the task then sits under
the event in its correlation). Firing happens in one transaction that locks the
schedule row, appends the event and submits the task (each with a per-tick
dedup or idempotency key) and moves ``next_run_at`` on, so several scheduler
processes fire each tick exactly once. Ticks missed while no scheduler ran
follow the schedule's ``misfire`` policy: ``once`` fires a single catch-up
tick, ``skip`` fires none. Interval ticks fall on a grid anchored where the
timing was last set (creation or a change), so ``next_run_at`` is always on it.

Each fire is recorded in the same transaction (``fires`` lists them, newest first):
the tick, when it fired, whether it was a late catch-up, the event and task it made
or why its task could not be submitted. A schedule keeps its newest ``KEEP_FIRES``
fires (older ones are pruned as it fires); deleting it deletes them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agentos import events, inputs, paging, patterns, queue, registry
from agentos.aio import wait_wakeup
from agentos.errors import Conflict, InvalidInput, NotFound
from agentos.lifecycle import Status as VersionStatus
from agentos.store import Store
from agentos.store import schedule_fires as store_fires
from agentos.store.columns import database_now
from agentos.store.tables import schedules as table
from agentos.tasks import TaskIn, TaskTemplate

log = logging.getLogger("agentos.schedules")

NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
MISFIRE_GRACE = timedelta(seconds=30)  # a tick later than this was missed
MAX_CATCH_UP = 10_000  # ticks walked when looking for the missed ones
TICK = 0.5  # seconds between scheduler passes
BATCH = 100  # schedules fired per transaction
KEEP_FIRES = 1000  # fires kept per schedule, the newest
MAX_FIRES_PAGE = paging.MAX_LIMIT


class EventTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: events.PriorityName = "normal"

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return patterns.check_event_type(v)


class Timing(BaseModel):
    """Exactly one of ``cron`` (+ ``timezone``), ``interval_s`` or ``at``."""

    model_config = ConfigDict(extra="forbid")
    cron: str | None = None
    timezone: str | None = None
    interval_s: Annotated[float, Field(gt=0, le=366 * 86_400)] | None = None
    at: datetime | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None and not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a cron expression (like '*/5 * * * *')")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{v!r} is not a time zone (like 'Europe/Paris')") from None
        return v

    @field_validator("at")
    @classmethod
    def _at(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("at needs a time zone offset, e.g. 2026-12-01T10:00:00Z")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Timing:
        given = [k for k in ("cron", "interval_s", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of cron, interval_s or at")
        if self.timezone and not self.cron:
            raise ValueError("timezone applies to cron schedules only")
        return self

    @property
    def kind(self) -> str:
        return "cron" if self.cron else "interval" if self.interval_s else "once"


NOTHING_TO_FIRE = "give an event to fire, a task to submit, or both"


class ScheduleIn(Timing):
    name: str
    # a one-shot schedule's moment is still to come (a Timing read back may be past it)
    at: Annotated[datetime | None, AfterValidator(inputs.not_past)] = None
    event: EventTemplate | None = None
    task: TaskTemplate | None = None  # submitted on every tick
    misfire: Literal["skip", "once"] = "once"
    paused: StrictBool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"name must match {NAME.pattern}")
        return v

    @model_validator(mode="after")
    def _fires_something(self) -> ScheduleIn:
        if self.event is None and self.task is None:
            raise ValueError(NOTHING_TO_FIRE)
        return self


class SchedulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cron: str | None = None
    timezone: str | None = None
    interval_s: float | None = None
    at: Annotated[datetime | None, AfterValidator(inputs.not_past)] = None
    event: EventTemplate | None = None  # null: stop firing an event
    task: TaskTemplate | None = None  # null: stop submitting a task
    misfire: Literal["skip", "once"] | None = None
    paused: StrictBool | None = None


# -------------------------------------------------------------- pure core


def next_tick(timing: Timing, after: datetime, anchor: datetime) -> datetime | None:
    """The first tick strictly after ``after`` (UTC), or None when there is none.
    Interval ticks fall on ``anchor + k * interval``."""
    if timing.cron:
        zone = ZoneInfo(timing.timezone or "UTC")
        local: datetime = croniter(timing.cron, after.astimezone(zone)).get_next(datetime)
        return local.astimezone(UTC)
    if timing.interval_s:
        step = timedelta(seconds=timing.interval_s)
        if after < anchor:
            return anchor
        k = (after - anchor) // step + 1
        return anchor + k * step
    assert timing.at is not None
    at = timing.at.astimezone(UTC)
    return at if at > after else None


@dataclass(frozen=True)
class Plan:
    fire_for: datetime | None  # the tick to fire an event for, if any
    missed: int  # ticks passed over
    next_run_at: datetime | None


def plan(timing: Timing, due: datetime, now: datetime, anchor: datetime,
         misfire: str) -> Plan:
    """What to do at ``now`` with a schedule whose next tick was ``due`` (<= now)."""
    ticks = [due]
    while len(ticks) < MAX_CATCH_UP:
        after = next_tick(timing, ticks[-1], anchor)
        if after is None or after > now:
            break
        ticks.append(after)
    following = next_tick(timing, now, anchor)
    on_time = [t for t in ticks if now - t <= MISFIRE_GRACE]
    if on_time:
        return Plan(on_time[-1], len(ticks) - 1, following)
    if misfire == "once":
        return Plan(ticks[-1], len(ticks) - 1, following)
    return Plan(None, len(ticks), following)


# ---------------------------------------------------------------- storage


@dataclass(frozen=True)
class Schedule:
    row: Any

    def timing(self) -> Timing:
        r = self.row
        return Timing(cron=r.cron, timezone=r.timezone, interval_s=r.interval_s,
                      at=r.run_at)

    def event(self) -> EventTemplate | None:
        r = self.row
        if r.event_type is None:
            return None
        return EventTemplate.model_validate({
            "type": r.event_type, "payload": r.payload,
            "priority": events.Priority(r.priority).name.lower()})

    def task(self) -> TaskTemplate | None:
        return TaskTemplate.model_validate(self.row.task) if self.row.task else None

    def to_dict(self) -> dict[str, Any]:
        r = self.row

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "name": r.name, "kind": r.kind, "cron": r.cron, "timezone": r.timezone,
            "interval_s": r.interval_s, "at": iso(r.run_at),
            "event": event.model_dump() if (event := self.event()) else None,
            "task": r.task, "misfire": r.misfire, "paused": r.paused,
            "next_run_at": iso(r.next_run_at), "last_run_at": iso(r.last_run_at),
            "last_event_id": r.last_event_id, "last_task_id": r.last_task_id,
            "last_error": r.last_error, "fire_count": r.fire_count, "created_at": iso(r.created_at),
            "updated_at": iso(r.updated_at),
        }


async def _db_now(store: Store) -> datetime:
    async with store.read() as conn:
        now: datetime = await database_now(conn)
    return now


def _timing_values(timing: Timing, now: datetime) -> dict[str, Any]:
    return {"kind": timing.kind, "cron": timing.cron, "timezone": timing.timezone,
            "interval_s": timing.interval_s, "run_at": timing.at,
            "next_run_at": next_tick(timing, now, now) if timing.kind != "once"
            else (timing.at.astimezone(UTC) if timing.at else None)}


def _fire_values(event: EventTemplate | None, task: TaskTemplate | None) -> dict[str, Any]:
    return {"event_type": event.type if event else None,
            "payload": event.payload if event else None,
            "priority": int(events.Priority.parse(event.priority)) if event else None,
            "task": task.model_dump(exclude_none=True) if task else None}


async def unrunnable(store: Store, task: TaskTemplate) -> str | None:
    """Why ``task`` cannot be submitted now (its agent or version is not
    published), or None when it can."""
    try:
        found = await registry.versions(store, task.agent)
    except NotFound:
        found = []
    if any(v.status is VersionStatus.PUBLISHED and task.version in (None, v.version)
           for v in found):
        return None
    what = f"{task.agent} {task.version}" if task.version else task.agent
    return f"no published version of agent {what}"


async def _require_runnable(store: Store, task: TaskTemplate) -> None:
    if (reason := await unrunnable(store, task)) is not None:
        raise InvalidInput(reason, code="agent_not_runnable",
                           details={"agent": task.agent, "version": task.version})


def _check_event(event: EventTemplate | None, max_payload: int) -> None:
    if event is not None:  # the cap every emitted event is held to
        events.encode_payloads([events.EventIn(type=event.type, payload=event.payload)],
                               max_payload)


async def create(store: Store, spec: ScheduleIn,
                 max_payload: int = events.DEFAULT_MAX_PAYLOAD) -> Schedule:
    _check_event(spec.event, max_payload)
    if spec.task is not None:
        await _require_runnable(store, spec.task)
    now = await _db_now(store)
    values = {
        "name": spec.name, **_timing_values(spec, now), **_fire_values(spec.event, spec.task),
        "misfire": spec.misfire, "paused": spec.paused, "fire_count": 0,
        "created_at": now, "updated_at": now,
    }
    if spec.kind == "interval":
        values["next_run_at"] = now + timedelta(seconds=spec.interval_s or 0)
    async with store.write() as conn:
        if (await conn.execute(select(table.c.name).where(table.c.name == spec.name))).first():
            raise Conflict(f"schedule {spec.name} exists", code="schedule_exists")
        await conn.execute(insert(table).values(**values))
    return await get(store, spec.name)


async def get(store: Store, name: str) -> Schedule:
    async with store.read() as conn:
        row = (await conn.execute(select(table).where(table.c.name == name))).first()
    if row is None:
        raise NotFound(f"no schedule named {name}", code="schedule_not_found")
    return Schedule(row)


async def list_all(store: Store) -> list[Schedule]:
    return (await page(store, limit=None))[0]


async def page(store: Store, after: str | None = None, limit: int | None = paging.DEFAULT_LIMIT
               ) -> tuple[list[Schedule], str | None]:
    """Schedules by name after ``after``, at most ``limit``; and the next page's cursor."""
    async with store.read() as conn:
        rows, next_after = await paging.keyed(conn, select(table), table.c.name, after, limit)
    return [Schedule(r) for r in rows], next_after


@dataclass(frozen=True)
class Fire:
    """One tick a schedule fired."""

    row: Any

    def to_dict(self) -> dict[str, Any]:
        r = self.row
        return {"id": r.id, "schedule": r.schedule,
                "scheduled_for": r.scheduled_for.isoformat(),
                "fired_at": r.fired_at.isoformat(), "catch_up": r.catch_up,
                "missed": r.missed, "event_id": r.event_id, "task_id": r.task_id,
                "error": r.error}


async def fires(store: Store, name: str, before: str | None = None,
                limit: int = paging.DEFAULT_LIMIT) -> tuple[list[Fire], str | None]:
    """The schedule's fires newest first, those older than the fire ``before`` (the
    previous page's cursor), at most ``limit``; and the next page's cursor."""
    if not 1 <= limit <= MAX_FIRES_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_FIRES_PAGE}", code="bad_limit")
    async with store.read() as conn:
        if (await conn.execute(select(table.c.name).where(table.c.name == name))).first() \
                is None:
            raise NotFound(f"no schedule named {name}", code="schedule_not_found")
        rows, next_before = paging.cut(
            await store_fires.page(conn, name, before, paging.fetch(limit)), limit,
            lambda r: str(r.id))
    return [Fire(r) for r in rows], next_before


async def remove(store: Store, name: str) -> None:
    async with store.write() as conn:
        if (await conn.execute(delete(table).where(table.c.name == name))).rowcount == 0:
            raise NotFound(f"no schedule named {name}", code="schedule_not_found")


async def change(store: Store, name: str, patch: SchedulePatch,
                 max_payload: int = events.DEFAULT_MAX_PAYLOAD) -> Schedule:
    """Apply a partial update. A new timing starts from now (an interval's ticks
    then fall on now + k * interval); a resume skips the ticks that passed while
    paused; ``event``/``task`` given as None stop firing that (one must remain)."""
    current = await get(store, name)
    given = patch.model_dump(exclude_unset=True)
    values: dict[str, Any] = {}
    now = await _db_now(store)
    timing_keys = {"cron", "timezone", "interval_s", "at"}
    if given.keys() & timing_keys:
        old = current.timing().model_dump()
        if given.keys() & {"cron", "interval_s", "at"}:
            old = {"cron": None, "interval_s": None, "at": None,
                   "timezone": old["timezone"] if "cron" in given else None}
        merged = {**old, **{k: v for k, v in given.items() if k in timing_keys}}
        try:
            timing = Timing(**merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise InvalidInput(f"{where}: {message}" if where else message,
                               code="bad_schedule") from None
        values.update(_timing_values(timing, now))
        if timing.kind == "interval":
            values["next_run_at"] = now + timedelta(seconds=timing.interval_s or 0)
    if given.keys() & {"event", "task"}:
        event = patch.event if "event" in given else current.event()
        task = patch.task if "task" in given else current.task()
        if event is None and task is None:
            raise InvalidInput(NOTHING_TO_FIRE, code="bad_schedule")
        _check_event(patch.event, max_payload)
        if "task" in given and task is not None:
            await _require_runnable(store, task)
        values.update(_fire_values(event, task))
    if patch.misfire is not None:
        values["misfire"] = patch.misfire
    if patch.paused is not None:
        values["paused"] = patch.paused
        if not patch.paused and current.row.paused and "next_run_at" not in values:
            # resuming does not replay the ticks that passed while paused
            nxt = next_tick(current.timing(), now, current.row.next_run_at or now)
            values["next_run_at"] = nxt
    if values:
        values["updated_at"] = now
        async with store.write() as conn:
            await conn.execute(update(table).where(table.c.name == name).values(**values))
    return await get(store, name)


async def fire_due(store: Store) -> int:
    """Fire every due schedule once; returns the number of ticks that made
    something new (an event or a task)."""
    c = table.c
    async with store.write() as conn:
        now: datetime = await database_now(conn)
        due = (await conn.execute(
            select(table).where(c.paused.is_(False), c.next_run_at.is_not(None),
                                c.next_run_at <= now)
            .order_by(c.next_run_at).limit(BATCH).with_for_update(skip_locked=True))).all()
        ticks: list[tuple[Any, str]] = []
        plans: dict[str, Plan] = {}
        for row in due:
            # an interval's grid passes through every next_run_at: anchor there
            p = plan(Schedule(row).timing(), row.next_run_at, now, row.next_run_at,
                     row.misfire)
            values: dict[str, Any] = {"next_run_at": p.next_run_at, "updated_at": now}
            if p.missed:
                log.warning("schedule %s missed %d ticks", row.name, p.missed,
                            extra={"action": "schedule_missed", "schedule": row.name})
            if p.fire_for is not None:
                ticks.append((row, p.fire_for.isoformat()))
                plans[row.name] = p
                values.update(last_run_at=now, fire_count=c.fire_count + 1)
            await conn.execute(update(table).where(c.name == row.name).values(**values))
        return await _fire(store, conn, ticks, plans, now) if ticks else 0


async def _fire(store: Store, conn: AsyncConnection, ticks: list[tuple[Any, str]],
                plans: dict[str, Plan], now: datetime) -> int:
    """Append the ticks' events, then submit their tasks under them; record each fire."""
    c = table.c
    outcome: dict[str, dict[str, Any]] = {row.name: {} for row, _ in ticks}
    # checked before appending: the log head stays locked from there to the commit
    reasons: dict[tuple[str, str | None], str | None] = {}
    runnable: list[tuple[Any, str]] = []
    for row, tick in ticks:
        if row.task is None:
            continue
        template = TaskTemplate.model_validate(row.task)
        key = (template.agent, template.version)
        if key not in reasons:
            reasons[key] = await unrunnable(store, template)
        if reasons[key] is None:
            runnable.append((row, tick))
            continue
        log.warning("schedule %s cannot submit its task: %s", row.name, reasons[key],
                    extra={"action": "schedule_task_skipped", "schedule": row.name})
        outcome[row.name]["last_error"] = {"code": "agent_not_runnable",
                                           "message": reasons[key], "tick": tick}
    with_event = [(row, tick) for row, tick in ticks if row.event_type is not None]
    appended = await events.append_in(store, conn, [events.EventIn(
        type=row.event_type, source=f"schedule:{row.name}",
        payload={**row.payload, "schedule": row.name, "scheduled_for": tick},
        priority=events.Priority(row.priority).name.lower(),
        dedup_key=f"schedule:{row.name}:{tick}") for row, tick in with_event])
    fired = {row.name: a for (row, _), a in zip(with_event, appended, strict=True)}
    new = {name for name, a in fired.items() if not a.duplicate}
    for name, a in fired.items():
        outcome[name]["last_event_id"] = a.event.id
    work = []
    for row, tick in runnable:
        cause = fired[row.name].event if row.name in fired else None
        work.append(TaskIn.model_validate({
            **row.task, "idempotency_key": f"schedule:{row.name}:{tick}",
            "correlation_id": cause.correlation_id if cause else None,
            "causation_id": cause.id if cause else None}))
    made = await queue.submit_in(store, conn, work) if work else []
    for (row, _), (task, is_new) in zip(runnable, made, strict=True):
        outcome[row.name].update(last_task_id=task.id, last_error=None)
        if is_new:
            new.add(row.name)
    for name, values in outcome.items():
        if values:
            await conn.execute(update(table).where(c.name == name).values(**values))
    await store_fires.record(conn, [_fire_record(row.name, plans[row.name], outcome[row.name],
                                                 now) for row, _ in ticks], KEEP_FIRES)
    return len(new)


def _fire_record(name: str, p: Plan, outcome: dict[str, Any], now: datetime
                 ) -> dict[str, Any]:
    assert p.fire_for is not None
    return {"schedule": name, "scheduled_for": p.fire_for, "fired_at": now,
            "catch_up": now - p.fire_for > MISFIRE_GRACE, "missed": p.missed,
            "event_id": outcome.get("last_event_id"), "task_id": outcome.get("last_task_id"),
            "error": outcome.get("last_error")}


async def run(store: Store, stop: asyncio.Event | None = None) -> None:
    """Fire schedules until ``stop`` is set (or cancelled)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await fire_due(store)
        except Exception:
            log.exception("scheduler pass failed", extra={"action": "scheduler_failed"})
        await wait_wakeup(stop, TICK)
