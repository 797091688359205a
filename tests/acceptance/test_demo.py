"""``agentos demo``: from an empty directory to a server with the starter agents."""

from __future__ import annotations

from pathlib import Path

from agentos import templates
from agentos.sdk import Client
from tests.acceptance.conftest import environment, start


def test_demo_serves_the_published_templates_and_runs_again(tmp_path: Path) -> None:
    for run, loaded in ((1, "(published)"), (2, "(already published)")):
        # Given an empty directory (then the database the first run left there)
        demo = start("demo", tmp_path, environment())
        try:
            banner = demo.stdout.read_text()
            with Client(demo.url) as api:
                agents = api.list_agents()["agents"]
        finally:
            demo.stop()
        assert f"{demo.url}/" in banner and f"{demo.url}/docs" in banner, banner
        for name in templates.names():
            assert f"{name} 1.0.0 {loaded}" in banner, f"run {run}: {banner}"
        assert [(a["name"], a["status"]) for a in agents] == [
            (name, "published") for name in templates.names()]
    assert (tmp_path / "agentos.db").exists()
