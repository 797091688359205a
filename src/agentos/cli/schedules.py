"""``agentos schedules``: cron, interval and one-shot schedules that fire events."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from agentos.cli import events, options, output
from agentos.errors import InvalidInput

app = typer.Typer(help="Create, list, pause and delete schedules that fire events.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.",
                                     show_default=False)]


class Misfire(StrEnum):
    ONCE = "once"
    SKIP = "skip"


LIST_COLUMNS = [("NAME", "name"), ("WHEN", "when"), ("EVENT", "event"),
                ("STATE", "state"), ("NEXT RUN", "next_run_at"), ("LAST RUN", "last_run_at"),
                ("FIRED", "fire_count")]


@app.command("list")
def list_(json: options.Json = False, url: options.Url = None) -> None:
    """List schedules and when each fires next."""
    with options.client(url) as api:
        found = api.list_schedules()
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
    event = schedule["event"]
    output.fields([
        ("name", schedule["name"]),
        ("when", _when(schedule)),
        ("state", "paused" if schedule["paused"] else "active"),
        ("next run", output.timestamp(schedule["next_run_at"])),
        ("event", event["type"]),
        ("payload", events.compact(event["payload"])),
        ("priority", event["priority"]),
        ("misfire", schedule["misfire"]),
        ("last run", output.timestamp(schedule["last_run_at"])),
        ("last event", schedule["last_event_id"]),
        ("fired", schedule["fire_count"]),
        ("created", output.timestamp(schedule["created_at"])),
    ])


@app.command()
def create(
    name: Name,
    event: Annotated[str, typer.Option(
        "--event", metavar="TYPE", show_default=False, help="The event type to fire.")],
    cron: Annotated[str | None, typer.Option(
        metavar="EXPR", show_default=False, help="A cron expression, e.g. '*/5 * * * *'.")
    ] = None,
    timezone: Annotated[str | None, typer.Option(
        metavar="TZ", show_default=False,
        help="The cron's time zone, e.g. Europe/Paris [default: UTC].")] = None,
    every: Annotated[float | None, typer.Option(
        metavar="SECONDS", show_default=False, help="Fire every SECONDS.")] = None,
    at: Annotated[str | None, typer.Option(
        metavar="TIME", show_default=False,
        help="Fire once at this ISO time, e.g. 2026-12-01T10:00:00Z.")] = None,
    payload: events.Payload = None,
    priority: events.PriorityOption = None,
    misfire: Annotated[Misfire | None, typer.Option(
        show_default=False,
        help="After downtime, fire one catch-up event (once, the default) or none (skip).")
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Create a schedule: exactly one of --cron, --every or --at."""
    if sum(given is not None for given in (cron, every, at)) != 1:
        raise InvalidInput("give exactly one of --cron, --every or --at", code="bad_schedule")
    with options.client(url) as api:
        schedule = api.create_schedule(
            name, event, payload=events.parse_payload(payload),
            priority=priority.value if priority else None, cron=cron, timezone=timezone,
            interval_s=every, at=at, misfire=misfire.value if misfire else None,
            paused=paused)
    if json:
        output.emit_json(schedule)
    else:
        typer.echo(f"created schedule {name}: {_when(schedule)}, "
                   f"next run {_next(schedule)}")


@app.command()
def pause(name: Name, url: options.Url = None) -> None:
    """Stop firing until resumed."""
    with options.client(url) as api:
        api.pause_schedule(name)
    typer.echo(f"paused schedule {name}")


@app.command()
def resume(name: Name, url: options.Url = None) -> None:
    """Fire again from now on (ticks missed while paused are not fired)."""
    with options.client(url) as api:
        schedule = api.resume_schedule(name)
    typer.echo(f"resumed schedule {name}, next run {_next(schedule)}")


@app.command()
def delete(name: Name, url: options.Url = None) -> None:
    """Delete a schedule (the events it fired stay in the log)."""
    with options.client(url) as api:
        api.delete_schedule(name)
    typer.echo(f"deleted schedule {name}")


def _when(schedule: dict[str, Any]) -> str:
    if schedule["kind"] == "cron":
        return f"cron {schedule['cron']} ({schedule['timezone'] or 'UTC'})"
    if schedule["kind"] == "interval":
        return f"every {schedule['interval_s']:g}s"
    return f"once at {output.timestamp(schedule['at'])}"


def _next(schedule: dict[str, Any]) -> str:
    return output.timestamp(schedule["next_run_at"]) or "none"


def _row(schedule: dict[str, Any]) -> dict[str, Any]:
    return {**schedule, "when": _when(schedule), "event": schedule["event"]["type"],
            "state": "paused" if schedule["paused"] else "active",
            "next_run_at": output.timestamp(schedule["next_run_at"]),
            "last_run_at": output.timestamp(schedule["last_run_at"])}
