"""``agentos tasks`` and ``agentos workers`` against a real server, then a real worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentos.sdk import Client
from tests.acceptance.conftest import AGENTOS, Cli, Server

ROOT = Path(__file__).resolve().parents[2]


def test_submit_list_show_cancel_retry_and_a_worker(cli: Cli, server: Server,
                                                    database_url: str) -> None:
    with Client(server.url) as api:
        api.create_agent({"name": "echo", "version": "1.0.0",
                          "handler": {"type": "python", "target": "tests.handlers:echo"}})
        api.publish("echo", "1.0.0")
    out = cli.ok("tasks", "submit", "echo", "--input", '{"x": 1}', "--priority", "9", "--json")
    task = json.loads(out)
    assert (task["agent"], task["priority"], task["status"]) == ("echo", 9, "pending")
    other = json.loads(cli.ok("tasks", "submit", "echo", "--json"))
    assert cli.ok("tasks", "cancel", other["id"]).strip() == f"{other['id']}: cancelled"
    assert cli.ok("tasks", "retry", other["id"]).strip() == f"{other['id']}: pending"
    listed = cli.ok("tasks", "list").splitlines()
    assert listed[0].split()[:3] == ["ID", "AGENT", "STATUS"] and len(listed) == 3
    bad = cli("tasks", "submit", "echo", "--input", "[1]")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    bad = cli("tasks", "submit", "ghost")
    assert bad.returncode == 2 and "ghost" in bad.stderr
    typed = json.loads(cli.ok("tasks", "submit", "echo", "--type", "analyze", "--metadata",
                              '{"customer": "acme"}', "--json"))
    assert (typed["type"], typed["metadata"]) == ("analyze", {"customer": "acme"})
    assert [t["id"] for t in json.loads(cli.ok("tasks", "list", "--type", "analyze",
                                               "--json"))] == [typed["id"]]
    assert "acme" in cli.ok("tasks", "show", typed["id"])
    bad = cli("tasks", "submit", "echo", "--metadata", "[1]")
    assert (bad.returncode, bad.stderr) == (2, "error: --metadata must be a JSON object, like "
                                               "'{\"severity\": \"high\"}'\n")

    # a real worker process drains them, then they show as succeeded with their attempt
    env = {**os.environ, "AGENTOS_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT),
           "AGENTOS_LOG_LEVEL": "warning"}
    done = subprocess.run([sys.executable, "-m", "agentos.cli.main", "worker", "--burst",
                           "--id", "accept-1"], cwd=ROOT, env=env, timeout=60)
    assert done.returncode == 0
    shown = cli.ok("tasks", "show", task["id"])
    assert "succeeded" in shown and "accept-1" in shown
    assert json.loads(cli.ok("tasks", "show", task["id"], "--json"))["output"] == {
        "echo": {"x": 1}, "attempt": 1}
    workers = json.loads(cli.ok("workers", "--json"))
    assert workers == []  # a burst worker deregisters when it is done


def test_submit_wait_prints_the_output_or_fails_with_the_task(
        cli: Cli, server: Server, database_url: str) -> None:
    with Client(server.url) as api:
        for name, target in (("echo", "echo"), ("broken", "broken")):
            api.create_agent({"name": name, "version": "1.0.0", "limits": {"max_retries": 0},
                              "handler": {"type": "python", "target": f"tests.handlers:{target}"}})
            api.publish(name, "1.0.0")
        api.create_agent({"name": "idle", "version": "1.0.0",
                          "handler": {"type": "python", "target": "tests.handlers:echo"}})
        api.publish("idle", "1.0.0")
    env = {**os.environ, "AGENTOS_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT),
           "AGENTOS_LOG_LEVEL": "warning"}
    worker = subprocess.Popen([sys.executable, "-m", "agentos.cli.main", "worker", "--agents",
                               "echo,broken", "--poll", "0.1"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL)
    try:
        done = cli("tasks", "submit", "echo", "--input", '{"x": 2}', "--wait", "--timeout", "50")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"echo": {"x": 2}, "attempt": 1}
        failed = cli("tasks", "submit", "broken", "--wait", "--timeout", "50")
        assert failed.returncode == 2 and failed.stdout == ""
        task_id = failed.stderr.split()[1]  # "submitted ID to broken 1.0.0; waiting"
        assert failed.stderr.splitlines()[-1] == (
            f"error: task {task_id} failed: bad input (agentos tasks show {task_id})")
        whole = json.loads(cli("tasks", "wait", task_id, "--json").stdout)
        assert whole["status"] == "failed" and whole["attempts"][0]["outcome"] == "failed"
        shown = cli.ok("tasks", "show", task_id)
        assert "attempt 1 traceback:" in shown
        assert "Traceback (most recent call last)" in shown and "HandlerError: bad input" in shown
    finally:
        worker.terminate()
        worker.wait(30)
    idle = json.loads(cli.ok("tasks", "submit", "idle", "--json"))
    late = cli("tasks", "wait", idle["id"], "--timeout", "0.5")
    assert (late.returncode, late.stderr) == (
        2, f"error: task {idle['id']} is still pending after 0.5s\n")
    unknown = cli("tasks", "wait", "nope")
    assert (unknown.returncode, unknown.stderr) == (2, "error: no task nope\n")
    cancelled = json.loads(cli.ok("tasks", "cancel", idle["id"], "--json"))
    assert cancelled["status"] == "cancelled"
    assert json.loads(cli.ok("tasks", "retry", idle["id"], "--json"))["status"] == "pending"


def test_list_pages_newest_first_and_watch_prints_what_changes(cli: Cli, server: Server
                                                               ) -> None:
    with Client(server.url) as api:
        api.create_agent({"name": "echo", "version": "1.0.0",
                          "handler": {"type": "python", "target": "tests.handlers:echo"}})
        api.publish("echo", "1.0.0")
        ids = [api.submit("echo", {"n": n}).id for n in range(3)]
    first = cli("tasks", "list", "--limit", "2")
    assert first.returncode == 0
    rows = first.stdout.splitlines()[1:]
    assert [r.split()[0] for r in rows] == [ids[2], ids[1]]  # newest first
    [hint] = first.stderr.splitlines()
    assert hint.startswith("more follow: agentos tasks list --limit 2 --before-seq ")
    rest = cli(*hint.removeprefix("more follow: agentos ").split())
    assert [r.split()[0] for r in rest.stdout.splitlines()[1:]] == [ids[0]]
    assert rest.stderr == ""  # the last page says nothing more

    watcher = subprocess.Popen([*AGENTOS, "tasks", "list", "--watch"], cwd=cli.cwd,
                               env=cli.env, stdout=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout is not None
        table = [watcher.stdout.readline() for _ in range(4)]  # the header and 3 tasks
        assert [line.split()[0] for line in table[1:]] == ids[::-1]
        with Client(server.url) as api:
            new = api.submit("echo", {"n": 3}).id
        assert watcher.stdout.readline() == "\n"  # the list again, once it changed
        assert watcher.stdout.readline().split()[0] == "ID"
        assert watcher.stdout.readline().split()[0] == new
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=30) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        if watcher.stdout is not None:
            watcher.stdout.close()


def test_list_by_time_window(cli: Cli, server: Server) -> None:
    """--since and --until keep the tasks submitted in the window (the SDK's since and
    until too); a time without a zone is one line and exit 2."""
    with Client(server.url) as api:
        api.create_agent({"name": "echo", "version": "1.0.0",
                          "handler": {"type": "python", "target": "tests.handlers:echo"}})
        api.publish("echo", "1.0.0")
        made = []
        for n in range(4):
            made.append(api.submit("echo", {"n": n}))
            time.sleep(0.02)  # distinct creation times at millisecond precision
        middle = made[2].created_at
        assert [t.id for t in api.list_tasks(since=middle).tasks] == [t.id for t in made[2:]]
        assert [t.id for t in api.list_tasks(until=middle.isoformat()).tasks] == [
            t.id for t in made[:2]]
    since = json.loads(cli.ok("tasks", "list", "--since", middle.isoformat(), "--json"))
    assert [t["id"] for t in since] == [made[3].id, made[2].id]  # newest first
    until = json.loads(cli.ok("tasks", "list", "--until", middle.isoformat(), "--json"))
    assert [t["id"] for t in until] == [made[1].id, made[0].id]
    naive = cli("tasks", "list", "--since", "2026-01-31T12:00:00")
    assert naive.returncode == 2 and len(naive.stderr.strip().splitlines()) == 1
