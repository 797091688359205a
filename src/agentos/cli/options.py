"""What several commands share: the ``--url`` and ``--json`` options, settings, the client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from agentos.config import Settings
from agentos.errors import InvalidInput

if TYPE_CHECKING:  # the SDK (httpx) is imported by the commands that talk to a server:
    from agentos.sdk import Client  # `agentos worker` and `serve` start without it

Url = Annotated[str | None, typer.Option(
    "--url", metavar="URL", show_default=False,
    help="AgentOS server to talk to [default: AGENTOS_URL or http://127.0.0.1:8000]")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]


def settings() -> Settings:
    """The settings from AGENTOS_* variables and .env, bad values as one-line errors."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "AGENTOS_" + "_".join(str(p) for p in first["loc"]).upper()
        raise InvalidInput(f"bad configuration: {name}: {first['msg']}",
                           code="bad_configuration") from None


def help_if_bare(ctx: typer.Context) -> None:
    """A group called without a command shows its help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def client(url: str | None) -> Client:
    from agentos.sdk import Client

    return Client(url or settings().url)
