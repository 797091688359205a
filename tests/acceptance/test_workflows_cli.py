"""``agentos workflows``, ``runs`` and ``approvals`` against a real server with a worker
in its process: import, start --wait through an approval, show, explain, rerun, cancel."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Cli, Server, admin_token, environment, start

ROOT = Path(__file__).resolve().parents[2]

DEFINITIONS = """
name: doubler
version: 1.0.0
handler: {type: python, target: "tests.handlers:wf_double"}
"""

FLOW = """
name: ship
version: 1.0.0
input_schema: {type: object, required: [n]}
steps:
  - id: work
    agent: doubler
    input: {n: "{{ input.n }}", fail: "{{ input.fail | default(false) }}"}
  - id: approve
    type: approval
    title: "ship {{ steps.work.output.n }}?"
    depends_on: [work]
  - id: ship
    agent: doubler
    when: "{{ steps.approve.output.approved }}"
    input: {n: "{{ steps.work.output.n }}"}
    depends_on: [approve]
"""


@pytest.fixture
def working(database_url: str, tmp_path: Path) -> Iterator[Server]:
    env = environment(AGENTOS_DATABASE_URL=database_url, AGENTOS_RUN_WORKER="true",
                      PYTHONPATH=str(ROOT))
    running = start("serve", tmp_path, env)
    try:
        running.token = admin_token(running.url)
        yield running
    finally:
        running.stop()


def test_workflow_commands(working: Server, tmp_path: Path) -> None:
    cli = Cli(tmp_path, environment(AGENTOS_URL=working.url, AGENTOS_TOKEN=working.token))
    (tmp_path / "agent.yaml").write_text(DEFINITIONS)
    (tmp_path / "flow.yaml").write_text(FLOW)
    cli.ok("agents", "import", "agent.yaml", "--publish")
    assert cli.ok("workflows", "import", "flow.yaml").strip() == "created ship 1.0.0 (draft)"
    assert cli.ok("workflows", "publish", "ship", "1.0.0").strip() == \
        "ship 1.0.0 is now published"
    assert cli.ok("workflows", "import", "flow.yaml", "--publish").strip() == \
        "unchanged ship 1.0.0 (published)"
    for action, status in (("deprecate", "deprecated"), ("publish", "published")):
        moved = json.loads(cli.ok("workflows", action, "ship", "1.0.0", "--json"))
        assert (moved["name"], moved["version"], moved["status"]) == ("ship", "1.0.0", status)
    listed = cli.ok("workflows", "list").splitlines()
    assert listed[1].split()[:3] == ["ship", "1.0.0", "published"]
    assert "approve  approval" in cli.ok("workflows", "show", "ship")
    assert "title: ship {{ steps.work.output.n }}?" in cli.ok("workflows", "export", "ship")

    # approve from another thread while `runs start --wait` follows the run
    def approve_when_asked() -> None:
        headers = {"Authorization": f"Bearer {working.token}"}
        for _ in range(600):
            pending = httpx.get(f"{working.url}/api/v1/approvals?status=pending",
                                headers=headers, timeout=10).json()["approvals"]
            if pending:
                decided = json.loads(cli.ok("approvals", "approve", pending[0]["id"], "-m",
                                            "fine", "--json"))
                assert (decided["id"], decided["status"]) == (pending[0]["id"], "approved")
                return
            time.sleep(0.05)

    approver = threading.Thread(target=approve_when_asked)
    approver.start()
    done = cli("runs", "start", "ship", "--input", '{"n": 2}', "--wait")
    approver.join()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("started ship 1.0.0: run ")
    assert done.stdout.strip().endswith("succeeded")
    run_id = done.stdout.split("run ")[1].split()[0]
    shown = cli.ok("runs", "show", run_id)
    assert shown.splitlines()[0].split()[:3] == ["STEP", "TYPE", "STATUS"]
    assert [line.split()[2] for line in shown.splitlines()[1:4]] == ["succeeded"] * 3
    full = json.loads(cli.ok("runs", "show", run_id, "--json"))
    assert full["steps"][1]["output"]["comment"] == "fine"
    assert json.loads(cli.ok("runs", "list", "--json"))[0]["id"] == run_id

    # a failing run, explained, rerun (fails again), then bad commands: one line, exit 2
    failed = cli("runs", "start", "ship", "--input", '{"n": 1, "fail": true}', "--wait")
    assert failed.returncode == 1 and "failed" in failed.stdout
    bad_id = failed.stdout.split("run ")[1].split()[0]
    assert "is failed" in cli.ok("runs", "explain", bad_id)
    rerun = json.loads(cli.ok("runs", "rerun", bad_id, "--from", "work", "--json"))
    assert (rerun["id"], rerun["status"]) == (bad_id, "running")
    watched = cli.ok("runs", "show", bad_id, "--watch")
    assert f"run {bad_id} failed: step work failed: its task" in watched
    for args in (("runs", "start", "ship", "--input", "{nope"),
                 ("runs", "start", "ship", "--input", '{"x": 1}'),
                 ("runs", "cancel", bad_id), ("runs", "rerun", run_id, "--from", "work"),
                 ("approvals", "approve", "nope"), ("workflows", "show", "ghost")):
        bad = cli(*args)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        assert bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1


def test_changing_commands_print_json(working: Server, tmp_path: Path) -> None:
    """--json on reject, cancel, deprecate and archive: what the API answered."""
    cli = Cli(tmp_path, environment(AGENTOS_URL=working.url, AGENTOS_TOKEN=working.token))
    (tmp_path / "agent.yaml").write_text(DEFINITIONS)
    (tmp_path / "flow.yaml").write_text(FLOW)
    cli.ok("agents", "import", "agent.yaml", "--publish")
    cli.ok("workflows", "import", "flow.yaml", "--publish")
    runs = [json.loads(cli.ok("runs", "start", "ship", "--input", '{"n": 3}', "--json"))["id"]
            for _ in range(2)]
    headers = {"Authorization": f"Bearer {working.token}"}
    pending: list[dict[str, str]] = []
    for _ in range(600):  # both runs wait at their approval step
        pending = httpx.get(f"{working.url}/api/v1/approvals?status=pending",
                            headers=headers, timeout=10).json()["approvals"]
        if len(pending) == 2:
            break
        time.sleep(0.05)
    first = next(a for a in pending if a["run_id"] == runs[0])
    rejected = json.loads(cli.ok("approvals", "reject", first["id"], "-m", "no", "--json"))
    assert (rejected["id"], rejected["status"], rejected["comment"]) == (
        first["id"], "rejected", "no")
    cancelled = json.loads(cli.ok("runs", "cancel", runs[1], "--json"))
    assert (cancelled["id"], cancelled["status"]) == (runs[1], "cancelled")
    deprecated = json.loads(cli.ok("workflows", "deprecate", "ship", "1.0.0", "--json"))
    assert deprecated["status"] == "deprecated"
    archived = json.loads(cli.ok("workflows", "archive", "ship", "1.0.0", "--json"))
    assert (archived["name"], archived["version"], archived["status"]) == (
        "ship", "1.0.0", "archived")


def test_sdk_methods(working: Server) -> None:
    from agentos.sdk import Client

    with Client(working.url, token=working.token) as api:
        api.import_yaml(DEFINITIONS.replace("doubler", "keeper").replace(
            "wf_double", "wf_artifacts"), publish=True)
        api.import_yaml(DEFINITIONS, publish=True)
        made = api.create_workflow({"name": "keeps", "version": "1.0.0",
                                    "steps": [{"id": "keep", "agent": "keeper"}]}, publish=True)
        assert made["outcome"] == "created" and made["status"] == "published"
        api.create_workflow({"name": "keeps", "version": "2.0.0-draft",
                             "steps": [{"id": "keep", "agent": "keeper"}]})
        assert [v["version"] for v in api.workflow_versions("keeps")] == ["2.0.0-draft",
                                                                          "1.0.0"]
        api.delete_workflow_draft("keeps", "2.0.0-draft")
        run = api.start_run("keeps", idempotency_key="sdk-1")
        done = api.wait_run(run["id"], timeout_s=60, poll_s=0.1)
        assert done["status"] == "succeeded"
        assert [a["name"] for a in api.run_artifacts(run["id"])] == ["raw.bin", "report"]
        assert api.run_artifact(run["id"], "raw.bin") == b"\x00\x01binary"
        assert api.run_artifact(run["id"], "report")["ok"] is True
        assert api.get_workflow("keeps", "1.0.0")["definition"]["steps"][0]["id"] == "keep"
        assert api.deprecate_workflow("keeps", "1.0.0")["status"] == "deprecated"
        assert api.archive_workflow("keeps", "1.0.0")["status"] == "archived"
        # a rejection through the SDK skips the gated step
        api.import_workflows(FLOW, publish=True)
        gated = api.start_run("ship", {"n": 1})
        for _ in range(300):
            pending = api.list_approvals(status="pending", run_id=gated["id"])["approvals"]
            if pending:
                break
            time.sleep(0.1)
        assert api.get_approval(pending[0]["id"])["status"] == "pending"
        assert api.reject(pending[0]["id"], "not today")["status"] == "rejected"
        ended = api.wait_run(gated["id"], timeout_s=60, poll_s=0.1)
        assert [s["status"] for s in ended["steps"]] == ["succeeded", "succeeded", "skipped"]
