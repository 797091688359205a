"""``agentos schedules``: cron, interval and one-shot schedules that fire events and
submit tasks."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from agentos.api.schemas.schedules import Schedule
from agentos.cli import events, options, output
from agentos.errors import InvalidInput

app = typer.Typer(help="Create, list, change, pause and delete schedules that fire events "
                       "and submit tasks.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.",
                                     show_default=False)]


class Misfire(StrEnum):
    ONCE = "once"
    SKIP = "skip"


Cron = Annotated[str | None, typer.Option(
    metavar="EXPR", show_default=False, help="A cron expression, e.g. '*/5 * * * *'.")]
Timezone = Annotated[str | None, typer.Option(
    metavar="TZ", show_default=False,
    help="The cron's time zone, e.g. Europe/Paris [default: UTC].")]
IntervalS = Annotated[float | None, typer.Option(
    metavar="SECONDS", show_default=False, help="Fire every SECONDS.")]
At = Annotated[str | None, typer.Option(
    metavar="TIME", show_default=False,
    help="Fire once at this ISO time, e.g. 2026-12-01T10:00:00Z.")]
Event = Annotated[str | None, typer.Option(
    "--event", metavar="TYPE", show_default=False, help="The event type to fire.")]
TaskAgent = Annotated[str | None, typer.Option(
    metavar="NAME", show_default=False, help="Submit a task to this agent on every tick.")]
TaskVersion = Annotated[str | None, typer.Option(
    metavar="VERSION", show_default=False,
    help="The task's published version [default: the latest].")]
TaskInput = Annotated[str | None, typer.Option(
    metavar="JSON", show_default=False, help="The task's input, a JSON object.")]
TaskPriority = Annotated[int | None, typer.Option(
    min=1, max=10, show_default=False, help="The task's priority, 10 first [default: 5].")]
MisfireOption = Annotated[Misfire | None, typer.Option(
    show_default=False,
    help="After downtime, fire one catch-up tick (once, the default) or none (skip).")]

LIST_COLUMNS = [("NAME", "name"), ("WHEN", "when"), ("EVENT", "event"), ("TASK", "task"),
                ("STATE", "state"), ("NEXT RUN", "next_run_at"), ("LAST RUN", "last_run_at"),
                ("FIRED", "fire_count")]


@app.command("list")
def list_(json: options.Json = False, url: options.Url = None) -> None:
    """List schedules and when each fires next."""
    with options.client(url) as api:
        found = list(api.iterate(api.list_schedules))
    if json:
        output.emit_json(found)
    else:
        output.table([_row(s) for s in found], LIST_COLUMNS, empty="no schedules")


@app.command()
def show(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """Show a schedule."""
    with options.client(url) as api:
        schedule = api.get_schedule(name)
    if json:
        output.emit_json(schedule)
        return
    event, task = schedule.event, schedule.task
    output.fields([
        ("name", schedule.name),
        ("when", _when(schedule)),
        ("state", "paused" if schedule.paused else "active"),
        ("next run", schedule.next_run_at),
        ("event", event and event.type),
        ("payload", events.compact(event.payload) if event else None),
        ("priority", event and event.priority),
        ("task", _task(schedule)),
        ("task input", events.compact(task.input) if task else None),
        ("task priority", task and task.priority),
        ("misfire", schedule.misfire),
        ("last run", schedule.last_run_at),
        ("last event", schedule.last_event_id),
        ("last task", schedule.last_task_id),
        ("last error", (schedule.last_error or {}).get("message")),
        ("fired", schedule.fire_count),
        ("created", schedule.created_at),
    ])


FIRE_COLUMNS = [("FIRED AT", "fired_at"), ("TICK", "scheduled_for"), ("LATE", "late"),
                ("EVENT", "event_id"), ("TASK", "task_id"), ("ERROR", "error")]


@app.command()
def fires(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=1000,
                                       help="At most N fires.")] = 50,
    before: Annotated[str | None, typer.Option(
        metavar="ID", show_default=False,
        help="The page before this one: the fire a list said more follow from.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """List the ticks a schedule fired, newest first, with the event and task each made;
    when more follow, says how to see them (on stderr)."""
    with options.client(url) as api:
        page = api.list_schedule_fires(name, before=before, limit=limit)
    if json:
        output.emit_json(page.fires)
    else:
        output.table([{**f.model_dump(), "fired_at": output.timestamp(f.fired_at),
                       "scheduled_for": output.timestamp(f.scheduled_for),
                       "late": _late(f.catch_up, f.missed),
                       "error": (f.error or {}).get("message")} for f in page.fires],
                     FIRE_COLUMNS, empty=f"schedule {name} has not fired")
    output.more_follow(ctx, "--before", page.next_before)


@app.command()
def create(
    name: Name,
    event: Event = None,
    cron: Cron = None,
    timezone: Timezone = None,
    interval_s: IntervalS = None,
    at: At = None,
    payload: events.Payload = None,
    priority: events.PriorityOption = None,
    task_agent: TaskAgent = None,
    task_version: TaskVersion = None,
    task_input: TaskInput = None,
    task_priority: TaskPriority = None,
    misfire: MisfireOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Create a schedule: exactly one of --cron, --interval-s or --at; it fires --event,
    submits a task to --task-agent, or both."""
    if sum(given is not None for given in (cron, interval_s, at)) != 1:
        raise InvalidInput("give exactly one of --cron, --interval-s or --at", code="bad_schedule")
    if event is None and task_agent is None:
        raise InvalidInput("give --event TYPE, --task-agent NAME, or both", code="bad_schedule")
    template = _event(None, event, payload, priority)
    task = _task_template(None, task_agent, task_version, task_input, task_priority)
    with options.client(url) as api:
        schedule = api.create_schedule(
            name, template["type"] if template else None,
            payload=template.get("payload") if template else None,
            priority=template.get("priority") if template else None, task=task,
            cron=cron, timezone=timezone, interval_s=interval_s, at=at,
            misfire=misfire.value if misfire else None, paused=paused)
    if json:
        output.emit_json(schedule)
    else:
        typer.echo(f"created schedule {name}: {_when(schedule)}, "
                   f"next run {_next(schedule)}")


@app.command()
def update(
    name: Name,
    cron: Cron = None,
    timezone: Timezone = None,
    interval_s: IntervalS = None,
    at: At = None,
    event: Event = None,
    payload: events.Payload = None,
    priority: events.PriorityOption = None,
    no_event: Annotated[bool, typer.Option(
        "--no-event", help="Stop firing an event (the task stays).")] = False,
    task_agent: TaskAgent = None,
    task_version: TaskVersion = None,
    task_input: TaskInput = None,
    task_priority: TaskPriority = None,
    no_task: Annotated[bool, typer.Option(
        "--no-task", help="Stop submitting a task (the event stays).")] = False,
    misfire: MisfireOption = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Change a schedule: what you give replaces what it had (a new timing starts
    from now); the event's and the task's other fields stay as they were."""
    if sum(given is not None for given in (cron, interval_s, at)) > 1:
        raise InvalidInput("give at most one of --cron, --interval-s or --at", code="bad_schedule")
    changes: dict[str, Any] = {k: v for k, v in {
        "cron": cron, "timezone": timezone, "interval_s": interval_s, "at": at,
        "misfire": misfire.value if misfire else None}.items() if v is not None}
    event_given = (event, payload, priority) != (None, None, None)
    task_given = (task_agent, task_version, task_input, task_priority) != (None,) * 4
    for flag, given, what in (("--no-event", no_event and event_given, "event"),
                              ("--no-task", no_task and task_given, "task")):
        if given:
            raise InvalidInput(f"{flag} cannot go with options that change the {what}",
                               code="bad_schedule")
    with options.client(url) as api:
        current = api.get_schedule(name) if event_given or task_given else None
        if no_event or event_given:
            changes["event"] = None if no_event else _event(
                _dump(current and current.event), event, payload, priority)
        if no_task or task_given:
            changes["task"] = None if no_task else _task_template(
                _dump(current and current.task), task_agent, task_version, task_input,
                task_priority)
        if not changes:
            raise InvalidInput("nothing to change: give an option (see --help)",
                               code="bad_schedule")
        schedule = api.patch_schedule(name, **changes)
    if json:
        output.emit_json(schedule)
    else:
        typer.echo(f"updated schedule {name}: {_when(schedule)}, next run {_next(schedule)}")


def _event(current: dict[str, Any] | None, type_: str | None, payload: str | None,
           priority: events.Priority | None) -> dict[str, Any] | None:
    """The event template: ``current`` with the options given laid over it."""
    if type_ is None and current is None:
        if payload is not None or priority is not None:
            raise InvalidInput("--payload and --priority need --event TYPE",
                               code="bad_schedule")
        return None
    changed = {"type": type_, "payload": events.parse_payload(payload),
               "priority": priority.value if priority else None}
    return {**(current or {}), **{k: v for k, v in changed.items() if v is not None}}


def _task_template(current: dict[str, Any] | None, agent: str | None, version: str | None,
                   input_: str | None, priority: int | None) -> dict[str, Any] | None:
    """The task template: ``current`` with the options given laid over it."""
    if agent is None and current is None:
        if (version, input_, priority) != (None, None, None):
            raise InvalidInput("--task-version, --task-input and --task-priority need "
                               "--task-agent NAME", code="bad_schedule")
        return None
    changed = {"agent": agent, "version": version,
               "input": events.parse_payload(input_, "--task-input"), "priority": priority}
    return {**(current or {}), **{k: v for k, v in changed.items() if v is not None}}


@app.command()
def pause(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """Stop firing until resumed."""
    with options.client(url) as api:
        schedule = api.pause_schedule(name)
    if json:
        output.emit_json(schedule)
        return
    typer.echo(f"paused schedule {name}")


@app.command()
def resume(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """Fire again from now on (ticks missed while paused are not fired)."""
    with options.client(url) as api:
        schedule = api.resume_schedule(name)
    if json:
        output.emit_json(schedule)
        return
    typer.echo(f"resumed schedule {name}, next run {_next(schedule)}")


@app.command()
def delete(name: Name, json: options.Json = False, url: options.Url = None) -> None:
    """Delete a schedule (the events it fired stay in the log)."""
    with options.client(url) as api:
        api.delete_schedule(name)
    if json:
        output.emit_json({"deleted": name})
        return
    typer.echo(f"deleted schedule {name}")


def _late(catch_up: bool, missed: int) -> str:
    """A fire's lateness: a catch-up for a missed tick, and the ticks it passed over."""
    said = ["catch-up"] if catch_up else []
    return ", ".join([*said, f"{missed} missed"] if missed else said)


def _dump(template: BaseModel | None) -> dict[str, Any] | None:
    """A schedule's event or task template as the API takes it back."""
    return template.model_dump(exclude_none=True) if template is not None else None


def _when(schedule: Schedule) -> str:
    if schedule.kind == "cron":
        return f"cron {schedule.cron} ({schedule.timezone or 'UTC'})"
    if schedule.kind == "interval":
        return f"every {schedule.interval_s:g}s"
    return f"once at {output.timestamp(schedule.at)}"


def _next(schedule: Schedule) -> str:
    return output.timestamp(schedule.next_run_at) or "none"


def _task(schedule: Schedule) -> str | None:
    task = schedule.task
    if task is None:
        return None
    return task.agent + (f" {task.version}" if task.version else "")


def _row(schedule: Schedule) -> dict[str, Any]:
    return {**schedule.model_dump(), "when": _when(schedule),
            "event": schedule.event and schedule.event.type, "task": _task(schedule),
            "state": "paused" if schedule.paused else "active"}
