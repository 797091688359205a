"""``agentos demo``: from an empty directory to a server with the starter agents."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from agentos import templates
from agentos.sdk import Client
from tests.acceptance.conftest import ADMIN_PASSWORD, environment, start
from tests.waiting import eventually


def test_demo_serves_the_published_templates_and_runs_again(tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    elsewhere = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                if Path(p) != venv_bin)
    for run, loaded, path in ((1, "(published)", elsewhere),
                              (2, "(already published)", f"{venv_bin}{os.pathsep}{elsewhere}")):
        # Given an empty directory (then the database the first run left there); the
        # first time with the virtualenv's agentos not on PATH (as `make run` leaves it)
        demo = start("demo", tmp_path, environment(PATH=path))
        try:
            banner = demo.stdout.read_text()
            with Client(demo.url) as api:
                api.login("admin", ADMIN_PASSWORD)
                agents = api.list_agents().agents
        finally:
            demo.stop()
        assert f"{demo.url}/" in banner and f"{demo.url}/docs" in banner, banner
        # the commands it suggests work in another terminal: there, activate first
        activate = f"source {venv_bin / 'activate'}"
        assert (activate in banner) == (run == 1), banner
        for name in templates.names():
            assert f"{name} 1.0.0 {loaded}" in banner, f"run {run}: {banner}"
        assert [(a.name, a.status) for a in agents] == [
            (name, "published") for name in templates.names()]
    assert (tmp_path / "agentos.db").exists()


def test_demo_agents_do_real_work_on_an_alert(tmp_path: Path) -> None:
    demo = start("demo", tmp_path, environment())
    try:
        with Client(demo.url) as api:
            api.login("admin", ADMIN_PASSWORD)
            # When a high-severity alert is emitted
            alert = api.emit("alert.cpu", {"severity": "high", "device_id": "pixel-7"})
            # Then qa-manager plans suites and executors run them, all in the demo's worker
            def three_done() -> list[Any]:
                done = api.list_tasks(status="succeeded").tasks
                return done if len(done) >= 3 else []

            done = eventually(three_done, 30, "three of the demo's tasks to succeed",
                              interval=0.2)
            tree = api.correlation(alert.correlation_id)
            results = api.list_events(type="qa.run.completed").events
    finally:
        demo.stop()
    assert sorted(t.agent for t in done) == ["executor", "executor", "qa-manager"]
    assert {e.payload["suite"] for e in results} == {"smoke", "regression"}
    manager = tree[0]["children"][0]
    assert (manager["kind"], manager["agent"], manager["status"]) == (
        "task", "qa-manager", "succeeded")
