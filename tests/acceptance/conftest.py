"""Acceptance fixtures: ``agentos`` commands and servers as real processes.

``cli(...)`` runs one command to completion; ``server`` is an ``agentos serve``
on a fresh database (both backends) and a free port, stopped after the test.
Every process gets a clean environment: no ``AGENTOS_*`` variable leaks in
from the developer's shell. Servers create their first admin with
``ADMIN_PASSWORD``; the ``server`` fixture logs in and hands the token to the
CLI and to this process's SDK clients through AGENTOS_TOKEN.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

AGENTOS = [sys.executable, "-m", "agentos.cli.main"]
COMMAND_TIMEOUT = 60.0  # seconds for one CLI command
STARTUP_TIMEOUT = 30.0  # seconds for a server to answer /health
STOP_TIMEOUT = 10.0  # seconds for a server to exit after SIGTERM


ADMIN_PASSWORD = "admin-password-for-tests"


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    return {**env, "AGENTOS_ADMIN_PASSWORD": ADMIN_PASSWORD, **variables}


def admin_token(url: str) -> str:
    """Log in to the server at ``url`` as the first admin."""
    r = httpx.post(f"{url}/api/v1/auth/login",
                   json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10.0)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


@dataclass
class Cli:
    """Runs ``agentos ARGS...`` in ``cwd`` with ``env``."""

    cwd: Path
    env: dict[str, str] = field(default_factory=environment)

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*AGENTOS, *args], cwd=self.cwd, env=self.env, input=input,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT)

    def ok(self, *args: str, input: str | None = None) -> str:
        """The stdout of a command that must succeed."""
        done = self(*args, input=input)
        assert done.returncode == 0, f"agentos {' '.join(args)}: {done.stderr}"
        return done.stdout


@dataclass
class Server:
    """A running ``agentos serve`` (or ``demo``) and where its output goes."""

    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path
    token: str = ""  # an admin's, once logged in

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start(command: str, cwd: Path, env: dict[str, str]) -> Server:
    """Start ``agentos COMMAND`` on a free port and wait until /health answers."""
    port = free_port()
    stdout, stderr = cwd / f"{command}-{port}.out", cwd / f"{command}-{port}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([*AGENTOS, command, "--port", str(port)], cwd=cwd, env=env,
                                   stdout=out, stderr=err)
    server = Server(process, f"http://127.0.0.1:{port}", stdout, stderr)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(base_url=server.url, timeout=1.0) as http:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"agentos {command} exited {process.returncode}:\n"
                                     f"{server.output()}")
            try:
                if http.get("/health").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"agentos {command} did not start:\n{server.output()}")
            time.sleep(0.05)


@pytest.fixture
def server(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Server]:
    """``agentos serve`` on a fresh migrated database, and an admin's token for it
    (in AGENTOS_TOKEN, so this process's SDK clients use it)."""
    running = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=database_url))
    try:
        running.token = admin_token(running.url)
        monkeypatch.setenv("AGENTOS_TOKEN", running.token)
        yield running
    finally:
        running.stop()


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    """The CLI, pointed at ``server`` through AGENTOS_URL, as its admin (AGENTOS_TOKEN)."""
    return Cli(tmp_path, environment(AGENTOS_URL=server.url, AGENTOS_TOKEN=server.token,
                                     XDG_CONFIG_HOME=str(tmp_path / "config")))
