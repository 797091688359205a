"""``agentos api-keys``: credentials for workers and scripts, through the server (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from agentos.cli import options, output
from agentos.cli.users import RoleName

app = typer.Typer(help="Create, list and revoke API keys.", invoke_without_command=True)
app.callback()(options.help_if_bare)

COLUMNS = [("ID", "id"), ("NAME", "name"), ("PREFIX", "prefix"), ("ROLE", "role"),
           ("EXPIRES", "expires_at"), ("LAST USED", "last_used_at")]


@app.command()
def create(name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
           role: Annotated[RoleName, typer.Option(help="What the key may do.")] =
           RoleName.OPERATOR,
           expires_in_days: Annotated[float, typer.Option(min=0.001, max=3650,
                                                      help="Days until it expires.")] = 90,
           never_expires: Annotated[bool, typer.Option(help="No expiry.")] = False,
           json: options.Json = False, url: options.Url = None) -> None:
    """Create a key; its secret is printed this once (send it as AGENTOS_TOKEN)."""
    with options.client(url) as api:
        made = api.create_api_key(name, role.value, None if never_expires else expires_in_days,
                                  never_expires)
    if json:
        output.emit_json(made)
        return
    typer.echo(made.key)
    typer.echo(f"created {made.prefix} ({made.role}), expires "
               f"{output.timestamp(made.expires_at) or 'never'}; the key above is shown "
               "only now", err=True)


@app.command("list")
def list_(include_revoked: Annotated[bool, typer.Option(help="Revoked ones too.")] = False,
          json: options.Json = False, url: options.Url = None) -> None:
    """List keys (never their secrets)."""
    with options.client(url) as api:
        keys = list(api.iterate(api.list_api_keys, include_revoked=include_revoked))
    if json:
        output.emit_json(keys)
        return
    output.table(keys, COLUMNS, empty="no API keys")


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)],
           json: options.Json = False, url: options.Url = None) -> None:
    """Revoke a key: every server refuses it within AGENTOS_AUTH_CACHE_S."""
    with options.client(url) as api:
        api.revoke_api_key(key_id)
    if json:
        output.emit_json({"revoked": key_id})
        return
    typer.echo(f"revoked {key_id}")
