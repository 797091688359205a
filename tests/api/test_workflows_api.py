"""/api/v1/workflows, /workflow-runs and /approvals over HTTP, on both backends: the
happy paths, and every bad input refused with a 4xx that writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentos.sdk import AsyncClient
from agentos.store import Store
from agentos.worker.loop import Worker
from tests.conftest import ADMIN_PASSWORD
from tests.snapshot import snapshot

YAML = {"Content-Type": "application/yaml"}

AGENT = """
name: doubler
version: 1.0.0
handler: {type: python, target: "tests.handlers:wf_double"}
"""

FLOW = """
name: review
version: 1.0.0
input_schema: {type: object, required: [n], properties: {n: {type: integer}}}
steps:
  - id: work
    agent: doubler
    input: {n: "{{ input.n }}", fail: "{{ input.fail | default(false) }}"}
  - id: approve
    type: approval
    title: "ship {{ steps.work.output.n }}?"
    role: admin
    depends_on: [work]
  - id: ship
    agent: doubler
    when: "{{ steps.approve.output.approved }}"
    input: {n: 1}
    depends_on: [approve]
"""


async def setup(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/agents/import?publish=true", content=AGENT, headers=YAML)
    assert r.status_code == 201, r.text
    r = await api.post("/api/v1/workflows/import?publish=true", content=FLOW, headers=YAML)
    assert r.status_code == 201, r.text


async def until(api: httpx.AsyncClient, store: Store, run_id: str,
                check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Run burst workers (the app's own engine moves the run) until ``check`` holds."""
    for _ in range(100):
        run = (await api.get(f"/api/v1/workflow-runs/{run_id}")).json()
        if check(run):
            return run
        await asyncio.wait_for(Worker(store, burst=True, concurrency=4).run(), 30)
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} never got there: {run}")


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == step_id)


async def test_definitions_import_export_and_lifecycle(api: httpx.AsyncClient,
                                                        store: Store) -> None:
    await setup(api)
    before = await snapshot(store)  # an identical re-import writes nothing, audit included
    again = await api.post("/api/v1/workflows/import", content=FLOW, headers=YAML)
    assert again.status_code == 200
    assert again.json()["workflows"][0]["outcome"] == "unchanged"
    assert await snapshot(store) == before
    exported = await api.get("/api/v1/workflows/review/export")
    assert exported.status_code == 200 and "depends_on:\n  - work" in exported.text
    reimport = await api.post("/api/v1/workflows/import?publish=true",
                              content=exported.text, headers=YAML)
    assert reimport.status_code == 200  # the export of an import is the same version
    listed = (await api.get("/api/v1/workflows")).json()["workflows"]
    assert [(w["name"], w["status"], w["steps"]) for w in listed] == [
        ("review", "published", ["work", "approve", "ship"])]
    changed = await api.post("/api/v1/workflows/import", headers=YAML,
                             content=FLOW.replace("ship {{", "send {{"))
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "version_immutable"
    assert changed.json()["error"]["details"]["fields"] == ["steps"]
    assert "differs in steps" in changed.json()["error"]["message"]
    r = await api.post("/api/v1/workflows/review/versions/1.0.0/deprecate")
    assert r.json()["status"] == "deprecated"
    # the same file again, even asking to publish, leaves the deprecated version as it is
    same = await api.post("/api/v1/workflows/import?publish=true", content=FLOW, headers=YAML)
    assert same.status_code == 200, same.text
    assert [(w["outcome"], w["status"]) for w in same.json()["workflows"]] == [
        ("unchanged", "deprecated")]
    r = await api.post("/api/v1/workflows/review/versions/1.0.0/deprecate")
    assert r.status_code == 409
    r = await api.post("/api/v1/workflow-runs", json={"workflow": "review", "input": {"n": 1}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "workflow_not_runnable"


BAD_DEFINITIONS = {
    "cycle": ("steps:\n  - {id: a, agent: doubler, depends_on: [b]}\n"
              "  - {id: b, agent: doubler, depends_on: [a]}\n", "cycle"),
    "unknown step": ("steps:\n  - {id: a, agent: doubler, depends_on: [zz]}\n",
                     "unknown step 'zz'"),
    "unknown agent": ("steps:\n  - {id: a, agent: nobody}\n", "unknown agent nobody"),
    "unknown workflow": ("steps:\n  - {id: a, type: workflow, workflow: nothing}\n",
                         "unknown workflow nothing"),
    "bad template": ('steps:\n  - {id: a, agent: doubler, input: {x: "{{ input.x + }}"}}\n',
                     "does not compile"),
    "template names unknown step": (
        'steps:\n  - {id: a, agent: doubler, input: {x: "{{ steps.q.output }}"}}\n',
        "unknown step 'q'"),
}


@pytest.mark.parametrize("case", list(BAD_DEFINITIONS))
async def test_bad_definitions_are_refused_with_lines(api: httpx.AsyncClient, store: Store,
                                                      case: str) -> None:
    await setup(api)
    body, expected = BAD_DEFINITIONS[case]
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    r = await api.post("/api/v1/workflows/import", headers=YAML,
                       content=f"name: broken\nversion: 1.0.0\n{body}")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert any(expected in e["message"] and e["line"] for e in error["details"]["errors"])
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before


async def test_run_approve_and_read_it_all(api: httpx.AsyncClient, store: Store,
                                           as_role: Callable[[str], Awaitable[httpx.AsyncClient]],
                                           app: FastAPI) -> None:
    await setup(api)
    operator = await as_role("operator")
    r = await operator.post("/api/v1/workflow-runs", json={
        "workflow": "review", "input": {"n": 4}, "idempotency_key": "k1", "priority": 7})
    assert r.status_code == 201, r.text
    run = r.json()
    again = await operator.post("/api/v1/workflow-runs", json={
        "workflow": "review", "input": {"n": 4}, "idempotency_key": "k1", "priority": 7})
    assert again.status_code == 200 and again.json()["id"] == run["id"]
    other = await operator.post("/api/v1/workflow-runs", json={
        "workflow": "review", "input": {"n": 5}, "idempotency_key": "k1"})
    assert other.status_code == 409
    waiting = await until(api, store, run["id"],
                          lambda r: step(r, "approve")["status"] == "running")
    assert step(waiting, "work")["tasks"][0]["attempts"][0]["outcome"] == "succeeded"
    explained = (await api.get(f"/api/v1/workflow-runs/{run['id']}/explain")).json()
    assert "admin role" in explained["summary"]
    pending = (await api.get("/api/v1/approvals?status=pending")).json()["approvals"]
    [approval] = pending
    assert approval["title"] == "ship 8?" and approval["run_id"] == run["id"]
    # an operator is below the approval's role: 403, recorded as denied
    r = await operator.post(f"/api/v1/approvals/{approval['id']}/approve", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "approval_role"
    r = await api.post(f"/api/v1/approvals/{approval['id']}/approve",
                       json={"comment": "go"})
    assert r.status_code == 200 and r.json()["outcome"]["approved"] is True
    r = await api.post(f"/api/v1/approvals/{approval['id']}/reject", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "approval_decided"
    done = await until(api, store, run["id"], lambda r: r["status"] == "succeeded")
    assert step(done, "approve")["output"]["by"] == "user:admin"
    assert step(done, "ship")["status"] == "succeeded"
    audit = (await api.get("/api/v1/audit?action=approvals.approve")).json()["entries"]
    assert {(e["outcome"], e["actor"].split("-")[0], e["resource_id"]) for e in audit} == {
        ("ok", "user:admin", approval["id"]), ("denied", "user:operator", approval["id"])}
    started = (await api.get("/api/v1/audit?action=workflow_runs.start")).json()["entries"]
    assert run["id"] in {e["resource_id"] for e in started}
    page = (await api.get("/api/v1/workflow-runs?workflow=review&status=succeeded")).json()
    assert [x["id"] for x in page["runs"]] == [run["id"]]
    # a step's tasks, paged (a viewer reads them); bad cursors and unknown steps refused
    assert step(done, "work")["tasks_total"] == 1 and step(done, "work")["tasks_next"] is None
    viewer = await as_role("viewer")
    r = await viewer.get(f"/api/v1/workflow-runs/{run['id']}/steps/work/tasks?limit=1")
    assert r.status_code == 200 and r.json()["next_after"] is None
    assert [t["item"] for t in r.json()["tasks"]] == [0]
    async with AsyncClient("http://agentos.test", token="none",
                           transport=httpx.ASGITransport(app=app)) as sdk:
        await sdk.login("admin", ADMIN_PASSWORD)
        paged = await sdk.run_step_tasks(run["id"], "work", limit=5)
        assert [t["task_id"] for t in paged["tasks"]] == [
            t["task_id"] for t in step(done, "work")["tasks"]] and paged["next_after"] is None
        history = await sdk.run_transitions(run["id"], limit=2)
        assert len(history["transitions"]) == 2 and history["next_after"] is not None
        rest = await sdk.run_transitions(run["id"], after=history["next_after"])
        assert history["transitions"] + rest["transitions"] == done["transitions"]
    for bad, code in (("transitions?after=x", 400), ("transitions?limit=0", 422),
                      ("steps/work/tasks?after=x", 400), ("steps/work/tasks?limit=0", 422),
                      ("steps/nope/tasks", 404)):
        r = await api.get(f"/api/v1/workflow-runs/{run['id']}/{bad}")
        assert r.status_code == code, (bad, r.text)
    r = await api.post(f"/api/v1/workflow-runs/{run['id']}/cancel")
    assert r.status_code == 409
    r = await api.post(f"/api/v1/workflow-runs/{run['id']}/rerun", json={"step": "work"})
    assert r.status_code == 409


async def test_bad_run_requests_write_nothing(api: httpx.AsyncClient, store: Store) -> None:
    await setup(api)
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    for body, status, code in [
        ({"workflow": "review", "input": {"n": "x"}}, 422, "invalid_run_input"),
        ({"workflow": "review", "input": {}}, 422, "invalid_run_input"),
        ({"workflow": "nope", "input": {}}, 404, "workflow_not_found"),
        ({"workflow": "review", "version": "9.9.9", "input": {"n": 1}}, 404,
         "version_not_found"),
        ({"workflow": "review", "input": {"n": 1}, "priority": 11}, 422, None),
        ({"workflow": "review", "input": {"n": 1}, "extra": 1}, 422, None),
    ]:
        r = await api.post("/api/v1/workflow-runs", json=body)
        assert r.status_code == status, (body, r.text)
        if code:
            assert r.json()["error"]["code"] == code
    for method, path, body, status in [
        ("GET", "/api/v1/workflow-runs/nope", None, 404),
        ("POST", "/api/v1/workflow-runs/nope/cancel", None, 404),
        ("POST", "/api/v1/workflow-runs/nope/rerun", {"step": "x"}, 404),
        ("GET", "/api/v1/workflow-runs/nope/explain", None, 404),
        ("GET", "/api/v1/workflow-runs/nope/artifacts", None, 404),
        ("POST", "/api/v1/approvals/nope/approve", {}, 404),
        ("GET", "/api/v1/workflow-runs?limit=0", None, 422),
        ("GET", "/api/v1/workflow-runs?status=weird", None, 422),
    ]:
        r = await api.request(method, path, json=body)
        assert r.status_code == status, (path, r.text)
        assert "error" in r.json()
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before


async def test_failed_run_rerun_and_artifacts_over_http(api: httpx.AsyncClient,
                                                        store: Store) -> None:
    await setup(api)
    r = await api.post("/api/v1/workflow-runs", json={"workflow": "review",
                                                       "input": {"n": 1, "fail": True}})
    run = r.json()
    failed = await until(api, store, run["id"], lambda r: r["status"] == "failed")
    assert step(failed, "work")["status"] == "failed"
    r = await api.post(f"/api/v1/workflow-runs/{run['id']}/rerun", json={"step": "approve"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "step_not_failed"
    r = await api.post(f"/api/v1/workflow-runs/{run['id']}/rerun", json={"step": "work"})
    assert r.status_code == 200 and r.json()["status"] == "running"
    assert step(r.json(), "work")["round"] == 2
    r = await api.post(f"/api/v1/workflow-runs/{run['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await api.get(f"/api/v1/workflow-runs/{run['id']}/artifacts")).json() == {
        "artifacts": []}
    r = await api.get(f"/api/v1/workflow-runs/{run['id']}/artifacts/none")
    assert r.status_code == 404 and r.json()["error"]["code"] == "artifact_not_found"


async def test_artifacts_over_http(api: httpx.AsyncClient, store: Store) -> None:
    r = await api.post("/api/v1/agents/import?publish=true", headers=YAML, content="""
name: keeper
version: 1.0.0
handler: {type: python, target: "tests.handlers:wf_artifacts"}
""")
    assert r.status_code == 201, r.text
    r = await api.post("/api/v1/workflows?publish=true", json={
        "name": "keeps", "version": "1.0.0", "steps": [{"id": "keep", "agent": "keeper"}]})
    assert r.status_code == 201, r.text
    run = (await api.post("/api/v1/workflow-runs", json={"workflow": "keeps"})).json()
    await until(api, store, run["id"], lambda r: r["status"] == "succeeded")
    listed = (await api.get(f"/api/v1/workflow-runs/{run['id']}/artifacts")).json()
    assert [(a["name"], a["kind"]) for a in listed["artifacts"]] == [("raw.bin", "bytes"),
                                                                   ("report", "json")]
    raw = await api.get(f"/api/v1/workflow-runs/{run['id']}/artifacts/raw.bin")
    assert raw.content == b"\x00\x01binary"
    assert raw.headers["content-type"] == "application/octet-stream"
    report = await api.get(f"/api/v1/workflow-runs/{run['id']}/artifacts/report")
    assert report.json() == {"ok": True, "input": {}}


async def test_deciding_an_approval_past_its_timeout_is_409(api: httpx.AsyncClient,
                                                            store: Store) -> None:
    from agentos import approvals
    from agentos.roles import Role

    asked = await approvals.request(store, approvals.Request(
        "deploy?", {}, Role.OPERATOR, 0.1, "reject", "corr-late"))
    await asyncio.sleep(0.3)  # expired by its clock, whether the timer has looked or not
    for verb in ("approve", "reject"):
        r = await api.post(f"/api/v1/approvals/{asked.id}/{verb}", json={"comment": "late"})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "approval_expired"
    assert (await api.get(f"/api/v1/approvals/{asked.id}")).json()["comment"] is None
