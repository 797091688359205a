"""The examples end to end: ``run_example(NAME)`` starts the example's simulators, a real
``agentos serve`` on the test's database (both backends) and ``agentos worker``
processes, installs the example through the SDK and hands back what a test needs to
drive its scenario and check the outcome. Everything stops when the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentos import examples
from agentos.sdk import Client
from tests.acceptance.conftest import AGENTOS, Server, admin_token, environment, start
from tests.waiting import eventually

WORKER_STOP_TIMEOUT = 15.0  # seconds a worker gets to drain after SIGTERM


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WORKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Running:
    """An example with its server, workers and simulators, installed."""

    example: examples.Example
    sims: examples.Simulators
    server: Server
    client: Client
    env: dict[str, str]
    cwd: Path
    installed: list[str]
    workers: list[Worker] = field(default_factory=list)

    def start_worker(self, *args: str) -> Worker:
        n = len(self.workers)
        log = self.cwd / f"worker-{n}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*AGENTOS, "worker", "--id", f"{self.example.name}-{n}", "--poll", "0.2",
                 *args], cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        worker = Worker(process, log)
        self.workers.append(worker)
        return worker

    def run(self) -> dict[str, Any]:
        """The example's scenario, as ``agentos demo --example`` runs it."""
        return self.example.run(self.client, self.sims)

    def logs(self) -> str:
        return "\n".join([self.server.output(), *(w.output() for w in self.workers)])


@pytest.fixture
def run_example(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """``run_example(NAME, workers=1, worker_args=(...))``: the example, running."""
    started: list[Running] = []

    def run(name: str, workers: int = 1, worker_args: tuple[str, ...] = ()) -> Running:
        example = examples.load(name)
        sims = example.simulators()
        env = environment(AGENTOS_DATABASE_URL=database_url,
                          PYTHONPATH=os.pathsep.join(filter(None, [
                              examples.importable(), os.environ.get("PYTHONPATH")])),
                          **example.env, **sims.env)
        try:
            server = start("serve", tmp_path, env)
        except BaseException:
            sims.stop()
            raise
        client = Client(server.url, token=admin_token(server.url))
        running = Running(example, sims, server, client, env, tmp_path, [])
        started.append(running)
        running.installed = example.install(client, sims)
        for _ in range(workers):
            running.start_worker("--concurrency", "8", *worker_args)
        return running

    yield run
    for running in started:
        for worker in running.workers:
            worker.stop()
        running.client.close()
        running.server.stop()
        running.sims.stop()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0,
             running: Running | None = None) -> Any:
    """Poll ``check`` until it returns something true (``eventually``); fail with the
    processes' logs when ``timeout`` seconds pass first."""
    try:
        return eventually(check, timeout, what, interval=0.2)
    except AssertionError as exc:
        logs = running.logs()[-6000:] if running else ""
        raise AssertionError(f"{exc}\n{logs}") from None
