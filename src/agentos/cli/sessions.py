"""``agentos sessions``: who is signed in, and ending a login (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from agentos.cli import options, output

app = typer.Typer(help="List login sessions and end them.", invoke_without_command=True)
app.callback()(options.help_if_bare)

COLUMNS = [("ID", "id"), ("USER", "username"), ("ROLE", "role"), ("SINCE", "since"),
           ("EXPIRES", "expires"), ("LAST USED", "last_used"), ("STATE", "state")]


@app.command("list")
def list_(ctx: typer.Context,
          include_ended: Annotated[bool, typer.Option(help="Ended ones too.")] = False,
          username: Annotated[str | None, typer.Option(help="One user's sessions.")] = None,
          limit: Annotated[int, typer.Option(metavar="N", min=1, max=500,
                                             help="At most N sessions.")] = 100,
          before: Annotated[str | None, typer.Option(
              metavar="ID", show_default=False,
              help="The page before this one: the session a list said more follow from.")
                            ] = None,
          json: options.Json = False, url: options.Url = None) -> None:
    """List login sessions, newest first (never their tokens); when more follow, says
    how to see them (on stderr)."""
    with options.client(url) as api:
        page = api.list_sessions(include_ended, username, before=before, limit=limit)
    found = page["sessions"]
    if json:
        output.emit_json(found)
    else:
        output.table([{**s, "since": output.timestamp(s["created_at"]),
                       "expires": output.timestamp(s["expires_at"]),
                       "last_used": output.timestamp(s["last_used_at"]),
                       "state": "live" if s["live"] else
                       ("ended" if s["revoked_at"] else "expired")} for s in found],
                     COLUMNS, empty="no sessions")
    output.more_follow(ctx, "--before", page["next_before"])


@app.command()
def end(session_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)],
        json: options.Json = False, url: options.Url = None) -> None:
    """End a session: its token is refused from then on, on every server."""
    with options.client(url) as api:
        api.end_session(session_id)
    if json:
        output.emit_json({"ended": session_id})
        return
    typer.echo(f"ended session {session_id}")
