"""``agentos login`` / ``agentos logout``: a token for the server at AGENTOS_URL, kept in
the user's config file (mode 0600) for every later command and the SDK."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from agentos.cli import options, output
from agentos.errors import AgentOSError

Username = Annotated[str, typer.Option("--username", "-u", help="Who logs in.")]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from stdin instead of a prompt.")]


def read_password(from_stdin: bool, prompt: str = "Password", confirm: bool = False) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def login(username: Username = "admin", password_stdin: PasswordStdin = False,
          json: options.Json = False, url: options.Url = None) -> None:
    """Log in and keep the token for later commands (AGENTOS_TOKEN, when set, wins)."""
    from agentos.sdk import Client, credentials

    base = (url or options.settings().url).rstrip("/")
    password = read_password(password_stdin)
    with Client(base) as api:  # the login route takes no credential
        done = api.login(username, password)
    where = credentials.save(base, done.token, username=username,
                             expires_at=done.expires_at.isoformat())
    if json:  # the API's answer without the token itself (it stays in the file)
        output.emit_json({"url": base, "user": done.user, "expires_at": done.expires_at,
                          "token_file": str(where)})
        return
    typer.echo(f"logged in to {base} as {username} ({done.user.role}) until "
               f"{output.timestamp(done.expires_at)}; token kept in {where}")


def logout(json: options.Json = False, url: options.Url = None) -> None:
    """Revoke the kept token on the server and forget it here."""
    from agentos.sdk import Client, credentials

    base = (url or options.settings().url).rstrip("/")
    token = credentials.load(base)
    if token is None:
        if json:
            output.emit_json({"url": base, "logged_out": False})
            return
        typer.echo(f"not logged in to {base}")
        return
    try:
        with Client(base, token=token) as api:
            api.logout()
    except AgentOSError:
        pass  # expired or revoked already, or the server is gone: forget it all the same
    credentials.forget(base)
    if json:
        output.emit_json({"url": base, "logged_out": True})
        return
    typer.echo(f"logged out of {base}")
