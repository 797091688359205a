"""The ``agentos`` command: the Typer app and ``main()``, the one place errors become exit codes.

    exit 0   done
    exit 1   a bug: an unexpected exception, with its traceback
    exit 2   a usage error or an ``AgentOSError``: one line ``error: <message>``
             on stderr (a validation failure: one such line per problem)
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from agentos import __version__
from agentos.cli import (
    agents,
    api_keys,
    approvals,
    audit,
    auth,
    budgets,
    db,
    demo,
    events,
    knowledge,
    llm,
    locks,
    metrics,
    models,
    options,
    projections,
    runs,
    schedules,
    serve,
    sessions,
    subscriptions,
    tasks,
    users,
    worker,
    workflows,
)
from agentos.errors import AgentOSError

USAGE_ERROR = 2
BUG = 1

app = typer.Typer(
    name="agentos",
    help="AgentOS: the durable backbone for fleets of cooperating AI agents.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # every command inherits it
)
app.command()(serve.serve)
app.command()(demo.demo)
app.command()(worker.worker)
app.command()(tasks.workers)
app.command()(auth.login)
app.command()(auth.logout)
app.add_typer(users.app, name="users")
app.add_typer(api_keys.app, name="api-keys")
app.add_typer(sessions.app, name="sessions")
app.add_typer(audit.app, name="audit")
app.add_typer(tasks.app, name="tasks")
app.add_typer(db.app, name="db")
app.add_typer(agents.app, name="agents")
app.add_typer(events.app, name="events")
app.add_typer(subscriptions.app, name="subscriptions")
app.add_typer(schedules.app, name="schedules")
app.add_typer(locks.app, name="locks")
app.add_typer(knowledge.app, name="knowledge")
app.add_typer(models.app, name="models")
app.add_typer(projections.app, name="projections")
app.add_typer(llm.app, name="llm")
app.add_typer(budgets.app, name="budgets")
app.add_typer(metrics.app, name="metrics")
app.add_typer(workflows.app, name="workflows")
app.add_typer(runs.app, name="runs")
app.add_typer(approvals.app, name="approvals")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"agentos {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context, version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    options.help_if_bare(ctx)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with 0, 1 (a bug) or 2 (an error the user can fix)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="agentos", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: bad options, missing arguments
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        # typer validates enum choices with pydantic, which prefixes "Value error, "
        _fail([exc.format_message().replace("Value error, ", "") + hint])
    except typer.Abort:
        _fail(["aborted"])
    except AgentOSError as exc:
        _fail(_lines(exc))
    except Exception:
        traceback.print_exc()
        sys.exit(BUG)
    sys.exit(result if isinstance(result, int) else 0)


def _fail(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    sys.exit(USAGE_ERROR)


def _lines(exc: AgentOSError) -> list[str]:
    """The message, or for a failed validation one ``FILE:LINE: path: message`` per problem."""
    details: Any = exc.details
    problems = details.get("errors") if isinstance(details, dict) else None
    if not (isinstance(problems, list) and problems
            and all(isinstance(p, dict) and "message" in p for p in problems)):
        return [exc.message]
    source = details.get("source")
    lines = []
    for problem in problems:
        line = problem.get("line")
        where = ":".join(str(p) for p in (source, line) if p is not None)
        if where and source is None:
            where = f"line {where}"
        parts = [where, problem.get("path"), problem["message"]]
        lines.append(": ".join(str(p) for p in parts if p))
    return lines


if __name__ == "__main__":
    main()
