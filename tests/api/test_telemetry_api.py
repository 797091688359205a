"""/api/v1/llm-calls and /api/v1/budgets over HTTP: a remote worker's report (priced,
charged), listing with filters and pages, summaries, budgets; roles; bad input is
4xx and writes nothing. Both backends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from agentos.store import Store
from tests.snapshot import snapshot

CALL: dict[str, Any] = {"provider": "openai", "model": "gpt-4o-mini", "prompt_tokens": 1000,
                        "completion_tokens": 500, "latency_ms": 812.5, "agent": "remote-bot",
                        "task_id": "t-1", "attempt": 1, "correlation_id": "c-1"}


async def test_report_list_page_and_summarise(
        api: httpx.AsyncClient, as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    operator = await as_role("operator")
    r = await operator.post("/api/v1/llm-calls", json=CALL)
    assert r.status_code == 201, r.text
    [call] = r.json()["calls"]
    assert call["cost"] == pytest.approx(1000 * 0.15e-6 + 500 * 0.6e-6)  # the price package
    assert call["total_tokens"] == 1500 and call["recorded_by"].startswith("user:operator")
    batch = [{**CALL, "model": "own-model", "cost": 0.5, "agent": "other"},
             {**CALL, "model": "unknown-model", "outcome": "error", "error": "boom"}]
    r = await operator.post("/api/v1/llm-calls", json={"calls": batch})
    assert r.status_code == 201 and [c["cost"] for c in r.json()["calls"]] == [0.5, None]
    page = (await api.get("/api/v1/llm-calls", params={"limit": 2})).json()
    assert [c["model"] for c in page["calls"]] == ["unknown-model", "own-model"]
    rest = (await api.get("/api/v1/llm-calls",
                          params={"before_id": page["next_before_id"]})).json()
    assert [c["model"] for c in rest["calls"]] == ["gpt-4o-mini"]
    assert rest["next_before_id"] is None
    only = (await api.get("/api/v1/llm-calls", params={"agent": "other"})).json()["calls"]
    assert [c["model"] for c in only] == ["own-model"]
    errors = (await api.get("/api/v1/llm-calls", params={"outcome": "error"})).json()["calls"]
    assert [c["error"] for c in errors] == ["boom"]
    by_agent = (await api.get("/api/v1/llm-calls/summary", params={"by": "agent"})).json()
    rows = {r["key"]: r for r in by_agent["rows"]}
    assert rows["remote-bot"]["calls"] == 2 and rows["remote-bot"]["failed"] == 1
    assert rows["remote-bot"]["unpriced"] == 1 and rows["other"]["cost"] == 0.5
    viewer = await as_role("viewer")
    assert (await viewer.get("/api/v1/llm-calls/summary?by=day")).status_code == 200
    assert (await viewer.post("/api/v1/llm-calls", json=CALL)).status_code == 403


async def test_budgets_over_http(api: httpx.AsyncClient,
                                 as_role: Callable[[str], Awaitable[httpx.AsyncClient]]) -> None:
    body = {"scope": "agent", "target": "remote-bot", "metric": "tokens", "period": "day",
            "limit": 2000}
    r = await api.post("/api/v1/budgets", json=body)
    assert r.status_code == 201, r.text
    budget = r.json()
    assert budget["used"] == 0 and budget["hard"] and budget["period_end"] > budget["period_start"]
    await api.post("/api/v1/llm-calls", json=CALL)
    await api.post("/api/v1/llm-calls", json=CALL)  # 3,000 tokens: over
    seen = (await api.get(f"/api/v1/budgets/{budget['id']}")).json()
    assert seen["used"] == 3000 and seen["exceeded"] and seen["ratio"] == 1.5
    r = await api.patch(f"/api/v1/budgets/{budget['id']}", json={"limit": 5000})
    assert r.status_code == 200 and not r.json()["exceeded"]
    assert [b["id"] for b in (await api.get("/api/v1/budgets")).json()["budgets"]] == [
        budget["id"]]
    operator = await as_role("operator")
    assert (await operator.post("/api/v1/budgets", json=body)).status_code == 403
    assert (await api.post("/api/v1/budgets", json=body)).status_code == 409
    # a budget made later counts what its period spent already
    model = (await api.post("/api/v1/budgets", json={
        "scope": "model", "target": "gpt-4o-mini", "metric": "tokens", "period": "month",
        "limit": 4000})).json()
    assert model["used"] == 3000 and not model["exceeded"]
    first = (await api.get("/api/v1/budgets", params={"limit": 1})).json()
    assert [b["id"] for b in first["budgets"]] == [budget["id"]]
    rest = (await api.get("/api/v1/budgets", params={"after": first["next_after"]})).json()
    assert [b["id"] for b in rest["budgets"]] == [model["id"]] and rest["next_after"] is None
    assert rest["budgets"][0]["used"] == 3000  # a page's budgets carry their spend
    assert (await api.get("/api/v1/budgets", params={"after": -1})).status_code == 422
    assert (await api.delete(f"/api/v1/budgets/{budget['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/budgets/{budget['id']}")).status_code == 404


async def test_bad_telemetry_and_budgets_are_4xx_and_write_nothing(
        api: httpx.AsyncClient, store: Store) -> None:
    r = await api.post("/api/v1/budgets", json={"scope": "global", "metric": "cost",
                                                "period": "month", "limit": 10})
    assert r.status_code == 201
    before = await snapshot(store, skip=("audit_log", "audit_head"))
    good = {"scope": "model", "target": "m", "metric": "cost", "period": "day", "limit": 1}
    for path, body in [
        ("/api/v1/llm-calls", {**CALL, "prompt_tokens": -1}),  # negative tokens
        ("/api/v1/llm-calls", {**CALL, "completion_tokens": -5}),
        ("/api/v1/llm-calls", {**CALL, "cost": -0.1}),
        ("/api/v1/llm-calls", {**CALL, "latency_ms": -3}),
        ("/api/v1/llm-calls", {**CALL, "outcome": "maybe"}),
        ("/api/v1/llm-calls", {**CALL, "prompt_tokens": "12"}),
        ("/api/v1/llm-calls", {**CALL, "agent": "Not An Agent"}),
        ("/api/v1/llm-calls", {**CALL, "at": "2999-01-01T00:00:00Z"}),  # in the future
        ("/api/v1/llm-calls", {**CALL, "at": "2026-01-01T00:00:00"}),  # no time zone
        ("/api/v1/llm-calls", {"calls": [CALL, {**CALL, "prompt_tokens": -1}]}),  # all or none
        ("/api/v1/llm-calls", {"calls": []}),
        ("/api/v1/llm-calls", {**CALL, "surprise": 1}),
        ("/api/v1/budgets", {**good, "limit": -1}),  # negative limit
        ("/api/v1/budgets", {**good, "period": "week"}),  # unknown period
        ("/api/v1/budgets", {**good, "scope": "team"}),
        ("/api/v1/budgets", {**good, "metric": "calls"}),
        ("/api/v1/budgets", {**good, "scope": "global"}),  # a global budget has no target
        ("/api/v1/budgets", {**good, "target": None}),  # a model budget names one
        ("/api/v1/budgets", {**good, "hard": "yes"}),
        ("/api/v1/budgets", {"scope": "global", "metric": "cost", "period": "month",
                             "limit": 5}),  # exists already: 409
    ]:
        r = await api.post(path, json=body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        assert set(r.json()["error"]) == {"code", "message", "details"}
    for path, params in [("/api/v1/llm-calls", {"limit": 0}),
                         ("/api/v1/llm-calls", {"before_id": -1}),
                         ("/api/v1/llm-calls", {"outcome": "maybe"}),
                         ("/api/v1/llm-calls/summary", {"by": "week"}),
                         ("/api/v1/llm-calls/summary", {"since": "2026-02-01T00:00:00Z",
                                                        "until": "2026-01-01T00:00:00Z"})]:
        r = await api.get(path, params=params)
        assert 400 <= r.status_code < 500, (path, params, r.text)
    r = await api.patch("/api/v1/budgets/1", json={"limit": -5})
    assert r.status_code == 422
    r = await api.patch("/api/v1/budgets/1", json={})
    assert r.status_code == 400 and r.json()["error"]["code"] == "nothing_to_change"
    assert (await api.patch("/api/v1/budgets/999", json={"limit": 1})).status_code == 404
    assert await snapshot(store, skip=("audit_log", "audit_head")) == before
