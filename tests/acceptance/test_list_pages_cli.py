"""Every paged list command says, on stderr, the command that shows the next page: the
same filters and page size with its cursor option; running it gives the next items,
and the last page says nothing (``agentos tasks list`` is in test_tasks_cli)."""

from __future__ import annotations

import json
import shlex

from agentos.sdk import Client
from tests.acceptance.conftest import Cli, Server

GATE = {"name": "gate", "version": "1.0.0",
        "steps": [{"id": "ok", "type": "approval", "title": "go?"}]}


def pages(cli: Cli, *args: str) -> list[list[dict[str, object]]]:
    """Each page of ``agentos ARGS --json``, following the hints to the last page."""
    found = []
    command: list[str] = [*args, "--json"]
    while True:
        done = cli(*command)
        assert done.returncode == 0, done.stderr
        found.append(json.loads(done.stdout))
        if not done.stderr:
            return found
        [hint] = done.stderr.splitlines()
        assert hint.startswith("more follow: agentos ")
        command = shlex.split(hint.removeprefix("more follow: agentos "))
        assert "--json" in command and all(a in command for a in args[:2])


def test_each_list_pages_with_a_hint_keeping_its_filters(cli: Cli, server: Server) -> None:
    with Client(server.url) as api:
        api.emit_batch([{"type": "pg.x", "payload": {"n": n}} for n in range(5)]
                       + [{"type": "other"}])
        api.report_llm_calls([{"model": "gpt-4o-mini", "agent": "writer", "prompt_tokens": n}
                              for n in range(5)] + [{"model": "gpt-4o-mini", "agent": "x"}])
        api.create_workflow(GATE, publish=True)
        runs = [api.start_run("gate")["id"] for _ in range(3)]

    events = pages(cli, "events", "list", "--type", "pg.*", "--limit", "2")
    assert [[e["payload"]["n"] for e in page] for page in events] == [[0, 1], [2, 3], [4]]

    calls = pages(cli, "llm", "calls", "--agent", "writer", "--limit", "2")
    assert [[c["prompt_tokens"] for c in page] for page in calls] == [[4, 3], [2, 1], [0]]

    listed = pages(cli, "runs", "list", "--workflow", "gate", "--limit", "2")
    assert [r["id"] for page in listed for r in page] == runs[::-1]
    assert [len(page) for page in listed] == [2, 1]

    approvals = pages(cli, "approvals", "list", "--limit", "2")
    assert sorted(a["run_id"] for page in approvals for a in page) == sorted(runs)
    assert [len(page) for page in approvals] == [2, 1]
    # --run-id, the API's run_id (it was --run)
    one = json.loads(cli.ok("approvals", "list", "--run-id", runs[0], "--json"))
    assert [a["run_id"] for a in one] == [runs[0]]

    audit = pages(cli, "audit", "list", "--action", "workflow_runs.start", "--limit", "2")
    assert [len(page) for page in audit] == [2, 1]
    assert [e["resource_id"] for page in audit for e in page] == runs[::-1]
