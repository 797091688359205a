"""/api/v1/models over HTTP: shapes, roles, audit rows, and refusals that write nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import func, select

from agentos.store import Store
from agentos.store.tables import audit_log, events, models


async def counts(store: Store) -> tuple[int, int]:
    async with store.read() as conn:
        return tuple([int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
                      for t in (models, events)])  # type: ignore[return-value]


async def test_register_list_deploy_archive(
        api: httpx.AsyncClient, store: Store,
        as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    operator = await as_role("operator")
    body = {"name": "churn", "version": "1", "type": "classification",
            "framework": "sklearn", "metrics": {"auc": 0.81}, "artifact_uri": "s3://m/1"}
    r = await operator.post("/api/v1/models", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "training" and r.json()["created_by"].startswith("user:operator")
    assert (await operator.post("/api/v1/models/churn/versions/1/deploy")).status_code == 403
    r = await api.post("/api/v1/models/churn/versions/1/deploy")
    assert r.status_code == 200 and r.json()["status"] == "deployed"
    await api.post("/api/v1/models", json={**body, "version": "2"})
    await api.post("/api/v1/models/churn/versions/2/deploy")
    model = (await api.get("/api/v1/models/churn")).json()
    assert model["deployed"] == ["2"]
    assert [(v["version"], v["status"]) for v in model["versions"]] == [
        ("2", "deployed"), ("1", "archived")]
    page = (await api.get("/api/v1/models", params={"status": "archived"})).json()
    assert [m["version"] for m in page["models"]] == ["1"] and page["next_after"] is None
    assert (await api.get("/api/v1/models/churn/versions/2")).json()["metrics"] == {"auc": 0.81}
    async with store.read() as conn:
        rows = (await conn.execute(select(audit_log.c.action, audit_log.c.resource_id)
                                   .where(audit_log.c.resource_type == "models")
                                   .where(audit_log.c.outcome == "ok")
                                   .order_by(audit_log.c.seq))).all()
    assert [tuple(r) for r in rows] == [("models.register", "churn@1"),
                                        ("models.deploy", "churn@1"),
                                        ("models.register", "churn@2"),
                                        ("models.deploy", "churn@2")]


async def test_refusals_are_4xx_and_write_nothing(api: httpx.AsyncClient, store: Store) -> None:
    await api.post("/api/v1/models", json={"name": "m", "version": "1", "type": "t"})
    await api.post("/api/v1/models/m/versions/1/archive")
    before = await counts(store)
    good = {"name": "m", "version": "2", "type": "t"}
    cases = [
        ("POST", "/api/v1/models/m/versions/1/deploy", None, 409, "invalid_transition"),
        ("POST", "/api/v1/models", {**good, "version": "1"}, 409, "model_exists"),
        ("POST", "/api/v1/models", {**good, "name": "Bad Name"}, 400, "bad_name"),
        ("POST", "/api/v1/models", {**good, "version": "1/2"}, 400, "bad_version"),
        ("POST", "/api/v1/models", {**good, "metrics": {"a": "x" * 70_000}}, 413,
         "metrics_too_large"),
        ("POST", "/api/v1/models", {**good, "status": "deployed"}, 422, "invalid_request"),
        ("POST", "/api/v1/models", {"name": "m"}, 422, "invalid_request"),
        ("POST", "/api/v1/models/m/versions/9/deploy", None, 404, "model_version_not_found"),
        ("POST", "/api/v1/models/ghost/versions/1/archive", None, 404, "model_not_found"),
        ("GET", "/api/v1/models/ghost", None, 404, "model_not_found"),
        ("GET", "/api/v1/models?status=bogus", None, 422, "invalid_request"),
    ]
    for method, path, body, status, code in cases:
        r = await api.request(method, path, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (path, r.text)
    assert await counts(store) == before


async def test_a_remote_claim_carries_the_model_its_agent_names(api: httpx.AsyncClient
                                                                  ) -> None:
    """A worker claiming over HTTP gets what an in-process worker puts in ctx.model: the
    version deployed now, its config and artifact; an agent whose model cannot be had
    fails its task for good, as the worker would."""
    await api.post("/api/v1/models", json={"name": "scorer", "version": "1", "type": "t",
                                           "config": {"threshold": 0.5},
                                           "artifact_uri": "s3://m/scorer/1"})
    await api.post("/api/v1/models/scorer/versions/1/deploy")
    for name, ref in [("uses-model", "scorer"), ("pinned", "scorer@9"), ("plain", None)]:
        await api.post("/api/v1/agents", json={
            "name": name, "version": "1.0.0", "handler": {"type": "python", "target": "m:f"},
            **({"model_ref": ref} if ref else {})})
        await api.post(f"/api/v1/agents/{name}/versions/1.0.0/publish")

    async def claim_one(agent: str) -> dict:
        made = (await api.post("/api/v1/tasks", json={"agent": agent, "input": {}})).json()
        got = (await api.post("/api/v1/tasks/claim", json={"worker_id": "far",
                                                           "agents": [agent]})).json()
        return {"id": made["id"], "tasks": got["tasks"]}

    first = await claim_one("uses-model")
    [task] = first["tasks"]
    assert (task["model"]["name"], task["model"]["version"], task["model"]["config"],
            task["model"]["artifact_uri"]) == ("scorer", "1", {"threshold": 0.5},
                                               "s3://m/scorer/1")
    # a deploy reaches the next claim
    await api.post("/api/v1/models", json={"name": "scorer", "version": "2", "type": "t",
                                           "config": {"threshold": 0.7}})
    await api.post("/api/v1/models/scorer/versions/2/deploy")
    [task] = (await claim_one("uses-model"))["tasks"]
    assert (task["model"]["version"], task["model"]["config"]) == ("2", {"threshold": 0.7})
    [task] = (await claim_one("plain"))["tasks"]
    assert "model" not in task
    missing = await claim_one("pinned")
    assert missing["tasks"] == []
    failed = (await api.get(f"/api/v1/tasks/{missing['id']}")).json()
    assert (failed["status"], failed["attempt"]) == ("failed", 1)
    assert "no version 9" in failed["error"]["message"]
