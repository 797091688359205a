"""CLI conventions: ``-h`` works like ``--help`` on every command and group; a call
imports only what its own command needs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import typer.main
from click.testing import CliRunner
from typer._click.core import Context

from agentos.cli.main import COMMANDS, app


def commands(group: Any, prefix: list[str]) -> list[list[str]]:
    found = [prefix]
    ctx = Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if hasattr(command, "list_commands"):  # a group
            found += commands(command, [*prefix, name])
        else:
            found.append([*prefix, name])
    return found


def test_dash_h_is_help_everywhere() -> None:
    runner = CliRunner()
    cli = typer.main.get_command(app)  # built once (typer's runner builds it every call)
    every = commands(cli, [])
    assert len(every) > 100
    assert {path[0] for path in every if path} == set(COMMANDS)
    for path in every:
        long = runner.invoke(cli, [*path, "--help"], prog_name="agentos")
        short = runner.invoke(cli, [*path, "-h"], prog_name="agentos")
        assert (short.exit_code, short.output) == (0, long.output), path
        assert short.output.startswith("Usage: agentos"), path


def test_a_call_imports_its_own_command_only() -> None:
    """``agentos locks list --help`` neither imports the other commands' modules nor
    what only they need (the agents' schemas, the server's app)."""
    probe = ("import sys\n"
             "from agentos.cli.main import main\n"
             "try:\n"
             "    main(['locks', 'list', '--help'])\n"
             "except SystemExit as exit:\n"
             "    assert exit.code == 0, exit.code\n"
             "print(' '.join(sorted(m for m in sys.modules if m.startswith('agentos.'))))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.splitlines()[-1].split())
    assert "agentos.cli.locks" in loaded
    others = {f"agentos.cli.{module}" for module, _ in COMMANDS.values()} - {"agentos.cli.locks"}
    assert loaded & others == set()
    assert {"agentos.api.schemas.agents", "agentos.api.app", "agentos.server"} & loaded == set()


def test_a_mistyped_command_is_named_with_the_closest() -> None:
    """Among every command, built or not (one group, as a runner in process keeps it)."""
    runner = CliRunner()
    cli = typer.main.get_command(app)
    done = runner.invoke(cli, ["taks", "list"], prog_name="agentos")
    assert done.exit_code == 2
    assert "No such command 'taks'. Did you mean 'tasks'?" in done.output
    assert runner.invoke(cli, ["worker", "-h"], prog_name="agentos").exit_code == 0
    done = runner.invoke(cli, ["workerz"], prog_name="agentos")
    assert "No such command 'workerz'. Did you mean 'worker', 'workers'?" in done.output
