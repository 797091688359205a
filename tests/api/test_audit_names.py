"""Every audited change names what it changed (issue 14): its row's resource_id.

A route with path parameters is named by them (an agent's version as name@version);
a route without them names what its body names or, for what it makes (a task, an
event, a key), what it made, written in the change's own transaction. The walk
below calls every audited route without path parameters (the table must cover each
of them: a new one fails the first test) and a sample of the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from agentos.api import access
from agentos.store import Store
from agentos.store.tables import audit_log
from tests.api.test_access_rules import routes
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, client_for, login

YAML = {"Content-Type": "application/yaml"}
AGENT = "name: namer\nversion: 1.0.0\nhandler: {type: python, target: 'tests.handlers:echo'}\n"
TWO = ("name: one\nversion: 1.0.0\nhandler: {type: python, target: 'tests.handlers:echo'}\n"
       "---\nname: two\nversion: 2.0.0\nhandler: {type: python, target: 'tests.handlers:echo'}\n")
FLOW = ("name: flow\nversion: 1.0.0\nsteps:\n  - id: work\n    agent: namer\n"
        "    input: {}\n")

Json = dict[str, Any]
# (method, path) -> (call kwargs, the resource_id expected: a string, or from the answer)
Expected = str | Callable[[Json], str]
NAMED_BY_BODY: dict[tuple[str, str], tuple[Json, Expected]] = {
    ("POST", "/api/v1/auth/login"): ({"json": {"username": "admin",
                                               "password": ADMIN_PASSWORD}}, "admin"),
    ("POST", "/api/v1/auth/logout"): ({}, "pat"),
    ("POST", "/api/v1/auth/password"): ({"json": {"current_password": USER_PASSWORD,
                                                  "new_password": "another-pass-12345"}},
                                        "pat"),
    ("POST", "/api/v1/agents"): ({"json": {"name": "made", "version": "0.1.0", "handler": {
        "type": "python", "target": "tests.handlers:echo"}}}, "made@0.1.0"),
    ("POST", "/api/v1/agents/import"): ({"content": TWO, "headers": YAML},
                                        "one@1.0.0,two@2.0.0"),
    ("POST", "/api/v1/events"): ({"json": {"type": "audit.test", "payload": {}}},
                                 lambda a: a["id"]),
    ("POST", "/api/v1/events/prune"): ({"json": {"older_than": "30d"}},
                                       "30d"),
    ("POST", "/api/v1/subscriptions"): ({"json": {"name": "feed", "type": "x.*"}}, "feed"),
    ("POST", "/api/v1/schedules"): ({"json": {"name": "nightly", "cron": "0 2 * * *",
                                              "event": {"type": "qa.nightly"}}}, "nightly"),
    ("POST", "/api/v1/tasks"): ({"json": {"agent": "namer", "input": {}}}, lambda a: a["id"]),
    ("POST", "/api/v1/tasks/batch"): (
        {"json": {"tasks": [{"agent": "namer", "input": {}}] * 2}},
        lambda a: ",".join(t["id"] for t in a["tasks"])),
    ("POST", "/api/v1/tasks/claim"): ({"json": {"worker_id": "far-1", "limit": 1}}, "far-1"),
    ("POST", "/api/v1/locks/acquire-many"): (
        {"json": {"resources": ["dev:1", "dev:2"], "owner": "me"}}, "dev:1,dev:2"),
    ("POST", "/api/v1/locks/acquire-any"): (
        {"json": {"resources": ["pool:1", "pool:2"], "owner": "me"}}, "pool:1"),  # the one got
    ("POST", "/api/v1/models"): ({"json": {"name": "m", "version": "1", "type": "t"}}, "m@1"),
    ("POST", "/api/v1/llm-calls"): ({"json": {"provider": "openai", "model": "gpt-4o-mini",
                                              "prompt_tokens": 10, "completion_tokens": 5,
                                              "latency_ms": 8.0}},
                                    lambda a: str(a["calls"][0]["id"])),
    ("POST", "/api/v1/budgets"): ({"json": {"scope": "agent", "target": "namer",
                                            "metric": "tokens", "period": "day",
                                            "limit": 2000}}, lambda a: str(a["id"])),
    ("POST", "/api/v1/workflows"): ({"json": {"name": "jflow", "version": "1.0.0", "steps": [
        {"id": "work", "agent": "namer", "input": {}}]}}, "jflow@1.0.0"),
    ("POST", "/api/v1/workflows/import"): ({"content": FLOW, "headers": YAML,
                                           "params": {"publish": "true"}}, "flow@1.0.0"),
    ("POST", "/api/v1/workflow-runs"): ({"json": {"workflow": "flow"}}, lambda a: a["id"]),
    ("POST", "/api/v1/users"): ({"json": {"username": "newbie", "password": USER_PASSWORD,
                                          "role": "viewer"}}, "newbie"),
    ("POST", "/api/v1/api-keys"): ({"json": {"name": "ci", "role": "operator"}},
                                   lambda a: a["id"]),
}


def audited(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for method, path in routes(app):
        rule = access.rule_for(method, path)
        if rule is not None and rule.audit:
            found.append((method, path))
    return found


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_table_covers_every_audited_route_without_path_parameters(app: FastAPI) -> None:
    unparametrised = {r for r in audited(app) if "{" not in r[1]}
    assert unparametrised == set(NAMED_BY_BODY)
    # and each of the others is named by its parameters, which the guard always has
    assert all("{" in path for _, path in set(audited(app)) - unparametrised)


async def last_row(store: Store, action: str) -> Any:
    async with store.read() as conn:
        return (await conn.execute(select(audit_log).where(audit_log.c.action == action)
                                   .order_by(audit_log.c.seq.desc()).limit(1))).first()


async def test_every_audited_change_names_its_resource(
        app: FastAPI, store: Store, api: httpx.AsyncClient,
        as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    r = await api.post("/api/v1/agents/import?publish=true", content=AGENT, headers=YAML)
    assert r.status_code == 201, r.text
    await api.post("/api/v1/users", json={"username": "pat", "password": USER_PASSWORD,
                                          "role": "viewer"})
    async with client_for(app) as pat:
        for (method, path), (call, expected) in NAMED_BY_BODY.items():
            client = api
            if path.startswith("/api/v1/auth/"):  # as pat, in a session of pat's own
                password = call.get("json", {}).get("current_password", USER_PASSWORD)
                pat.headers["Authorization"] = f"Bearer {await login(pat, 'pat', password)}"
                client = pat
            r = await client.request(method, path, **call)
            assert r.status_code < 300, (path, r.text)
            answer = r.json() if r.content else {}
            rule = access.rule_for(method, path)
            assert rule is not None
            row = await last_row(store, rule.action)
            assert row is not None, path
            want = expected(answer) if callable(expected) else expected
            assert (row.resource_type, row.resource_id) == (rule.resource, want), path
            if path == "/api/v1/tasks/batch":  # a batch lists them all too
                assert row.details["ids"] == want.split(",")

    # routes with path parameters: by them, an agent's or a workflow's version as name@version
    task = (await api.post("/api/v1/tasks", json={"agent": "namer", "input": {}})).json()
    for method, path, action, want in [
        ("POST", f"/api/v1/tasks/{task['id']}/cancel", "tasks.cancel", task["id"]),
        ("POST", "/api/v1/agents/made/versions/0.1.0/publish", "agents.publish", "made@0.1.0"),
        ("POST", "/api/v1/workflows/jflow/versions/1.0.0/publish", "workflows.publish",
         "jflow@1.0.0"),
        ("POST", "/api/v1/locks/dev:1/force-release", "locks.force_release", "dev:1"),
        ("POST", "/api/v1/schedules/nightly/pause", "schedules.pause", "nightly"),
        ("DELETE", "/api/v1/users/newbie", "users.delete", "newbie"),
    ]:
        r = await api.request(method, path)
        assert r.status_code < 300, (path, r.text)
        assert (await last_row(store, action)).resource_id == want, path
