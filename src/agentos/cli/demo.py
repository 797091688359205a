"""``agentos demo``: a working AgentOS on this machine in one command.

The demo is a list of setup steps, each returning the lines it adds to the
banner; then it serves like ``agentos serve``.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from agentos import templates
from agentos.cli import db, options, serve
from agentos.config import Settings
from agentos.errors import Conflict

Section = tuple[str, list[str]]  # a banner label and its lines
ExampleName = Annotated[str | None, typer.Option(
    "--example", metavar="NAME", show_default=False,
    help="Run one of the shipped examples instead ('list' lists them).")]


def demo(host: serve.Host = None, port: serve.Port = None, example: ExampleName = None
         ) -> None:
    """Try AgentOS: the starter agents, published and served from SQLite.

    Uses ./agentos.db unless AGENTOS_DATABASE_URL is set; safe to run again. With
    --example NAME, that example instead, on ./agentos-NAME.db.
    """
    if example is not None:
        from agentos.cli import demo_example

        demo_example.demo(example, host, port)
        return
    settings = options.settings().model_copy(update={"run_worker": True})
    host, port = host or settings.host, port or settings.port
    serve.configure_logging(settings)
    # the address first: nothing is created (the admin's password shown once) on a busy one
    with serve.listen(host, port) as listening:
        sections = [database(settings), login(settings), _agents(settings),
                    ("worker", [f"in this process, {settings.worker_concurrency} tasks at "
                                "once"])]
        banner(f"http://{host}:{port}", sections)
        _try(settings, f"http://{host}:{port}")
        serve.start(settings, listening)


def database(settings: Settings) -> Section:
    _, now = db.upgrade(settings.database_url)
    return "database", [f"{db.redact(settings.database_url)} (schema {now.current})"]


def login(settings: Settings) -> Section:
    password = serve.first_admin(settings)
    if password is not None:
        return "login", [f"admin / {password}  (created now, shown this once)"]
    if settings.admin_password is not None:
        return "login", ["admin / $AGENTOS_ADMIN_PASSWORD"]
    return "login", ["admin, with the password shown on the first run (lost: "
                     "`agentos users reset-password admin`)"]


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
                for agent, result in await registry.import_results(
                        store, templates.read(name), publish=True):
                    already = "already " if result == registry.UNCHANGED else ""
                    loaded.append(f"{agent.name} {agent.version} ({already}{agent.status})")
            except Conflict as exc:
                if exc.code != "version_immutable":
                    raise
                d = exc.details
                loaded.append(f"{d['name']} {d['version']} (already {d['status']})")
    finally:
        await store.close()
    return loaded


def banner(base: str, sections: list[Section], title: str = "AgentOS demo") -> None:
    rows: list[Section] = [("dashboard", [f"{base}/"]), ("API docs", [f"{base}/docs"]),
                           *sections]
    typer.echo(f"{title}\n")
    lines(rows)


def lines(rows: list[Section]) -> None:
    """Print labelled lines, labels aligned."""
    width = max(len(label) for label, _ in rows)
    for label, texts in rows:
        for i, text in enumerate(texts):
            typer.echo(f"  {(label if i == 0 else '').ljust(width)}  {text}")


def _try(settings: Settings, base: str) -> None:
    # the CLI reads AGENTOS_URL; say so only when it would not find this server
    prefix = "" if settings.url.rstrip("/") == base else f"AGENTOS_URL={base} "
    typer.echo("\nTry, in another terminal:")
    activate = Path(sys.executable).parent / "activate"
    if shutil.which("agentos") is None and activate.exists():  # `make run`: not on PATH
        typer.echo(f"  source {activate}")
    for command in ("agentos login", "agentos agents list", "agentos events tail &",
                    "agentos events emit alert.cpu --payload "
                    "'{\"severity\": \"high\", \"device_id\": \"pixel-7\"}'",
                    "agentos tasks list"):
        typer.echo(f"  {prefix}{command}")
    typer.echo("\nPress Ctrl+C to stop.\n")
