"""``agentos tasks logs`` against a real server and a real worker process: ``--follow``
prints a running task's first line before it ends (it came with a heartbeat) and exits
once it has ended; an unknown task is one line and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agentos.sdk import Client
from tests.acceptance.conftest import AGENTOS, Cli, Server

ROOT = Path(__file__).resolve().parents[2]


def test_tasks_logs_follow(cli: Cli, server: Server, database_url: str) -> None:
    with Client(server.url) as api:
        api.create_agent({"name": "slow", "version": "1.0.0",
                          "handler": {"type": "python", "target": "tests.handlers:chatty_slow"}})
        api.publish("slow", "1.0.0")
        # it ends only when this sleep does: long enough that the first line, sent
        # with a heartbeat, is seen while it runs despite a stall or two (and the
        # 9 s lease outlasts a stalled worker's missed beats)
        task = api.submit("slow", {"seconds": 15})
    follower = subprocess.Popen([*AGENTOS, "tasks", "logs", task.id, "--follow"],
                                cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, text=True)
    env = {**os.environ, "AGENTOS_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT),
           "AGENTOS_LOG_LEVEL": "warning"}
    worker = subprocess.Popen([sys.executable, "-m", "agentos.cli.main", "worker", "--burst",
                               "--lease", "9"], cwd=ROOT, env=env)  # beats every 3 s
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()
        assert first.split()[1:] == ["#1", "info", "started"], first
        with Client(server.url) as api:  # seen while it still ran: followed live
            assert api.get_task(task.id).status == "running"
        second = follower.stdout.readline()
        assert second.split()[1:] == ["#1", "info", "finished"], second
        assert follower.wait(timeout=30) == 0  # it ended, so did the follower
        assert worker.wait(timeout=60) == 0
    finally:
        for process in (follower, worker):
            if process.poll() is None:
                process.kill()
                process.wait()
        if follower.stdout is not None:
            follower.stdout.close()
    out = cli.ok("tasks", "logs", task.id, "--json").splitlines()
    assert [json.loads(x)["message"] for x in out] == ["started", "finished"]
    assert cli.ok("tasks", "logs", task.id, "--attempt", "2") == ""
    bad = cli("tasks", "logs", "nope")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: no task nope"
