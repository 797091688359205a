"""``agentos events``: emit, query, follow and prune the event log."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentos.cli import options, output
from agentos.errors import InvalidInput, NotFound, Unavailable

if TYPE_CHECKING:
    from agentos.api.schemas.events import Event
    from agentos.sdk import Client
    from agentos.sdk.client import EventStream

app = typer.Typer(help="Emit, list, follow and prune events.", invoke_without_command=True)
app.callback()(options.help_if_bare)

RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0)  # seconds between attempts; the last repeats


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


EventId = Annotated[str, typer.Argument(metavar="ID", help="The event's id.",
                                        show_default=False)]
TypeGlob = Annotated[str | None, typer.Option(
    "--type", metavar="GLOB", show_default=False,
    help="Only events whose type matches, e.g. 'alert.*'.")]
Payload = Annotated[str | None, typer.Option(
    "--payload", metavar="JSON", show_default=False, help="A JSON object.")]
PriorityOption = Annotated[Priority | None, typer.Option(
    "--priority", show_default=False, help="How urgent it is [default: normal].")]

EVENT_COLUMNS = [("SEQ", "seq"), ("TIME", "created_at"), ("TYPE", "type"),
                 ("SOURCE", "source"), ("PRIORITY", "priority"), ("ID", "id"),
                 ("PAYLOAD", "payload")]
ROUTE_COLUMNS = [("AGENT", "agent"), ("VERSION", "agent_version"),
                 ("TRIGGER", "trigger_index"), ("PRIORITY", "priority"), ("TASK", "task_id"),
                 ("ROUTED", "created_at")]


@app.command()
def emit(
    type_: Annotated[str, typer.Argument(metavar="TYPE", show_default=False,
                                         help="The event type, e.g. alert.cpu.")],
    payload: Payload = None,
    source: Annotated[str | None, typer.Option(
        metavar="NAME", show_default=False, help="Who emits it [default: api].")] = None,
    correlation_id: Annotated[str | None, typer.Option(
        metavar="ID", show_default=False,
        help="The chain it belongs to [default: its own id].")] = None,
    causation_id: Annotated[str | None, typer.Option(
        metavar="ID", show_default=False, help="The event that caused it.")] = None,
    priority: PriorityOption = None,
    dedup_key: Annotated[str | None, typer.Option(
        metavar="KEY", show_default=False,
        help="Emit at most once per key: a repeat returns the first event.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Append one event to the log."""
    with options.client(url) as api:
        event = api.emit(type_, parse_payload(payload), source=source,
                         correlation_id=correlation_id, causation_id=causation_id,
                         priority=priority.value if priority else None, dedup_key=dedup_key)
    if json:
        output.emit_json(event)
    elif event.duplicate:
        typer.echo(f"duplicate: dedup key {dedup_key} was emitted as {event.type} "
                   f"seq={event.seq} id={event.id}")
    else:
        typer.echo(f"emitted {event.type} seq={event.seq} id={event.id}")


@app.command("list")
def list_(
    ctx: typer.Context,
    type_: TypeGlob = None,
    source: Annotated[str | None, typer.Option(
        metavar="NAME", show_default=False, help="Only events from this source.")] = None,
    correlation_id: Annotated[str | None, typer.Option(
        metavar="ID", show_default=False, help="Only events of this chain.")] = None,
    run_id: Annotated[str | None, typer.Option(
        metavar="ID", show_default=False, help="Only events of this run.")] = None,
    priority: Annotated[Priority | None, typer.Option(
        show_default=False, help="Only events of this priority.")] = None,
    since: Annotated[str | None, typer.Option(
        metavar="TIME", show_default=False,
        help="Only events at or after this ISO time, e.g. 2026-01-31T12:00:00Z.")] = None,
    until: Annotated[str | None, typer.Option(
        metavar="TIME", show_default=False, help="Only events before this ISO time.")] = None,
    after_seq: Annotated[int, typer.Option(
        metavar="SEQ", min=0, help="Start after this sequence number.")] = 0,
    limit: Annotated[int, typer.Option(metavar="N", min=1, help="At most N events.")] = 100,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """List events in sequence order, oldest first."""
    with options.client(url) as api:
        found = list(itertools.islice(api.iterate(
            api.list_events, type=type_, source=source, correlation_id=correlation_id,
            run_id=run_id, priority=priority.value if priority else None, since=since,
            until=until, after_seq=after_seq, limit=min(limit + 1, 1000)), limit + 1))
    more = len(found) > limit
    found = found[:limit]
    if json:
        output.emit_json(found)
    else:
        output.table(found, EVENT_COLUMNS, empty="no events found")
    output.more_follow(ctx, "--after-seq", found[-1].seq if more else None)


@app.command()
def show(event_id: EventId, json: options.Json = False, url: options.Url = None) -> None:
    """Show one event."""
    with options.client(url) as api:
        event = api.get_event(event_id)
    if json:
        output.emit_json(event)
        return
    output.fields([
        ("seq", event.seq),
        ("id", event.id),
        ("type", event.type),
        ("source", event.source),
        ("priority", event.priority),
        ("created", output.timestamp(event.created_at)),
        ("correlation id", event.correlation_id),
        ("causation id", event.causation_id),
        ("run id", event.run_id),
        ("subject", event.subject),
        ("dedup key", event.dedup_key),
        ("payload", compact(event.payload)),
    ])


@app.command()
def routes(event_id: EventId, json: options.Json = False, url: options.Url = None) -> None:
    """The agents an event was routed to: one route per matching trigger."""
    with options.client(url) as api:
        found = api.event_routes(event_id)
    if json:
        output.emit_json(found)
        return
    if not found.routed:
        typer.echo("not routed yet: the router has not reached this event", err=True)
        return
    output.table(found.routes, ROUTE_COLUMNS,
                 empty="routed to no agent: no published trigger matched")


@app.command()
def explain(
    type_: Annotated[str, typer.Argument(metavar="TYPE", show_default=False,
                                         help="The event type, e.g. alert.cpu.")],
    payload: Payload = None,
    source: Annotated[str | None, typer.Option(
        metavar="NAME", show_default=False, help="Who would emit it [default: api].")] = None,
    priority: PriorityOption = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Say which agents an event would reach, and for the others why not (nothing is
    emitted)."""
    with options.client(url) as api:
        found = api.explain_event(type_, parse_payload(payload), source=source,
                                  priority=priority.value if priority else None)
    if json:
        output.emit_json(found)
        return
    typer.echo(found["summary"])
    rows = []
    for agent in found["agents"]:
        for t in agent["triggers"] or [None]:
            if t is None:
                result = "no triggers"
            elif t["matches"]:
                task = t["task"]
                result = (f"matches: task priority {task['priority']}, "
                          f"input {compact(task['input'])}")
            else:
                result = t["failed"]
            rows.append((agent["agent"], agent["version"], "-" if t is None else str(t["index"]),
                         "-" if t is None else t["event"], result))
    if not rows:
        typer.echo("no published agents", err=True)
        return
    typer.echo("")
    output.wide(("AGENT", "VERSION", "TRIGGER", "EVENT", "RESULT"), rows)


@app.command()
def tail(
    type_: Annotated[str, typer.Option(
        "--type", metavar="GLOB", help="Only events whose type matches.")] = "*",
    after_seq: Annotated[int | None, typer.Option(
        metavar="SEQ", min=0, show_default=False,
        help="Start after this sequence number instead of now.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Follow the log live, one line per event, until Ctrl+C.

    If the connection drops, it reconnects and resumes after the last event
    shown (or --after-seq), so nothing is repeated or skipped.
    """
    output.end_on_ctrl_c()  # Ctrl+C is how a tail ends: exit 0, not "aborted"
    with options.client(url) as api:
        _follow(api, type_, after_seq, json)


@app.command()
def chain(
    chain_id: Annotated[str, typer.Argument(
        metavar="ID", show_default=False,
        help="A correlation id, or an event id (its correlation is shown).")],
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Show a correlation's events as a causation tree: each under the one that caused it."""
    with options.client(url) as api:
        correlation_id = chain_id
        try:
            tree = api.correlation(chain_id)
        except NotFound:
            try:
                correlation_id = api.get_event(chain_id).correlation_id
            except NotFound:
                raise NotFound(f"no events with correlation id or event id {chain_id}",
                               code="chain_not_found") from None
            tree = api.correlation(correlation_id)
    if json:
        output.emit_json({"correlation_id": correlation_id, "tree": tree})
        return
    typer.echo(f"correlation {correlation_id}")
    for root in tree:
        _print_tree(root, "", "")


@app.command()
def prune(
    older_than: Annotated[str, typer.Option(
        metavar="AGE", show_default=False,
        help="Delete events older than this: 30d, 12h, 90m, 45s or 2w.")],
    type_: TypeGlob = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only count what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: options.Json = False, url: options.Url = None,
) -> None:
    """Delete old events (retention)."""
    what = f"older than {older_than}" + (f" of type {type_}" if type_ else "")
    with options.client(url) as api:
        count, kept = api.prune(older_than, type_, dry_run=True)
        if dry_run or count == 0:
            if json:
                output.emit_json({"would_delete": count, "kept": kept} if dry_run
                                 else {"deleted": 0, "kept": kept})
            elif dry_run:
                typer.echo(f"would delete {_events(count)} {what}{_kept(kept)}")
            else:
                typer.echo(f"no events {what} to delete{_kept(kept)}")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInput(f"refusing to delete {_events(count)} {what} without "
                                   "confirmation: pass --yes", code="confirmation_needed")
            typer.confirm(f"delete {_events(count)} {what}?", abort=True)
        count, kept = api.prune(older_than, type_)
    if json:
        output.emit_json({"deleted": count, "kept": kept})
        return
    typer.echo(f"deleted {_events(count)} {what}{_kept(kept)}")


def _kept(count: int) -> str:
    return f" (kept {_events(count)} that open tasks or the router still need)" if count else ""


def parse_payload(text: str | None, option: str = "--payload") -> dict[str, Any] | None:
    """A JSON-object option (``--payload`` by default), or a one-line error."""
    if text is None:
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{option} is not valid JSON: {exc}", code="bad_payload") from None
    if not isinstance(payload, dict):
        raise InvalidInput(f"{option} must be a JSON object, like '{{\"severity\": \"high\"}}'",
                           code="bad_payload")
    return payload


def _follow(api: Client, type_glob: str, after_seq: int | None, as_json: bool) -> None:
    # the first connection must work; later ones are retried until they do
    stream = api.stream(type_glob, after_seq=after_seq)
    typer.echo(f"following {type_glob} events (Ctrl+C to stop)", err=True)
    resume = None if after_seq is None else str(after_seq)
    while True:
        with stream, contextlib.suppress(Unavailable):
            for event in stream:
                typer.echo(compact(event.model_dump(mode="json")) if as_json
                           else _line(event))
        resume = stream.last_event_id or resume
        typer.echo("connection lost; reconnecting", err=True)
        stream = _reconnect(api, type_glob, resume)
        typer.echo("reconnected", err=True)


def _reconnect(api: Client, type_glob: str, last_event_id: str | None) -> EventStream:
    for attempt in itertools.count():
        try:
            return api.stream(type_glob, last_event_id=last_event_id)
        except Unavailable:
            time.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
    raise AssertionError("unreachable")


def _line(event: Event) -> str:
    return (f"{event.seq:>6}  {output.timestamp(event.created_at)}  "
            f"{event.type:<20}  {event.source:<10}  {event.priority:<8}  "
            f"{compact(event.payload)}")


def _events(count: int) -> str:
    return f"{count} event" + ("" if count == 1 else "s")


def compact(value: Any) -> str:
    """JSON on one line."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _print_tree(node: dict[str, Any], prefix: str, branch: str) -> None:
    """``node`` after ``prefix + branch`` (``├─ `` or ``└─ ``), then its children."""
    typer.echo(f"{prefix}{branch}{_label(node)}")
    below = prefix + {"": "", "├─ ": "│  ", "└─ ": "   "}[branch]
    children = node.get("children", [])
    for n, child in enumerate(children):
        _print_tree(child, below, "└─ " if n == len(children) - 1 else "├─ ")


def _label(node: dict[str, Any]) -> str:
    if node.get("kind") == "task":
        return (f"task {node['agent']} {node['version']}  {node['status']}  "
                f"attempt={node['attempt']}  {output.timestamp(node['created_at'])}  "
                f"{node['id']}")
    if node.get("kind", "event") != "event":  # workflow runs, once they exist
        return f"{node['kind']} {node['id']} {node.get('status', '')}".rstrip()
    return (f"{node['type']}  seq={node['seq']}  {node['source']}  {node['priority']}  "
            f"{output.timestamp(node['created_at'])}  {node['id']}")
