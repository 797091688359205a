"""Workflow runs survive SIGKILL of any process at any moment.

50 runs of a mixed workflow (an agent step, a fan-out of three, an approval that its
timeout approves, a wait for an event, a sub-workflow, a conditional last step; one
run in five fails on purpose) while the server (engine, timer, reaper) and two
workers are SIGKILLed at random moments and started again. Then: every run ends as
expected, each step reached its end once (one transition and one event), every
task of a step has exactly one accepted completion, and no step of a succeeded run
was skipped or left behind.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agentos import agent_spec, events, registry
from agentos.store import open_store
from agentos.store.tables import events as event_table
from agentos.store.tables import (
    task_attempts,
    tasks,
    workflow_runs,
    workflow_step_tasks,
    workflow_steps,
    workflow_transitions,
)
from agentos.workflows import definitions, runs
from tests.acceptance.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
RUNS = 50
KILL_FOR = 20.0  # seconds of kills
SETTLE = 120.0  # seconds the runs then get to end

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHILD = """
name: crash-child
version: 1.0.0
steps:
  - id: a
    agent: crash-step
    input: {n: "{{ input.n }}", log: "{{ input.log }}"}
  - id: b
    agent: crash-step
    input: {n: "{{ steps.a.output.n }}", log: "{{ input.log }}"}
    depends_on: [a]
"""

MIX = """
name: crash-mix
version: 1.0.0
steps:
  - id: first
    agent: crash-step
    input: {n: "{{ input.n }}", log: "{{ input.log }}"}
  - id: fan
    agent: crash-step
    for_each: "{{ [1, 2, 3] }}"
    max_parallel: 2
    input: {n: "{{ item }}", fail: "{{ input.fail and item == 2 }}", log: "{{ input.log }}"}
    depends_on: [first]
  - id: gate
    type: approval
    timeout_s: 0.5
    on_timeout: approve
    depends_on: [first]
  - id: ready
    type: wait_event
    event: crash.go
    filter: {key: "{{ input.key }}"}
    depends_on: [first]
  - id: child
    type: workflow
    workflow: crash-child
    input: {n: "{{ steps.first.output.n }}", log: "{{ input.log }}"}
    depends_on: [gate, ready]
  - id: last
    agent: crash-step
    when: "{{ steps.gate.output.approved }}"
    input: {n: "{{ steps.child.output.b.n + steps.fan.output | length }}",
            log: "{{ input.log }}"}
    depends_on: [fan, child]
"""


class Fleet:
    """The server and workers, each killed and started again at will."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")},
                    "AGENTOS_DATABASE_URL": url, "AGENTOS_LOG_LEVEL": "warning",
                    "AGENTOS_RUN_SCHEDULER": "false", "AGENTOS_RUN_PROJECTIONS": "false",
                    "AGENTOS_ADMIN_PASSWORD": "crash-test-password", "PYTHONPATH": str(ROOT)}
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: Counter[str] = Counter()

    def start(self, name: str) -> None:
        if name == "server":
            args = ["serve", "--port", str(free_port())]
        else:
            args = ["worker", "--concurrency", "8", "--lease", "2", "--poll", "0.2"]
        with (self.tmp / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "agentos.cli.main",
                                                 *args], cwd=ROOT, env=self.env,
                                                stdout=out, stderr=out)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()
        self.kills[name] += 1
        self.start(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()


async def test_runs_survive_kills(database_url: str, tmp_path: Path) -> None:
    store = open_store(database_url)
    await registry.create(store, agent_spec.from_object(
        {"name": "crash-step", "version": "1.0.0",
         "handler": {"type": "python", "target": "tests.handlers:crash_step"},
         "limits": {"max_retries": 20, "backoff": {"initial_s": 0.05, "max_s": 0.2}}}),
        publish=True)
    await definitions.import_yaml(store, CHILD + "---\n" + MIX, publish=True)
    log = tmp_path / "executions.log"
    fleet = Fleet(database_url, tmp_path)
    rng = random.Random(16)
    try:
        for name in ("server", "worker-1", "worker-2"):
            fleet.start(name)
        expected: dict[str, str] = {}
        for i in range(RUNS):
            run, _ = await runs.start(store, runs.StartIn("crash-mix", input={
                "n": i, "key": f"k{i}", "fail": i % 5 == 0, "log": str(log)}), by="test")
            expected[run["id"]] = "failed" if i % 5 == 0 else "succeeded"
        # Given runs under way, kill a random process every 0.3-1.5 s; meanwhile send
        # each run's event (again and again: only one sent after its wait began counts)
        keys = {f"k{i}" for i in range(RUNS)}
        deadline = time.monotonic() + KILL_FOR
        running_at_kill: list[int] = []
        while time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            async with store.read() as conn:
                running_at_kill.append((await conn.execute(select(func.count()).where(
                    workflow_runs.c.status == "running"))).scalar_one())
            kills = sum(fleet.kills.values())
            fleet.kill("server" if kills % 3 == 1 else rng.choice(["worker-1", "worker-2"]))
            await events.append(store, [events.EventIn(type="crash.go", payload={"key": k})
                                        for k in sorted(keys)])
        # Then let them end, still sending the events the waits need
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            async with store.read() as conn:
                ended = dict((await conn.execute(select(workflow_runs.c.id,
                                                        workflow_runs.c.status).where(
                    workflow_runs.c.parent_run_id.is_(None)))).all())
            if all(ended[r] != "running" for r in expected):
                break
            await events.append(store, [events.EventIn(type="crash.go", payload={"key": k})
                                        for k in sorted(keys)])
            await asyncio.sleep(1.0)
    finally:
        fleet.stop()
    assert fleet.kills["server"] >= 2 and fleet.kills["worker-1"] + fleet.kills["worker-2"] >= 4
    # the kills landed while runs were under way
    assert sum(1 for n in running_at_kill if n > 0) >= 6, running_at_kill
    # every run ended as expected
    assert {r: ended[r] for r in expected} == expected
    async with store.read() as conn:
        # each step reached its end once: one transition to its final state, one event
        finals = Counter((r.run_id, r.step) for r in (await conn.execute(
            select(workflow_transitions.c.run_id, workflow_transitions.c.step).where(
                workflow_transitions.c.step.is_not(None),
                workflow_transitions.c.to_status.in_(("succeeded", "failed", "skipped")))))
            .all())
        assert finals and max(finals.values()) == 1
        step_events = Counter((e.run_id, e.payload["step"]) for e in map(
            events.Event.from_row, (await conn.execute(select(event_table).where(
                event_table.c.type == "workflow.step.succeeded"))).all()))
        assert step_events and max(step_events.values()) == 1
        # no step of a succeeded run skipped or left behind
        states = (await conn.execute(select(workflow_steps.c.run_id, workflow_steps.c.step,
                                            workflow_steps.c.status))).all()
        succeeded = {r for r, s in expected.items() if s == "succeeded"}
        assert all(s.status == "succeeded" for s in states if s.run_id in succeeded)
        assert sum(1 for s in states if s.run_id in succeeded) == len(succeeded) * 6
        # every task of every step: exactly one accepted completion when it succeeded
        accepted = dict((await conn.execute(
            select(task_attempts.c.task_id, func.count()).where(
                task_attempts.c.outcome == "succeeded").group_by(task_attempts.c.task_id)))
            .all())
        linked = (await conn.execute(select(workflow_step_tasks.c.task_id, tasks.c.status)
                                     .join(tasks, tasks.c.id == workflow_step_tasks.c.task_id))
                  ).all()
        assert len(linked) >= len(succeeded) * 7  # first, 3 fan-out, 2 in the child, last
        for task_id, status in linked:
            assert accepted.get(task_id, 0) == (1 if status == "succeeded" else 0), task_id
    await store.close()
