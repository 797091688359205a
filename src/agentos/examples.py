"""The shipped examples (``examples/<name>/`` in the source tree): find, load, install.

An example declares itself as ``EXAMPLE = Example(...)`` in its package. Its parts:

    simulators   the outside world its handlers call (devices, an exchange, an LLM
                 provider), started in the process that runs the example
    install      publishes its agents and workflows and sets what they need, through
                 the SDK as its users would (safe to run again)
    run          its scenario: emits the events, starts the runs, makes the decisions
                 its users would, waits for the outcome and returns it

``agentos demo --example NAME`` runs the three around a server with a worker in it;
``tests/examples`` runs them against a real server and worker processes on both
backends and asserts the outcome. Handlers are imported as
``examples.<name>.<module>``, so the folder holding ``examples/`` goes on
``sys.path`` (and on the PYTHONPATH of worker processes).
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentos.errors import Conflict, NotFound

if TYPE_CHECKING:
    from agentos.api.schemas.tasks import TaskDetail
    from agentos.sdk import Client

PACKAGE = "examples"
POLL = 0.2  # seconds between looks while a scenario waits
FINAL = ("succeeded", "failed", "cancelled")  # the statuses of an ended task


@dataclass
class Simulators:
    """The outside systems of a running example, and how its processes reach them."""

    env: dict[str, str] = field(default_factory=dict)  # AGENTOS_* for servers and workers
    handles: dict[str, Any] = field(default_factory=dict)  # by name, for scenarios and tests
    stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stops):
            stop()
        self.stops.clear()


@dataclass(frozen=True)
class Example:
    """One shipped system: what it is, and how to start, install and run it."""

    name: str
    title: str
    seed: str  # the progress report in ../shared/seeds it comes from
    summary: str  # one line
    install: Callable[[Client, Simulators], list[str]]  # what it set up, a line each
    run: Callable[[Client, Simulators], dict[str, Any]]  # the scenario's outcome
    simulators: Callable[[], Simulators] = Simulators
    # settings of every server and worker that runs it (read models of its own, ...)
    env: dict[str, str] = field(default_factory=dict)
    dashboard: tuple[tuple[str, str], ...] = ()  # (page, what to look at there)

    @property
    def path(self) -> Path:
        return root() / self.name

    def read(self, relative: str) -> str:
        return (self.path / relative).read_text("utf-8")


def root() -> Path:
    """The ``examples/`` folder: beside ``src/`` in a source checkout, else under the
    working directory."""
    checkout = Path(__file__).resolve().parents[2] / PACKAGE
    return checkout if checkout.is_dir() else Path.cwd() / PACKAGE


def names() -> list[str]:
    """The examples there are, by name."""
    if not root().is_dir():
        return []
    return sorted(p.name for p in root().iterdir()
                  if (p / "__init__.py").is_file() and (p / "README.md").is_file())


def load(name: str) -> Example:
    """The example called ``name``; its package is importable from then on."""
    if name not in names():
        raise NotFound(f"no example named {name!r} (have: {', '.join(names()) or 'none'}; "
                       f"looked in {root()})", code="example_not_found")
    importable()
    example = importlib.import_module(f"{PACKAGE}.{name}").EXAMPLE
    assert isinstance(example, Example), f"{PACKAGE}.{name}.EXAMPLE is no Example"
    return example


def importable() -> str:
    """Put the folder holding ``examples/`` on ``sys.path``; returns it (for PYTHONPATH)."""
    folder = str(root().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return folder


# ------------------------------------------------ what installs share


def publish_agents(client: Client, example: Example, files: Iterable[str]) -> list[str]:
    """Import and publish each agent definition file; one already published stays."""
    lines = []
    for relative in files:
        lines += publish_yaml(client, example.read(relative))
    return lines


def publish_yaml(client: Client, text: str) -> list[str]:
    """Import and publish a YAML stream of agent definitions (a starter template's, or
    an example's file); a version already published stays as it is."""
    try:
        return [f"agent {agent.name} {agent.version} (published)"
                for agent in client.import_yaml(text, publish=True).agents]
    except Conflict as exc:
        if exc.code != "version_immutable":
            raise
        d = exc.details
        return [f"agent {d['name']} {d['version']} (already {d['status']})"]


def publish_workflows(client: Client, example: Example, files: Iterable[str]) -> list[str]:
    """Import and publish each workflow file; an identical published one is unchanged."""
    lines = []
    for relative in files:
        for workflow in client.import_workflows(example.read(relative), publish=True):
            lines.append(f"workflow {workflow['name']} {workflow['version']} "
                         f"({workflow['outcome']}, {workflow['status']})")
    return lines


def ensure_user(client: Client, username: str, password: str, role: str) -> str:
    """Create a user unless one of that name exists (an example installed again)."""
    try:
        client.create_user(username, password, role=role)
    except Conflict:
        return f"user {username} ({role}, there already)"
    return f"user {username} ({role})"


# ------------------------------------------------ what scenarios share


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    """Look with ``check`` until it gives something true, and return that; raise
    ``TimeoutError`` naming ``what`` if ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:g} s for {what}")
        time.sleep(POLL)


def wait_tasks(client: Client, task_ids: Iterable[str], timeout_s: float = 60.0
               ) -> dict[str, TaskDetail]:
    """Wait until every task has ended; each task by id, with its attempts. Each wait
    is the server's long poll (``client.wait``), so an ended task answers at once."""
    from agentos.sdk import WaitTimedOut

    deadline = time.monotonic() + timeout_s
    ended: dict[str, TaskDetail] = {}
    for task_id in task_ids:
        try:
            ended[task_id] = client.wait(task_id, max(deadline - time.monotonic(), 0.0))
        except WaitTimedOut as exc:
            raise TimeoutError(f"waited {timeout_s:g} s for task {task_id} to end") from exc
    return ended
