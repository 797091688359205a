"""``agentos users``: accounts and roles, through the server (admin only)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from agentos.api.schemas.users import User
from agentos.cli import options, output
from agentos.cli.auth import PasswordStdin, read_password

app = typer.Typer(help="Create, list and manage users and their roles.",
                  invoke_without_command=True)
app.callback()(options.help_if_bare)

Username = Annotated[str, typer.Argument(metavar="USERNAME", show_default=False)]
COLUMNS = [("USERNAME", "username"), ("ROLE", "role"), ("ACTIVE", "active"),
           ("EMAIL", "email"), ("LAST LOGIN", "last_login")]


class RoleName(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


def _row(user: User) -> dict[str, Any]:
    return {**user.model_dump(), "active": "yes" if user.active else "no",
            "last_login": user.last_login_at}


def _show(user: User, json: bool, verb: str) -> None:
    if json:
        output.emit_json(user)
    else:
        typer.echo(f"{verb} {user.username} ({user.role}{'' if user.active else ', disabled'})")


@app.command()
def create(username: Username,
           role: Annotated[RoleName, typer.Option(help="What the user may do.")] =
           RoleName.VIEWER,
           email: Annotated[str | None, typer.Option(help="Contact address.")] = None,
           password_stdin: PasswordStdin = False,
           json: options.Json = False, url: options.Url = None) -> None:
    """Create a user (the password is prompted for, twice)."""
    password = read_password(password_stdin, confirm=True)
    with options.client(url) as api:
        user = api.create_user(username, password, role.value, email)
    _show(user, json, "created")


@app.command("list")
def list_(json: options.Json = False, url: options.Url = None) -> None:
    """List users."""
    with options.client(url) as api:
        found = list(api.iterate(api.list_users))
    if json:
        output.emit_json(found)
        return
    output.table([_row(u) for u in found], COLUMNS, empty="no users")


@app.command("set-role")
def set_role(username: Username,
             role: Annotated[RoleName, typer.Argument(metavar="ROLE", show_default=False)],
             json: options.Json = False, url: options.Url = None) -> None:
    """Change a user's role (admin, operator or viewer)."""
    with options.client(url) as api:
        _show(api.patch_user(username, role=role.value), json, "changed")


@app.command()
def disable(username: Username, json: options.Json = False, url: options.Url = None) -> None:
    """Disable a user: their tokens are revoked and they cannot log in."""
    with options.client(url) as api:
        _show(api.patch_user(username, active=False), json, "disabled")


@app.command()
def enable(username: Username, json: options.Json = False, url: options.Url = None) -> None:
    """Let a disabled user log in again."""
    with options.client(url) as api:
        _show(api.patch_user(username, active=True), json, "enabled")


@app.command()
def passwd(password_stdin: PasswordStdin = False, json: options.Json = False,
           url: options.Url = None) -> None:
    """Change your own password (then log in again: every token of yours is revoked).

    With --password-stdin: the current password on the first line, the new one on the
    second."""
    current = read_password(password_stdin, "Current password")
    new = read_password(password_stdin, "New password", confirm=not password_stdin)
    with options.client(url) as api:
        api.change_password(current, new)
    output.answer({"password_changed": True}, json,
                  "password changed; log in again (agentos login)")


@app.command("reset-password")
def reset_password(username: Username, json: options.Json = False) -> None:
    """Set a new random password for USERNAME straight in AGENTOS_DATABASE_URL and print
    it once (no server and no token needed: whoever can open the database may). For a
    lost admin password; their sessions end and the audit log records actor `local`."""
    import asyncio

    from agentos import users
    from agentos.cli import db
    from agentos.store import open_store

    settings = options.settings()
    db.ensure_current(settings)  # an existing database only: never a new empty one

    async def reset() -> str:
        store = open_store(settings.database_url, pool_size=1)
        try:
            return await users.reset_password(store, username)
        finally:
            await store.close()

    with db.reaching(settings.database_url):
        password = asyncio.run(reset())
    if json:
        output.emit_json({"username": username, "password": password})
    else:
        typer.echo(f"new password for {username}: {password}\n(shown this once; their "
                   "sessions were ended: log in with `agentos login`)")
