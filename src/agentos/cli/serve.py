"""``agentos serve``: the API server (uvicorn) on a checked database schema."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from agentos.cli import db, options
from agentos.config import Settings
from agentos.errors import Unavailable

Host = Annotated[str | None, typer.Option(
    "--host", show_default=False,
    help="Interface to listen on [default: AGENTOS_HOST or 127.0.0.1]")]
Port = Annotated[int | None, typer.Option(
    "--port", min=1, max=65535, show_default=False,
    help="Port to listen on [default: AGENTOS_PORT or 8000]")]


def serve(host: Host = None, port: Port = None) -> None:
    """Run the AgentOS server on AGENTOS_DATABASE_URL.

    An out-of-date schema is upgraded first on SQLite (AGENTOS_AUTO_UPGRADE
    overrides); on PostgreSQL the server stops and asks for `agentos db upgrade`.
    Every start condition is checked before anything is created: the address is
    taken first, then the database reached and its schema checked, then the first
    admin made (its password printed once).
    """
    settings = options.settings()
    configure_logging(settings)
    listening = listen(host or settings.host, port or settings.port)
    with listening:
        db.ensure_current(settings, create=True)
        if password := first_admin(settings):
            typer.echo(f"created user admin with password {password}\n"
                       "(shown this once: log in with `agentos login`, then change it with "
                       "`agentos users passwd`; lost: `agentos users reset-password admin`)")
        start(settings, listening)


def first_admin(settings: Settings) -> str | None:
    """With no user yet, create ``admin`` (AGENTOS_ADMIN_PASSWORD, else a random
    password, returned to be shown once)."""
    import asyncio

    from agentos import users
    from agentos.store import open_store

    given = settings.admin_password.get_secret_value() if settings.admin_password else None

    async def ensure() -> str | None:
        store = open_store(settings.database_url, pool_size=1)
        try:
            return await users.ensure_admin(store, given)
        finally:
            await store.close()

    with db.reaching(settings.database_url):
        return asyncio.run(ensure())


def configure_logging(settings: Settings) -> None:
    from agentos import logs

    logs.configure(settings.log_level)


GRACEFUL_SHUTDOWN = 3  # seconds open connections get after SIGTERM
BACKLOG = 2048  # connections the kernel queues before accept (uvicorn's default)


def start(settings: Settings, listening: socket.socket) -> None:
    """Serve on ``listening`` (from ``listen``) until SIGINT or SIGTERM."""
    import uvicorn

    from agentos import server

    host, port = listening.getsockname()[:2]
    # log_config=None: uvicorn's own lines go through agentos.logs like ours
    # open event streams never end by themselves: give them a few seconds, then close them
    # proxy_headers=False: uvicorn would believe X-Forwarded-For from any local client;
    # the app does it for AGENTOS_TRUSTED_PROXIES only
    config = uvicorn.Config(server.create(settings, own_process=True), host=host, port=port,
                            log_level=settings.log_level, access_log=False, log_config=None,
                            proxy_headers=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN)
    uvicorn.Server(config).run(sockets=[listening])


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, taken before anything else starts: a busy address fails
    with one line before a database or a user is created (the first admin's password
    would be printed and lost otherwise)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, proto)
    except OSError as exc:
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          code="address_unavailable") from None
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(BACKLOG)
    except OSError as exc:
        listening.close()
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          code="address_unavailable") from None
    return listening
