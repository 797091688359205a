"""The hot routes answer what the FastAPI routes of the same method and path answer.

One scenario of good and bad requests to the six hot writes (submit, append,
complete, lock acquire and release, a remote worker's claim) runs twice on one app:
once as it is, once with its hot routes taken out, so FastAPI's routes answer. Each
half names its own resources, keys and tasks; ids, times and tokens aside, the
answers are the same, status code and body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Body, Depends, FastAPI, Header

from agentos.api import hot_routes
from tests.api.test_tasks_api import publish

# what differs between two halves that do the same: made ids, times, tokens
VOLATILE = {"id", "seq", "created_at", "updated_at", "run_at", "lease_expires_at",
            "started_at", "finished_at", "expires_at", "token", "correlation_id",
            "causation_id", "task_id", "request_id", "ended_at", "duration_ms",
            "deployed_at"}


@contextmanager
def without_hot_routes(app: FastAPI) -> Iterator[None]:
    kept = list(app.router.routes)
    app.router.routes[:] = [r for r in kept if not isinstance(r, hot_routes.HotRoute)]
    assert len(app.router.routes) == len(kept) - len(hot_routes.HOT)
    try:
        yield
    finally:
        app.router.routes[:] = kept


def same_shape(value: Any, tag: str) -> Any:
    """``value`` with the half's tag taken out of strings and volatile values masked."""
    if isinstance(value, dict):
        return {k: "<made>" if k in VOLATILE and v is not None else same_shape(v, tag)
                for k, v in value.items()}
    if isinstance(value, list):
        return [same_shape(v, tag) for v in value]
    if isinstance(value, str):
        return re.sub(r"\b[0-9a-f]{8}-[0-9a-f-]{27}\b|\b[0-9a-f]{32}\b", "<id>",
                      value.replace(tag, "<tag>"))
    return value


def lock_path(tag: str) -> str:
    return f"/api/v1/locks/dev:{tag}/p1"


async def scenario(api: httpx.AsyncClient, tag: str) -> list[Any]:
    """Good and bad single writes; every answer as (status, body, content type)."""
    answers = []

    async def send(path: str, body: Any = None, *, raw: bytes | None = None,
                   method: str = "POST", media: str | None = None) -> dict[str, Any]:
        r = await api.request(method, path, json=body if raw is None else None,
                              content=raw,
                              headers={"content-type": media} if media else None)
        answers.append((method, same_shape(path, tag), r.status_code,
                        r.headers.get("content-type"), r.headers.get("allow"),
                        # as text: the keys' order too
                        json.dumps(same_shape(r.json() if r.content else None, tag))))
        return r.json() if r.content and r.headers.get(
            "content-type") == "application/json" else {}

    task = {"agent": "a", "input": {"q": tag}, "priority": 7, "idempotency_key": f"k-{tag}"}
    made = await send("/api/v1/tasks", task)
    await send("/api/v1/tasks", task)  # the same key again: 200, the first task
    await send("/api/v1/tasks", {**task, "priority": 3})  # 409 idempotency_conflict
    for bad in ({}, [], None, {"agent": "nope"}, {"agent": "a", "priority": "x"},
                {"agent": "a", "input": 5}, {"agent": "a", "extra": 1}):
        await send("/api/v1/tasks", bad)
    await send("/api/v1/tasks", raw=b"")
    await send("/api/v1/tasks", raw=b"{\"agent\": \"a\"")
    for media in ("text/plain", "application/yaml", "application/octet-stream",
                  "application/x-www-form-urlencoded", "", "application/vnd.x+json",
                  "APPLICATION/JSON; charset=utf-8", "json", "application/json-seq"):
        await send("/api/v1/tasks", raw=b"agent: a", media=media)
        await send("/api/v1/tasks", raw=b'{"agent": "a", "input": {"q": 1}}', media=media)
        await send(f"{lock_path(tag)}/acquire", raw=b"owner: o", media=media)
    await send("/api/v1/tasks", method="PUT")

    await send("/api/v1/events", {"type": "device.ready", "payload": {"tag": tag}})
    await send("/api/v1/events", {"type": "device.ready", "dedup_key": f"d-{tag}"})
    await send("/api/v1/events", {"type": "device.ready", "dedup_key": f"d-{tag}"})
    await send("/api/v1/events", {"events": [{"type": "a.b"}, {"type": "c.d",
                                                               "priority": "high"}]})
    for bad in ({}, {"type": ""}, {"events": [{"type": "a"}, {"tipe": 1}]}, [1], None):
        await send("/api/v1/events", bad)
    await send("/api/v1/events", raw=b"")

    claim = "/api/v1/tasks/claim"
    claimed = await send(claim, {"worker_id": f"w-{tag}", "limit": 1})
    [task_claimed] = claimed["tasks"]
    assert task_claimed["id"] == made["id"]
    for bad in ({}, {"worker_id": ""}, {"worker_id": "w", "limit": 0},
                {"worker_id": "w", "limit": 1001}, {"worker_id": "w", "nope": 1},
                {"worker_id": "w", "completed": [{"id": "x", "attempt": 1}] * 2}, [], None):
        await send(claim, bad)
    await send(claim, raw=b"")
    await send(claim, {"worker_id": f"w-{tag}", "limit": 0,  # stale: not its attempt
                       "completed": [{"id": made["id"], "attempt": 9}]})
    await send(claim, {"worker_id": f"w-{tag}", "agents": [f"none-{tag}"]})  # none ready
    await send(claim, method="PUT")
    done = f"/api/v1/tasks/{made['id']}/complete"
    for bad in ({}, {"attempt": "x"}, {"attempt": 1, "extra": 1}, {"attempt": 1, "cost": -1},
                {"attempt": 1, "output": []}, [], None):
        await send(done, bad)
    await send(done, raw=b"")
    await send(done, {"attempt": 2})  # 409 stale_attempt
    await send(f"/api/v1/tasks/nope-{tag}/complete", {"attempt": 1})  # 404
    await send(done, {"attempt": 1, "output": {"ok": tag}, "tokens": {"total": 3},
                      "logs": [{"message": "done"}]})
    await send(done, {"attempt": 1})  # 409: it ended
    await send(done, method="GET")

    lock = lock_path(tag)
    held = await send(f"{lock}/acquire", {"owner": f"o-{tag}", "ttl_s": 30})
    await send(f"{lock}/acquire", {"owner": f"p-{tag}", "ttl_s": 30})  # not granted
    for bad in ({}, {"owner": ""}, {"owner": "o", "ttl_s": -1}, {"owner": "o", "wait_s": 1e9},
                {"owner": "o", "priority": 99}, {"owner": "o", "nope": 1}, None):
        await send(f"{lock}/acquire", bad)
    await send(f"{lock}/acquire", raw=b"")
    await send(f"{lock}/release", {"owner": f"p-{tag}", "token": held["token"]})  # 409
    for bad in ({}, {"owner": f"o-{tag}"}, {"owner": f"o-{tag}", "token": 0},
                {"owner": f"o-{tag}", "token": "x"}, None):
        await send(f"{lock}/release", bad)
    await send(f"{lock}/release", {"owner": f"o-{tag}", "token": held["token"]})
    await send(f"{lock}/release", {"owner": f"o-{tag}", "token": held["token"]})  # 409
    await send("/api/v1/locks/%00/acquire", {"owner": "o"})
    for method in ("PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"):
        await send(f"{lock}/acquire", method=method)
        await send(f"{lock}/release", method=method)
        await send("/api/v1/events", method=method)
    return answers


async def test_hot_routes_answer_as_fastapi_does(app: FastAPI, api: httpx.AsyncClient,
                                                 anon: httpx.AsyncClient) -> None:
    await publish(api)
    hot = await scenario(api, "hot")
    with without_hot_routes(app):
        plain = await scenario(api, "plain")
    assert len(hot) == len(plain)
    for mine, theirs in zip(hot, plain, strict=True):
        assert mine == theirs
    assert {status for _, _, status, *_ in hot} >= {200, 201, 400, 404, 405, 409, 422}
    # the guard: no credential is 401 on each, as on the FastAPI route
    for method, path in hot_routes.HOT:
        concrete = path.replace("{task_id}", "t").replace("{resource:path}", "r")
        r = await anon.request(method, concrete, json={})
        assert r.status_code == 401 and r.json()["error"]["code"] == "credential_required"


async def claims(api: httpx.AsyncClient, tag: str) -> list[Any]:
    """A remote worker's claims of tasks whose agent declares a resource and names a
    model (the answer carries ``locks`` and ``model``), one carrying a good and a stale
    completion in a long poll, a long poll that finds nothing, and bodies not labelled
    JSON: every answer as (status, body)."""
    await api.post("/api/v1/models", json={
        "name": f"m-{tag}", "version": "1", "type": "t", "artifact_uri": "s3://m/1",
        "metrics": {"auc": 0.81, "tiny": 1e-7, "big": 1e16}})
    await api.post(f"/api/v1/models/m-{tag}/versions/1/deploy")
    await api.post("/api/v1/agents", json={
        "name": f"dev-{tag}", "version": "1.0.0", "model_ref": f"m-{tag}",
        "handler": {"type": "python", "target": "m:f"},
        "resources": ["device:{input.device}"], "permissions": {"lock": ["device:*"]}})
    await api.post(f"/api/v1/agents/dev-{tag}/versions/1.0.0/publish")
    made = [(await api.post("/api/v1/tasks", json={
        "agent": f"dev-{tag}", "input": {"device": f"d{n}-{tag}", "x": 1e16, "y": 0.1}})
             ).json()["id"] for n in range(2)]
    answers = []

    async def send(body: Any = None, raw: bytes | None = None,
                   media: str | None = None) -> Any:
        r = await api.post("/api/v1/tasks/claim", json=body if raw is None else None,
                           content=raw, headers={"content-type": media} if media else None)
        answers.append((r.status_code, json.dumps(same_shape(r.json(), tag))))
        return r.json()

    got = await send({"worker_id": f"w-{tag}", "limit": 5, "lease_s": 60})
    assert all(t["locks"] and t["model"] for t in got["tasks"]) and len(got["tasks"]) == 2
    await send({"worker_id": f"w-{tag}", "limit": 1, "wait_s": 0.2, "completed": [
        {"id": made[0], "attempt": 1, "output": {"x": 1e16}}, {"id": made[1], "attempt": 7}]})
    await send({"worker_id": f"w-{tag}", "limit": 1, "wait_s": 0.1})
    for media in ("text/plain", None, "application/yaml"):
        await send(raw=b'{"worker_id": "w"}', media=media)
    return answers


async def test_a_hot_claim_answers_locks_models_and_stale_as_fastapi_does(
        app: FastAPI, api: httpx.AsyncClient) -> None:
    hot = await claims(api, "hot")
    with without_hot_routes(app):
        plain = await claims(api, "plain")
    assert hot == plain
    assert [status for status, _ in hot] == [200, 200, 200, 422, 422, 422]


def test_a_route_using_what_a_hot_route_does_not_give_is_refused() -> None:
    """Each thing the hot route would silently not honour is refused when it is built."""
    app = FastAPI()

    async def guard() -> None:
        return None

    @app.post("/a/{n}")
    async def typed(n: int) -> dict[str, Any]:
        return {}

    @app.post("/b", dependencies=[Depends(guard)])
    async def depends() -> dict[str, Any]:
        return {}

    @app.post("/c")
    async def embedded(body: Annotated[dict[str, Any], Body(embed=True)]) -> dict[str, Any]:
        return {}

    @app.post("/d", response_model_exclude_defaults=True)
    async def defaults() -> dict[str, Any]:
        return {}

    @app.post("/e")
    async def header(user_agent: Annotated[str, Header()]) -> dict[str, Any]:
        return {}

    for path, problem in [("/a/{n}", "path parameter 'n' is not a str"),
                          ("/b", "dependencies of its own"), ("/c", "a body of"),
                          ("/d", "response model options"), ("/e", "a parameter 'user_agent'")]:
        [route] = [r for r in app.routes if getattr(r, "path", None) == path]
        with pytest.raises(TypeError, match=re.escape(problem)):
            hot_routes._endpoint(route)  # type: ignore[arg-type]
