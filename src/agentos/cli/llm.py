"""``agentos llm``: LLM call records and their summaries, through the server."""

from __future__ import annotations

from typing import Annotated

import typer

from agentos.cli import options, output

app = typer.Typer(help="LLM calls: tokens, cost, latency, by model, agent or day.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

CALL_COLUMNS = [("ID", "id"), ("AT", "at"), ("AGENT", "agent"), ("MODEL", "model"),
                ("TOKENS", "total_tokens"), ("COST", "cost"), ("MS", "latency_ms"),
                ("OUTCOME", "outcome"), ("TASK", "task_id")]
SUMMARY_COLUMNS = [("KEY", "key"), ("CALLS", "calls"), ("PROMPT", "prompt_tokens"),
                   ("COMPLETION", "completion_tokens"), ("COST", "cost"),
                   ("UNPRICED", "unpriced"), ("FAILED", "failed"), ("AVG MS", "avg_latency_ms")]


@app.command()
def calls(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option(metavar="NAME", show_default=False,
                                              help="Only this agent's calls.")] = None,
    model: Annotated[str | None, typer.Option(metavar="MODEL", show_default=False,
                                              help="Only calls of this model.")] = None,
    task_id: Annotated[str | None, typer.Option(metavar="ID", show_default=False,
                                             help="Only this task's calls.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")
                     ] = 50,
    before_id: Annotated[int | None, typer.Option(
        metavar="ID", min=1, show_default=False,
        help="The page before this one: the id a list said more follow from.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """List recorded LLM calls, newest first; when more follow, says how to see them
    (on stderr)."""
    with options.client(url) as api:
        page = api.llm_calls(agent=agent, model=model, task_id=task_id, before_id=before_id,
                             limit=limit)
    found = page["calls"]
    if json:
        output.emit_json(found)
    else:
        output.table([{**c, "at": output.timestamp(c["at"]),
                       "latency_ms": round(c["latency_ms"])} for c in found], CALL_COLUMNS,
                     empty="no LLM calls recorded")
    output.more_follow(ctx, "--before-id", page["next_before_id"])


@app.command()
def summary(
    by: Annotated[str, typer.Option(metavar="model|agent|day",
                                    help="What to group the calls by.")] = "model",
    agent: Annotated[str | None, typer.Option(metavar="NAME", show_default=False,
                                              help="Only this agent's calls.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Calls, tokens, cost, failures and latency per model, agent or UTC day."""
    with options.client(url) as api:
        found = api.llm_summary(by, agent=agent)["rows"]
    if json:
        output.emit_json(found)
        return
    output.table([{**r, "cost": round(r["cost"], 6), "avg_latency_ms": round(
        r["avg_latency_ms"])} for r in found], SUMMARY_COLUMNS, empty="no LLM calls recorded")
