"""``agentos tasks``: submit, list, show, cancel and retry tasks; ``agentos workers``."""

from __future__ import annotations

import contextlib
import json as json_
import sys
import textwrap
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from agentos.api.schemas.tasks import Task, TaskDetail
from agentos.cli import events, options, output

app = typer.Typer(help="Submit, list, inspect, cancel and retry tasks.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

WATCH_POLL = 1.0  # seconds between looks of tasks list --watch
TaskId = Annotated[str, typer.Argument(metavar="ID", help="The task's id.", show_default=False)]


class State(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


Wait = Annotated[bool, typer.Option(
    "--wait", help="Wait until it has ended, then print its output (exit 2 if it fails).")]
Timeout = Annotated[float | None, typer.Option(
    "--timeout", min=0, metavar="S", show_default=False,
    help="Give up waiting after S seconds (exit 2) [default: no limit].")]

COLUMNS = [("ID", "id"), ("AGENT", "agent"), ("STATUS", "status"), ("PRI", "priority"),
           ("ATTEMPT", "attempt"), ("CREATED", "created"), ("ERROR", "error")]


@app.command()
def submit(
    agent: Annotated[str, typer.Argument(help="The agent to run.", show_default=False)],
    input: Annotated[str | None, typer.Option("--input", help="JSON object.")] = None,
    priority: Annotated[int, typer.Option(min=1, max=10, help="10 runs first.")] = 5,
    version: Annotated[str | None, typer.Option(help="A published version.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Submit once per key.")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="Join a correlation.")] = None,
    type: Annotated[str | None, typer.Option(
        "--type", help="What kind of work it is (execute, train, analyze, ...).")] = None,
    metadata: Annotated[str | None, typer.Option(
        help="JSON object of your own labels (who asked, for which customer).")] = None,
    wait: Wait = False, timeout: Timeout = None,
    json: options.Json = False, url: options.Url = None,
) -> None:
    """Submit a task to an agent's latest published version; with --wait, wait until it
    has ended and print its output (exit 2 when it fails)."""
    data = _object(input)
    labels = _object(metadata, "--metadata") if metadata is not None else None
    with options.client(url) as api:
        task = api.submit(agent, data, priority=priority, version=version,
                          idempotency_key=idempotency_key, correlation_id=correlation_id,
                          type=type, metadata=labels)
        if wait:
            if not json:
                typer.echo(f"submitted {task.id} to {task.agent} {task.version}; waiting",
                           err=True)
            _ended(api.wait(task.id, timeout), json)
            return
    if json:
        output.emit_json(task)
    else:
        typer.echo(f"submitted {task.id} to {task.agent} {task.version} ({task.status})")


@app.command("wait")
def wait_(task_id: TaskId, timeout: Timeout = None, json: options.Json = False,
          url: options.Url = None) -> None:
    """Wait until a task has ended and print its output (exit 2 when it failed or was
    cancelled, or when --timeout passes first)."""
    with options.client(url) as api:
        _ended(api.wait(task_id, timeout), json)


def _ended(task: TaskDetail, json: bool) -> None:
    """Print an ended task's output (its whole record with --json); exit 2 unless it
    succeeded, saying why on stderr."""
    if json:
        output.emit_json(task)
    elif task.status == "succeeded":
        output.emit_json(task.output)
    if task.status != "succeeded":
        why = (task.error or {}).get("message") or task.status
        typer.echo(f"error: task {task.id} {task.status}: {why} (agentos tasks show "
                   f"{task.id})", err=True)
        raise typer.Exit(2)


@app.command("list")
def list_(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option(help="Only this agent's tasks.")] = None,
    status: Annotated[State | None, typer.Option(help="failed lists dead letters.")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="One correlation.")] = None,
    type: Annotated[str | None, typer.Option("--type", help="Only tasks of this type.")
                    ] = None,
    since: Annotated[str | None, typer.Option(
        metavar="TIME", show_default=False,
        help="Only tasks submitted at or after this ISO time, e.g. 2026-01-31T12:00:00Z.")
                     ] = None,
    until: Annotated[str | None, typer.Option(
        metavar="TIME", show_default=False, help="Only tasks submitted before this ISO time.")
                     ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    before_seq: Annotated[int | None, typer.Option(
        min=1, help="The page before this one: the number a list said more follow from.")
                          ] = None,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Print the list again whenever it changes, until Ctrl+C.")] = False,
    json: options.Json = False, url: options.Url = None,
) -> None:
    """List tasks, newest first; when more follow, says how to see them (on stderr)."""
    with options.client(url) as api:
        def page() -> Any:
            return api.list_tasks(agent, status.value if status else None, correlation_id,
                                  newest_first=True, before_seq=before_seq, limit=limit,
                                  type=type, since=since, until=until)
        if watch:
            _watch(ctx, page, json)
            return
        _show_page(ctx, page(), json)


def _show_page(ctx: typer.Context, page: Any, json: bool) -> None:
    if json:
        output.emit_json(page.tasks)
    else:
        output.table([_row(t) for t in page.tasks], COLUMNS, empty="no tasks")
    output.more_follow(ctx, "--before-seq", page.next_before_seq)


def _watch(ctx: typer.Context, page: Any, json: bool) -> None:
    """Print the list whenever it changed (a blank line between), until Ctrl+C."""
    shown = None
    output.end_on_ctrl_c()
    while True:
        current = page()
        view = [(t.id, t.status, t.attempt) for t in current.tasks]
        if view != shown:
            if shown is not None:
                typer.echo("")
            _show_page(ctx, current, json)
            sys.stdout.flush()
            shown = view
        time.sleep(WATCH_POLL)


@app.command()
def show(task_id: TaskId, json: options.Json = False, url: options.Url = None) -> None:
    """Show a task and every attempt."""
    with options.client(url) as api:
        task = api.get_task(task_id)
    if json:
        output.emit_json(task)
        return
    output.fields([
        ("id", task.id), ("agent", f"{task.agent} {task.version}"),
        ("status", task.status), ("priority", task.priority),
        ("type", task.type),
        ("metadata", events.compact(task.metadata) if task.metadata else "-"),
        ("attempt", f"{task.attempt} (max retries {task.max_retries})"),
        ("input", events.compact(task.input)),
        ("output", events.compact(task.output) if task.output is not None else "-"),
        ("error", (task.error or {}).get("message", "-")),
        ("correlation", task.correlation_id),
        ("created", task.created_at),
    ])
    attempts = [{"n": a.number, "worker": a.worker_id, "outcome": a.outcome,
                 "ms": f"{a.duration_ms:.1f}" if a.duration_ms is not None else "-",
                 "tokens": (a.tokens or {}).get("total"),
                 "error": (a.error or {}).get("message", "")}
                for a in task.attempts]
    if attempts:
        typer.echo("")
        output.table(attempts, [("ATTEMPT", "n"), ("WORKER", "worker"),
                                ("OUTCOME", "outcome"), ("MS", "ms"), ("TOKENS", "tokens"),
                                ("ERROR", "error")])
    for a in task.attempts:  # what each failed attempt left: its traceback, its stderr
        error = a.error or {}
        for label in ("traceback", "stderr"):
            if error.get(label):
                typer.echo(f"\nattempt {a.number} {label}:")
                typer.echo(textwrap.indent(str(error[label]).rstrip("\n"), "  "))


@app.command()
def cancel(task_id: TaskId, json: options.Json = False, url: options.Url = None) -> None:
    """Cancel a task: at once if waiting, cooperatively if running."""
    with options.client(url) as api:
        task = api.cancel_task(task_id)
    if json:
        output.emit_json(task)
        return
    state = "cancellation requested" if task.status == "running" else task.status
    typer.echo(f"{task_id}: {state}")


@app.command()
def retry(task_id: TaskId, json: options.Json = False, url: options.Url = None) -> None:
    """Run a failed or cancelled task again."""
    with options.client(url) as api:
        task = api.retry_task(task_id)
    if json:
        output.emit_json(task)
        return
    typer.echo(f"{task_id}: {task.status}")


@app.command()
def explain(task_id: TaskId, json: options.Json = False, url: options.Url = None) -> None:
    """Say why a task is not running (the gate that holds it), or why it ended."""
    with options.client(url) as api:
        found = api.explain_task(task_id)
    if json:
        output.emit_json(found)
        return
    typer.echo(f"{found['task_id']} ({found['agent']} {found['version']}) is "
               f"{found['status']}: {found['summary']}")
    rows = [(f["gate"], "yes" if f["blocking"] else "no",
             output.timestamp(f["until"]) or "-", f["summary"]) for f in found["findings"]]
    typer.echo("")
    output.wide(("GATE", "HOLDS", "UNTIL", "WHY"), rows)
    if found.get("workflow"):
        step = found["workflow"]
        typer.echo(f"\nstep {step['step']} of workflow run {step['run_id']} ({step['workflow']}, "
                   f"{step['run_status']})")


@app.command()
def logs(
    task_id: TaskId,
    attempt: Annotated[int | None, typer.Option(min=1, help="Only this attempt's lines.")
                       ] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new lines until the task ends.")] = False,
    json: Annotated[bool, typer.Option(
        "--json", help="One JSON object a line, for scripts.")] = False,
    url: options.Url = None,
) -> None:
    """Print the lines the task's handler wrote (ctx.log), attempt by attempt."""
    if follow:
        output.end_on_ctrl_c()
    with options.client(url) as api:
        shown = 0
        with contextlib.suppress(KeyboardInterrupt):
            for line in api.log_lines(task_id, attempt, follow=follow):
                typer.echo(json_.dumps(line) if json else _log_line(line))
                shown += 1
    if not shown and not json:
        typer.echo("no log lines", err=True)


def _log_line(line: dict[str, Any]) -> str:
    """``AT  #ATTEMPT  LEVEL  MESSAGE``, a message's further lines indented under it."""
    head = f"{output.timestamp(line['at'])}  #{line['attempt']}  {line['level']:<8} "
    first, *rest = line["message"].split("\n") or [""]
    return "\n".join([head + first, *(" " * len(head) + more for more in rest)])


def workers(json: options.Json = False, url: options.Url = None) -> None:
    """List the worker instances and whether each is alive."""
    with options.client(url) as api:
        found = list(api.iterate(api.list_workers))
    if json:
        output.emit_json(found)
        return
    output.table([{**w.model_dump(), "agents": ",".join(w.agents or ["*"]),
                   "heartbeat": w.last_heartbeat_at} for w in found],
                 [("ID", "id"), ("HOST", "host"), ("PID", "pid"), ("AGENTS", "agents"),
                  ("STATUS", "status"), ("RUNNING", "running"), ("HEARTBEAT", "heartbeat")],
                 empty="no workers")


def _object(text: str | None, option: str = "--input") -> dict[str, Any]:
    parsed = events.parse_payload(text, option)  # the same JSON-object rules as --payload
    return parsed or {}


def _row(task: Task) -> dict[str, Any]:
    return {**task.model_dump(), "created": task.created_at,
            "error": (task.error or {}).get("message", "")[:60]}
