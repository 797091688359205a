"""``agentos demo``: a working AgentOS on this machine in one command.

The demo is a list of setup steps, each returning the lines it adds to the
banner; then it serves like ``agentos serve``.
"""

from __future__ import annotations

import asyncio

import typer

from agentos import templates
from agentos.cli import db, options, serve
from agentos.config import Settings
from agentos.errors import Conflict

Section = tuple[str, list[str]]  # a banner label and its lines


def demo(host: serve.Host = None, port: serve.Port = None) -> None:
    """Try AgentOS: the starter agents, published and served from SQLite.

    Uses ./agentos.db unless AGENTOS_DATABASE_URL is set; safe to run again.
    """
    settings = options.settings().model_copy(update={"run_worker": True})
    host, port = host or settings.host, port or settings.port
    serve.configure_logging(settings)
    sections = [_database(settings), _login(settings), _agents(settings),
                ("worker", [f"in this process, {settings.worker_concurrency} tasks at once"])]
    serve.check_port(host, port)
    _banner(settings, f"http://{host}:{port}", sections)
    serve.start(settings, host, port)


def _database(settings: Settings) -> Section:
    _, now = db.upgrade(settings.database_url)
    return "database", [f"{db.redact(settings.database_url)} (schema {now.current})"]


def _login(settings: Settings) -> Section:
    password = serve.first_admin(settings)
    if password is not None:
        return "login", [f"admin / {password}  (created now, shown this once)"]
    if settings.admin_password is not None:
        return "login", ["admin / $AGENTOS_ADMIN_PASSWORD"]
    return "login", ["admin, with the password shown on the first run"]


def _agents(settings: Settings) -> Section:
    return "agents", asyncio.run(_publish_templates(settings.database_url))


async def _publish_templates(url: str) -> list[str]:
    """Import and publish every starter template; those already published stay as they are."""
    from agentos import registry
    from agentos.store import open_store

    store = open_store(url)
    loaded = []
    try:
        for name in templates.names():
            try:
                for agent in await registry.import_yaml(store, templates.read(name),
                                                        publish=True):
                    loaded.append(f"{agent.name} {agent.version} (published)")
            except Conflict as exc:
                if exc.code != "version_immutable":
                    raise
                d = exc.details
                loaded.append(f"{d['name']} {d['version']} (already {d['status']})")
    finally:
        await store.close()
    return loaded


def _banner(settings: Settings, base: str, sections: list[Section]) -> None:
    # the CLI reads AGENTOS_URL; say so only when it would not find this server
    prefix = "" if settings.url.rstrip("/") == base else f"AGENTOS_URL={base} "
    rows: list[Section] = [("dashboard", [f"{base}/"]), ("API docs", [f"{base}/docs"]),
                           *sections]
    width = max(len(label) for label, _ in rows)
    typer.echo("AgentOS demo\n")
    for label, lines in rows:
        for i, line in enumerate(lines):
            typer.echo(f"  {(label if i == 0 else '').ljust(width)}  {line}")
    typer.echo("\nTry, in another terminal:")
    for command in ("agentos login", "agentos agents list", "agentos events tail &",
                    "agentos events emit alert.cpu --payload "
                    "'{\"severity\": \"high\", \"device_id\": \"pixel-7\"}'",
                    "agentos tasks list"):
        typer.echo(f"  {prefix}{command}")
    typer.echo("\nPress Ctrl+C to stop.\n")
