"""``agentos demo --example NAME``: one shipped example, live, with the dashboard.

The example's simulators start in this process, then the server (with a worker in
it); once it answers, a thread installs the example and runs its scenario through
the SDK, as its users would, and prints what happened and where to look.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer

from agentos import examples
from agentos.cli import demo as plain_demo
from agentos.cli import options, output, serve
from agentos.config import Settings

if TYPE_CHECKING:
    from agentos.sdk import Client

STARTUP_TIMEOUT = 60.0  # seconds the server gets to answer before the scenario gives up
KEY_LIFETIME = timedelta(days=1)  # of the API key the scenario runs with


def demo(name: str, host: str | None, port: int | None) -> None:
    if name == "list":
        _list()
        return
    example = examples.load(name)
    sims = example.simulators()
    try:
        # the example's own database, settings and simulators' addresses, for what the
        # environment or .env does not set (an LLM endpoint configured is used instead
        # of the simulator)
        given = options.settings().model_fields_set
        wanted = {"AGENTOS_DATABASE_URL": f"sqlite:///./agentos-{name}.db", **example.env,
                  **sims.env}
        for key, value in wanted.items():
            if key.removeprefix("AGENTOS_").lower() not in given:
                os.environ[key] = value
        settings = options.settings().model_copy(update={"run_worker": True})
        host, port = host or settings.host, port or settings.port
        serve.configure_logging(settings)
        with serve.listen(host, port) as listening:  # before anything is created
            sections = [plain_demo.database(settings), plain_demo.login(settings),
                        ("example", [f"{example.title} (seed {example.seed})",
                                     example.summary, f"{example.path}/README.md"]),
                        ("worker", [f"in this process, {settings.worker_concurrency} tasks "
                                    "at once"])]
            base = f"http://{host}:{port}"
            plain_demo.banner(base, sections, title=f"AgentOS example: {example.name}")
            typer.echo("\nPress Ctrl+C to stop.\n")
            key = asyncio.run(_scenario_key(settings, example.name))
            threading.Thread(target=_scenario, args=(example, sims, base, key), daemon=True,
                             name="example-scenario").start()
            serve.start(settings, listening)
    finally:
        sims.stop()


def _list() -> None:
    rows = []
    for name in examples.names():
        example = examples.load(name)
        rows.append({"name": name, "seed": example.seed, "title": example.title,
                     "summary": example.summary})
    output.table(rows, [("NAME", "name"), ("SEED", "seed"), ("SYSTEM", "title"),
                        ("WHAT IT SHOWS", "summary")],
                 empty=f"no examples found in {examples.root()}")


async def _scenario_key(settings: Settings, name: str) -> str:
    """An admin API key for the scenario thread (the admin's password may be unknown)."""
    from agentos import tokens
    from agentos.roles import Role
    from agentos.store import open_store

    store = open_store(settings.database_url, pool_size=1)
    try:
        key, _ = await tokens.create_key(store, f"example-{name}", Role.ADMIN,
                                         datetime.now(UTC) + KEY_LIFETIME, "demo")
    finally:
        await store.close()
    return key


def _scenario(example: examples.Example, sims: examples.Simulators, base: str,
              key: str) -> None:
    from agentos.errors import AgentOSError
    from agentos.sdk import Client

    try:
        with Client(base, token=key) as client:
            _wait_until_up(client)
            installed = example.install(client, sims)
            plain_demo.lines([("installed", installed)])
            typer.echo(f"\nrunning the {example.name} scenario ...")
            started = time.monotonic()
            outcome = example.run(client, sims)
            typer.echo(f"\n{example.name}: done in {time.monotonic() - started:.1f} s")
            plain_demo.lines([("outcome", _outcome(outcome)),
                              ("look at", [f"{base}{page}  {what}"
                                           for page, what in example.dashboard])])
            typer.echo("\nThe server keeps running: press Ctrl+C to stop.")
    except Exception as exc:  # a failing example says so in one line, not a traceback
        said = str(exc) if isinstance(exc, (AgentOSError, TimeoutError, AssertionError)) \
            else f"{type(exc).__name__}: {exc}"
        typer.echo(f"error: the {example.name} scenario stopped: {said}", err=True)


def _wait_until_up(client: Client) -> None:
    from agentos.errors import Unavailable

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            client.health()
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not answer in {STARTUP_TIMEOUT:g} s"
                                   ) from None
            time.sleep(0.1)


def _outcome(outcome: dict[str, Any]) -> list[str]:
    """A line per figure (a mapping: a line per entry); ``ids`` is for programs."""
    lines = []
    for key, value in outcome.items():
        if key == "ids":
            continue
        if isinstance(value, dict):
            lines += [f"{key}: {k} {_short(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {_short(value)}")
    return lines


def _short(value: Any) -> str:
    text = output.cell(value)
    return text if len(text) <= 100 else text[:99] + "…"
