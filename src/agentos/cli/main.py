"""The ``agentos`` command: the Typer app and ``main()``, the one place errors become exit codes.

    exit 0   done
    exit 1   a bug: an unexpected exception, with its traceback
    exit 2   a usage error or an ``AgentOSError``: one line ``error: <message>``
             on stderr (a validation failure: one such line per problem)
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence
from difflib import get_close_matches
from typing import Annotated, Any

import typer
from typer._click.core import Command, Context  # typer's own click, which TyperGroup is
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from agentos import __version__
from agentos.cli import options
from agentos.errors import AgentOSError

USAGE_ERROR = 2
BUG = 1

# the commands, in the order help lists them: name -> (module of agentos.cli, what it
# is there: a command's function, or a group's Typer app)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "serve"),
    "demo": ("demo", "demo"),
    "worker": ("worker", "worker"),
    "workers": ("tasks", "workers"),
    "login": ("auth", "login"),
    "logout": ("auth", "logout"),
    "users": ("users", "app"),
    "api-keys": ("api_keys", "app"),
    "sessions": ("sessions", "app"),
    "audit": ("audit", "app"),
    "tasks": ("tasks", "app"),
    "db": ("db", "app"),
    "agents": ("agents", "app"),
    "events": ("events", "app"),
    "subscriptions": ("subscriptions", "app"),
    "schedules": ("schedules", "app"),
    "locks": ("locks", "app"),
    "knowledge": ("knowledge", "app"),
    "models": ("models", "app"),
    "projections": ("projections", "app"),
    "llm": ("llm", "app"),
    "budgets": ("budgets", "app"),
    "metrics": ("metrics", "app"),
    "workflows": ("workflows", "app"),
    "runs": ("runs", "app"),
    "approvals": ("approvals", "app"),
}
SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},  # every command inherits it
}


class LazyGroup(TyperGroup):
    """The root command: a command's module is imported, and its click command built,
    only when the command line names it (``agentos --help`` lists them all, so builds
    them all). A call pays for its own command's imports, not for every command's
    (the agents' schemas, the worker, the server...)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.suggest_commands = False  # TyperGroup's names only commands built: ours, all

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = _build(cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Context, args: list[str]
                        ) -> tuple[str | None, Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            if args and (close := get_close_matches(args[0], list(COMMANDS))):
                exc.message = (f"{exc.message.rstrip('.')}. Did you mean "
                               f"{', '.join(repr(name) for name in close)}?")
            raise


def _build(name: str) -> Command:
    """The click command of ``COMMANDS[name]``, built by Typer as it builds the root's
    commands (a root of the same settings that has only this one)."""
    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(f"agentos.cli.{module}"), attribute)
    root = typer.Typer(**SETTINGS)
    root.callback()(_nothing)  # a group even around a single command
    if isinstance(target, typer.Typer):
        root.add_typer(target, name=name)
    else:
        root.command(name)(target)
    built = typer.main.get_command(root)
    assert isinstance(built, TyperGroup)
    return built.commands[name]


def _nothing() -> None:
    pass


app = typer.Typer(
    name="agentos",
    help="AgentOS: the durable backbone for fleets of cooperating AI agents.",
    cls=LazyGroup,
    **SETTINGS,
)


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
