"""``agentos tasks explain`` against a real server: the gate that holds a task, as a
table and as JSON; an unknown task is one line and exit code 2."""

from __future__ import annotations

import json

from agentos.sdk import Client
from tests.acceptance.conftest import Cli, Server


def test_tasks_explain(cli: Cli, server: Server) -> None:
    with Client(server.url) as api:
        api.create_agent({"name": "echo", "version": "1.0.0",
                          "handler": {"type": "python", "target": "tests.handlers:echo"}})
        api.publish("echo", "1.0.0")
        task = api.submit("echo", {"x": 1})
    shown = cli.ok("tasks", "explain", task.id).splitlines()
    assert shown[0] == (f"{task.id} (echo 1.0.0) is pending: no live worker serves agent "
                        "echo; start one: agentos worker --agents echo")
    assert shown[2].split() == ["GATE", "HOLDS", "UNTIL", "WHY"]
    assert shown[3].split()[:3] == ["no_worker", "yes", "-"]
    assert shown[4].split()[:2] == ["queue", "no"]
    found = json.loads(cli.ok("tasks", "explain", task.id, "--json"))
    assert found["gate"] == "no_worker" and found["task_id"] == task.id
    bad = cli("tasks", "explain", "nope")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: no task nope"


def test_events_explain(cli: Cli, server: Server) -> None:
    with Client(server.url) as api:
        api.create_agent({"name": "pager", "version": "1.0.0",
                          "handler": {"type": "python", "target": "tests.handlers:echo"},
                          "triggers": [{"event": "alert.*",
                                        "filter": {"severity": ["high", "critical"]}}]})
        api.publish("pager", "1.0.0")
        api.create_agent({"name": "quiet", "version": "1.0.0",
                          "handler": {"type": "python", "target": "tests.handlers:echo"}})
        api.publish("quiet", "1.0.0")
    shown = cli.ok("events", "explain", "alert.cpu", "--payload", '{"severity": "low"}'
                   ).splitlines()
    assert shown[0] == "alert.cpu would route to no agent"
    assert shown[2].split() == ["AGENT", "VERSION", "TRIGGER", "EVENT", "RESULT"]
    assert shown[3].split()[:4] == ["pager", "1.0.0", "0", "alert.*"]
    assert shown[3].endswith("payload severity='low' is not one of ['high', 'critical']")
    assert shown[4].split() == ["quiet", "1.0.0", "-", "-", "no", "triggers"]
    found = json.loads(cli.ok("events", "explain", "alert.cpu", "--payload",
                              '{"severity": "high"}', "--json"))
    assert found["routed_to"] == ["pager"]
    assert found["agents"][0]["triggers"][0]["task"]["input"] == {"severity": "high"}
    bad = cli("events", "explain", "alert..cpu")
    assert bad.returncode == 2 and bad.stderr.startswith("error: type: ")
    with Client(server.url) as api:
        assert api.list_events(type="alert.*").events == []  # nothing was emitted
