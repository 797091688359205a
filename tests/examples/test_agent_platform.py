"""agent_platform (seed 001) end to end: a real server and worker, both backends; then
the installation backed up while it serves and restored into a fresh database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agentos import errors
from agentos.sdk import Client
from agentos.store import backup as store_backup
from examples.agent_platform.handlers import slug
from examples.agent_platform.scenario import EDITOR, FIRST, SECOND
from tests.acceptance.conftest import Cli, environment, start
from tests.examples.conftest import Running

# tables only requests and workers write (not the server's own loops: metrics, cursors)
STILL = ("agent_versions", "workflow_versions", "workflow_runs", "workflow_steps",
         "approvals", "knowledge_documents", "users", "credentials", "tasks", "llm_calls")


def test_agent_platform(run_example: Callable[..., Running], database_url: str,
                        empty_database_url: str, tmp_path: Path) -> None:
    example = run_example("agent_platform")
    outcome = example.run()
    api = example.client
    first, second = outcome["ids"]["first"], outcome["ids"]["second"]

    # the first start loaded ten default agents (and the server its admin)
    published = api.list_agents(status="published", limit=100).agents
    assert len(published) == 10
    assert [u.username for u in api.list_users().users] == ["admin", "editor"]

    # research -> write -> review -> approval -> publish: approved, then rejected
    assert first["steps"] == {"research": "succeeded", "write": "succeeded",
                              "review": "succeeded", "approve": "succeeded",
                              "publish": "succeeded"}
    assert second["status"] == "succeeded" and second["steps"]["publish"] == "skipped"
    assert outcome["article"] == {
        "first": f"run succeeded, approved by editor (review score 1.0), published as "
               f"articles/{slug(FIRST)}",
        "second": "run succeeded, rejected by editor (review score 1.0), publish skipped"}
    decided = {a["run_id"]: a for a in api.list_approvals()["approvals"]}
    assert decided[first["run"]]["status"] == "approved"
    assert decided[second["run"]]["status"] == "rejected"
    assert {a["decided_by"] for a in decided.values()} == {"user:editor"}
    assert api.run_artifact(first["run"], "article")["topic"] == FIRST
    assert api.run_artifacts(second["run"]) == []

    # agents learn into the knowledge base; later tasks find it by search
    assert first["applied_lessons"] == []
    assert second["applied_lessons"] == [first["lesson"]]
    assert f"research/{slug(FIRST)}" in second["sources"]
    assert f"articles/{slug(FIRST)}" in second["sources"]
    assert api.get_document("articles", slug(FIRST))["metadata"]["score"] == 1.0
    with pytest.raises(errors.NotFound):
        api.get_document("articles", slug(SECOND))
    assert outcome["learned"] == {"handbook": 4, "research": 2, "lessons": 2, "articles": 1}
    learned = api.search_knowledge("disk", namespace="lessons")["documents"]
    assert sorted(f"lessons/{d['key']}" for d in learned) == sorted(
        [first["lesson"], second["lesson"]])
    assert outcome["summary"] == "document.uploaded -> summarizer: succeeded"

    # sessions (logins and API keys) and metrics
    assert outcome["logins"] == ["admin", "editor"]
    assert outcome["api_keys"] == {"ci-pipeline": "used"}  # it started both runs
    starts = api.audit(action="workflow_runs.start")["entries"]
    assert len(starts) == 2 and {e["actor"].split(":")[0] for e in starts} == {"key"}
    assert outcome["articles_published"] == 1
    for agent in ("researcher", "writer", "reviewer"):
        summary = api.agent_summary(agent, window="1h")
        assert summary["tasks"] == {"succeeded": 2}, (agent, summary)
        assert summary["tokens"]["total"] == 2 * 17 and summary["success_rate"] == 1.0
    assert outcome["pool"].startswith("size ")

    # backup while it serves; restore into a fresh database; the same rows come back
    backup = tmp_path / "platform.backup"
    written = json.loads(Cli(tmp_path, environment(AGENTOS_DATABASE_URL=database_url)).ok(
        "db", "backup", str(backup), "--json"))
    for worker in example.workers:
        worker.stop()
    example.server.stop()
    source = store_backup.contents(database_url).counts
    restore = Cli(tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    restored = json.loads(restore.ok("db", "restore", str(backup), "--json"))
    assert restored["tables"] == written["tables"]
    assert store_backup.contents(empty_database_url).counts == written["tables"]
    for table in STILL:
        assert restored["tables"][table] == source[table], table
    assert restored["tables"]["knowledge_documents"] == 4 + 2 + 2 + 1  # handbook, research,
    assert restored["tables"]["agent_versions"] == 10  # lessons, article
    copy = start("serve", tmp_path, environment(AGENTOS_DATABASE_URL=empty_database_url))
    try:
        with Client(copy.url) as editor:
            editor.login(*EDITOR)
            runs = editor.list_runs(workflow="publish-article")["runs"]
            assert sorted(r["id"] for r in runs) == sorted([first["run"], second["run"]])
            found = editor.search_knowledge("disk", namespace="lessons")["documents"]
            assert len(found) == 2
    finally:
        copy.stop()
