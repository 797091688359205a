"""``agentos budgets``: token or cost budgets per agent, model or everything, through the
server."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agentos.cli import options, output
from agentos.errors import InvalidInput

app = typer.Typer(help="Token or cost budgets per agent, model or everything, per day or "
                  "month: spend, limits, hard or soft.", invoke_without_command=True)
app.callback()(options.help_if_bare)

COLUMNS = [("ID", "id"), ("SCOPE", "scope"), ("TARGET", "target"), ("METRIC", "metric"),
           ("PERIOD", "period"), ("LIMIT", "limit"), ("USED", "used"), ("USED %", "percent"),
           ("HARD", "hard"), ("EXCEEDED", "exceeded"), ("ROLLS AT", "period_end")]

Id = Annotated[int, typer.Argument(metavar="ID", help="The budget's id (see `budgets list`).")]


def _row(budget: dict[str, Any]) -> dict[str, Any]:
    ratio = budget["ratio"]
    return {**budget, "limit": f"{budget['limit']:g}", "used": f"{budget['used']:g}",
            "percent": "-" if ratio is None else f"{ratio * 100:.0f}",
            "period_end": output.timestamp(budget["period_end"])}


def _said(budget: dict[str, Any]) -> str:
    """One line about a budget: ``budget 3: agent spender, 30 tokens a day (hard), 12 used``."""
    whose = f"{budget['scope']} {budget['target']}" if budget["target"] else "global"
    amount = "tokens" if budget["metric"] == "tokens" else "of cost"
    return (f"budget {budget['id']}: {whose}, {budget['limit']:g} {amount} a "
            f"{budget['period']} ({'hard' if budget['hard'] else 'soft'}), "
            f"{budget['used']:g} used")


@app.command("list")
def list_(json: options.Json = False, url: options.Url = None) -> None:
    """Every budget with what its current period has spent."""
    with options.client(url) as api:
        found = api.list_budgets()
    if json:
        output.emit_json(found)
        return
    output.table([_row(b) for b in found], COLUMNS, empty="no budgets")


@app.command("set")
def set_(
    scope: Annotated[str, typer.Argument(metavar="agent|model|global",
                                         help="What the budget covers.")],
    limit: Annotated[float, typer.Option(metavar="N", help="Tokens, or cost in the price "
                                         "table's currency, per period.")],
    target: Annotated[str | None, typer.Argument(
        metavar="[NAME]", show_default=False,
        help="The agent or model (none for a global budget).")] = None,
    metric: Annotated[str, typer.Option(metavar="tokens|cost")] = "tokens",
    period: Annotated[str, typer.Option(metavar="day|month",
                                        help="A UTC day or month.")] = "day",
    soft: Annotated[bool, typer.Option(
        "--soft", help="Only announce 80 % and 100 % (budget.warning, budget.exceeded); "
        "a hard budget also refuses LLM calls and holds an agent's tasks.")] = False,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Create a budget."""
    with options.client(url) as api:
        made = api.create_budget(scope, metric, period, limit, target=target, hard=not soft)
    if json:
        output.emit_json(made)
        return
    typer.echo(_said(made))


@app.command()
def update(
    budget_id: Id,
    limit: Annotated[float | None, typer.Option(metavar="N", show_default=False,
                                                help="The new limit.")] = None,
    hard: Annotated[bool | None, typer.Option(
        "--hard/--soft", show_default=False,
        help="Refuse calls and hold the agent when spent, or only announce it.")] = None,
    json: options.Json = False,
    url: options.Url = None,
) -> None:
    """Change a budget's limit or hardness (raising the limit past the spend releases a
    held agent at once)."""
    changes = {k: v for k, v in (("limit", limit), ("hard", hard)) if v is not None}
    if not changes:
        raise InvalidInput("nothing to change: give --limit, --hard or --soft",
                           code="nothing_to_change")
    with options.client(url) as api:
        changed = api.change_budget(budget_id, **changes)
    if json:
        output.emit_json(changed)
        return
    typer.echo(_said(changed))


@app.command()
def delete(budget_id: Id, json: options.Json = False, url: options.Url = None) -> None:
    """Delete a budget (its agent's hold goes with it)."""
    with options.client(url) as api:
        api.delete_budget(budget_id)
    output.answer({"deleted": budget_id}, json, f"deleted budget {budget_id}")
