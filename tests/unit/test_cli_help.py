"""CLI conventions: ``-h`` works like ``--help`` on every command and group."""

from __future__ import annotations

from typing import Any

import typer.main
from click.testing import CliRunner

from agentos.cli.main import app


def commands(group: Any, prefix: list[str]) -> list[list[str]]:
    found = [prefix]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group
            found += commands(command, [*prefix, name])
        else:
            found.append([*prefix, name])
    return found


def test_dash_h_is_help_everywhere() -> None:
    runner = CliRunner()
    cli = typer.main.get_command(app)  # built once (typer's runner builds it every call)
    every = commands(cli, [])
    assert len(every) > 100
    for path in every:
        long = runner.invoke(cli, [*path, "--help"], prog_name="agentos")
        short = runner.invoke(cli, [*path, "-h"], prog_name="agentos")
        assert (short.exit_code, short.output) == (0, long.output), path
        assert short.output.startswith("Usage: agentos"), path
