"""``agentos runs``: workflow runs, through the server at AGENTOS_URL."""

from __future__ import annotations

import json as json_
import time
from typing import Annotated, Any

import typer

from agentos.cli import options, output
from agentos.errors import InvalidInput

app = typer.Typer(help="Start, list, show, watch, cancel, rerun and explain workflow runs.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

RunId = Annotated[str, typer.Argument(metavar="RUN", show_default=False,
                                      help="The run's id.")]
COLUMNS = [("ID", "id"), ("WORKFLOW", "workflow"), ("VERSION", "version"),
           ("STATUS", "status"), ("STARTED", "created_at"), ("ENDED", "finished_at"),
           ("ERROR", "error")]
STEP_COLUMNS = [("STEP", "id"), ("TYPE", "type"), ("STATUS", "status"), ("ROUND", "round"),
                ("ITEMS", "items"), ("TASKS", "tasks"), ("STARTED", "started_at"),
                ("ENDED", "finished_at"), ("ERROR", "error")]
WATCH_POLL = 1.0  # seconds between redraws of --watch and looks of --wait


@app.command()
def start(
    workflow: Annotated[str, typer.Argument(metavar="WORKFLOW", show_default=False,
                                            help="The workflow's name.")],
    input: Annotated[str, typer.Option(
        "--input", metavar="JSON", help="The run's input, as JSON.")] = "{}",
    version: Annotated[str | None, typer.Option(
        "--version", metavar="VERSION", show_default=False,
        help="This version instead of the latest published one.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(
        metavar="KEY", show_default=False, help="Start it once, however often asked.")] = None,
    priority: Annotated[int | None, typer.Option(
        metavar="N", show_default=False, help="1-10, the priority of its tasks.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the run has ended, "
                                       "showing its steps as they move.")] = False,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Start a run of WORKFLOW."""
    try:
        data = json_.loads(input)
    except ValueError as exc:
        raise InvalidInput(f"--input is not JSON: {exc}", code="bad_input") from None
    with options.client(url) as api:
        run = api.start_run(workflow, data, version=version, idempotency_key=idempotency_key,
                            priority=priority)
        if not json:
            typer.echo(f"started {run['workflow']} {run['version']}: run {run['id']}")
        if wait:
            run = _follow(api, run["id"], quiet=json)
    if json:
        output.emit_json(run)
    elif wait:
        _summary(run)
    if wait and run["status"] != "succeeded":
        raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option(metavar="NAME", show_default=False,
                                                 help="Only this workflow's runs.")] = None,
    status: Annotated[str | None, typer.Option(
        metavar="STATUS", show_default=False,
        help="running, succeeded, failed or cancelled.")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=500, help="At most N runs.")
                     ] = 50,
    before: Annotated[str | None, typer.Option(
        metavar="RUN", show_default=False,
        help="The page before this one: the run a list said more follow from.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """List runs, newest first; when more follow, says how to see them (on stderr)."""
    with options.client(url) as api:
        page = api.list_runs(workflow=workflow, status=status, before=before, limit=limit)
    if json:
        output.emit_json(page["runs"])
    else:
        output.table([_run_row(r) for r in page["runs"]], COLUMNS, empty="no runs")
    output.more_follow(ctx, "--before", page["next_before"])


@app.command()
def show(run_id: RunId, watch: Annotated[bool, typer.Option(
        "--watch", help="Redraw the step table as the run moves, until it ends.")] = False,
         json: options.Json = False, url: options.Url = None) -> None:
    """Show a run: its steps and their tasks (--json: everything, transitions too)."""
    with options.client(url) as api:
        run = _follow(api, run_id, quiet=False) if watch else api.get_run(run_id)
    if json:
        output.emit_json(run)
        return
    if not watch:
        _steps(run)
    _summary(run)


@app.command()
def cancel(run_id: RunId, json: options.Json = False, url: options.Url = None) -> None:
    """Cancel a running run (its running tasks too)."""
    with options.client(url) as api:
        run = api.cancel_run(run_id)
    output.answer(run, json, f"run {run['id']} is {run['status']}")


@app.command()
def rerun(run_id: RunId, step: Annotated[str, typer.Option(
        "--from", metavar="STEP", show_default=False,
        help="The failed step to start again from.")], json: options.Json = False,
          url: options.Url = None) -> None:
    """Run a failed run again from a failed step, keeping earlier outputs."""
    with options.client(url) as api:
        run = api.rerun(run_id, step)
    output.answer(run, json, f"run {run['id']} is {run['status']} again from {step}")


@app.command()
def explain(run_id: RunId, json: options.Json = False, url: options.Url = None) -> None:
    """Say what a run waits for now."""
    with options.client(url) as api:
        found = api.explain_run(run_id)
    if json:
        output.emit_json(found)
        return
    typer.echo(f"run {run_id} is {found['status']}: {found['summary']}")
    for entry in found["waiting"]:
        for task in entry.get("tasks", []):
            typer.echo(f"  {entry['step']} task {task['task_id']}: {task['explain']['why']}")


def _follow(api: Any, run_id: str, quiet: bool) -> dict[str, Any]:
    """Poll the run until it ends, printing its step table whenever it changed."""
    shown = None
    while True:
        run: dict[str, Any] = api.get_run(run_id)
        view = [(s["id"], s["status"], s["round"], json_.dumps(s["items"])) for s in run["steps"]]
        if not quiet and view != shown:
            if shown is not None:
                typer.echo("")
            _steps(run)
            shown = view
        if run["status"] != "running":
            return run
        time.sleep(WATCH_POLL)


def _steps(run: dict[str, Any]) -> None:
    output.table([{
        "id": s["id"], "type": s["type"], "status": s["status"], "round": s["round"],
        "items": f"{s['items']['ended']}/{s['items']['total']}" if s["items"] else None,
        "tasks": s["tasks_total"] or None, "started_at": output.timestamp(s["started_at"]),
        "finished_at": output.timestamp(s["finished_at"]),
        "error": (s["error"] or {}).get("message")} for s in run["steps"]], STEP_COLUMNS)


def _summary(run: dict[str, Any]) -> None:
    tail = f": {run['error']['message']}" if run.get("error") else ""
    typer.echo(f"run {run['id']} {run['status']}{tail}")


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    return {**run, "created_at": output.timestamp(run["created_at"]),
            "finished_at": output.timestamp(run["finished_at"]),
            "error": (run["error"] or {}).get("message")}
