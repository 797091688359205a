"""``agentos projections`` against a real server that keeps them live: list, show, and a
rebuild followed by its progress bar to the same state."""

from __future__ import annotations

import json
import time

from agentos.sdk import Client
from tests.acceptance.conftest import Cli, Server

CONVERGE_S = 10.0  # seconds for the server's projection loops to fold a few events


def test_list_show_and_rebuild(cli: Cli, server: Server) -> None:
    with Client(server.url) as api:
        api.emit_batch([{"type": f"task.{kind}", "source": "queue",
                         "payload": {"task_id": f"t{n}", "agent": "echo"}}
                        for n in range(40) for kind in ("created", "started", "succeeded")])
        deadline = time.monotonic() + CONVERGE_S
        while api.get_projection("task_stats")["status"] != "live" or \
                api.get_projection("agent_activity")["status"] != "live":
            assert time.monotonic() < deadline, "the server's projections did not catch up"
            time.sleep(0.05)
        live = api.projection_state("agent_activity")
    assert live["items"]["echo"]["tasks"]["succeeded"] == 40
    table = cli.ok("projections", "list").splitlines()
    assert table[0].split()[:3] == ["NAME", "STATUS", "CURSOR"]
    assert [line.split()[:2] for line in table[1:]] == [["agent_activity", "live"],
                                                        ["task_stats", "live"]]
    shown = cli.ok("projections", "show", "task_stats", "--key", "total")
    assert "status  live" in shown and '"succeeded": 40' in shown

    done = cli("projections", "rebuild", "agent_activity")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "agent_activity: rebuilt up to 120, live"
    assert "rebuilding agent_activity" in done.stderr  # the progress bar
    shown = json.loads(cli.ok("projections", "show", "agent_activity", "--json"))
    assert shown["state"] == live and shown["applied"] == 120
    again = json.loads(cli.ok("projections", "rebuild", "agent_activity", "--json"))
    assert (again["name"], again["status"], again["rebuild"]) == ("agent_activity", "live", None)
    assert again["cursor_seq"] >= 120

    for args in (("rebuild", "ghost"), ("show", "ghost")):
        bad = cli("projections", *args)
        assert bad.returncode == 2 and bad.stderr.startswith("error: no projection named")
