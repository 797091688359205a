"""The first hour of a new user, driven through the CLI from empty directories: the
demo refusing a busy port before it creates anything, then the demo, the README's own
agent imported (with the server's warning), its task handed over by the demo's worker,
which cannot import it, to a worker that can, and --wait printing its output."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from tests.acceptance.conftest import AGENTOS, Cli, environment, start

HANDLER = '''async def handle(ctx, input):
    ctx.log.info("counting %d characters", len(input["text"]))
    return {"words": len(input["text"].split())}
'''
DEFINITION = '''name: wordcount
version: 1.0.0
description: Counts the words of a text
handler:
  type: python
  target: wordcount:handle      # module:callable, imported from PYTHONPATH
limits:
  timeout_s: 30
  max_retries: 2
'''
TEXT = '{"text": "to be or not to be"}'
WAIT_S = 60.0  # seconds a step of the hour may take on a loaded machine


def test_the_first_hour(tmp_path: Path) -> None:
    demo_dir, mine, config = tmp_path / "demo", tmp_path / "myagents", tmp_path / "config"
    demo_dir.mkdir()
    mine.mkdir()
    fresh = environment(XDG_CONFIG_HOME=str(config))
    del fresh["AGENTOS_ADMIN_PASSWORD"]  # as a new user: the password is printed once

    # a busy port: the demo stops before it creates a database, let alone a user
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = Cli(demo_dir, fresh)("demo", "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "cannot listen on" in busy.stderr
    assert list(demo_dir.iterdir()) == []

    demo = start("demo", demo_dir, fresh)
    worker: subprocess.Popen[str] | None = None
    try:
        [password] = re.findall(r"admin / (\S+)  \(created now", demo.output())
        cli = Cli(mine, {**fresh, "AGENTOS_URL": demo.url})
        assert "logged in" in cli.ok("login", "--password-stdin", input=password + "\n")

        (mine / "wordcount.py").write_text(HANDLER)
        (mine / "wordcount.yaml").write_text(DEFINITION)
        imported = cli("agents", "import", "wordcount.yaml", "--publish")
        assert imported.stdout == "imported wordcount 1.0.0 (published) from wordcount.yaml\n"
        assert imported.stderr.startswith("warning: wordcount 1.0.0: this server cannot load "
                                          "the handler (ModuleNotFoundError")

        # the demo's own worker cannot import it: it hands the task back, unspent
        first = json.loads(cli.ok("tasks", "submit", "wordcount", "--input", TEXT, "--json"))
        deadline = time.monotonic() + WAIT_S
        while not json.loads(cli.ok("tasks", "show", first["id"], "--json")).get("attempts"):
            assert time.monotonic() < deadline, "the demo's worker never claimed the task"
            time.sleep(0.2)
        shown = json.loads(cli.ok("tasks", "show", first["id"], "--json"))
        assert shown["status"] == "pending"
        assert shown["attempts"][0]["error"]["type"] == "handler_unloadable"
        [serving] = json.loads(cli.ok("workers", "--json"))
        assert list(serving["unloadable"]) == ["wordcount"]

        # a worker that has the module, as the README starts it, runs it
        database = f"sqlite:///{demo_dir / 'agentos.db'}"
        worker = subprocess.Popen(
            [*AGENTOS, "worker", "--agents", "wordcount"], cwd=mine, text=True,
            env={**fresh, "AGENTOS_DATABASE_URL": database, "PYTHONPATH": str(mine),
                 "PATH": os.environ["PATH"]},
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert worker.stdout is not None
        assert worker.stdout.readline() == (
            f"worker on {database}: agents wordcount, 16 tasks at once\n")
        waited = cli("tasks", "wait", first["id"], "--timeout", str(WAIT_S))
        assert (waited.returncode, json.loads(waited.stdout)) == (0, {"words": 6}), waited.stderr
        again = cli("tasks", "submit", "wordcount", "--input", TEXT, "--wait",
                    "--timeout", str(WAIT_S))
        assert (again.returncode, json.loads(again.stdout)) == (0, {"words": 6}), again.stderr
        logged = cli.ok("tasks", "logs", first["id"])
        assert "counting 18 characters" in logged
    finally:
        if worker is not None:
            worker.terminate()
            worker.communicate(timeout=30)  # reaped, its pipe read to the end and closed
        demo.stop()
